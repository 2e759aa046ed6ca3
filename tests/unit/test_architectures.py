"""The architecture registry."""

import pytest

from filterlens.config.architecture_names import ARCHITECTURE_NAMES
from filterlens.models.architectures import ARCHITECTURES, build_architecture


def test_names_used_by_sheet_validation_match_the_registry():
    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        build_architecture("vgg", {}, 10)


def test_mini_zoo_architectures_are_robustbench_classes():
    from robustbench.model_zoo.architectures.dm_wide_resnet import DMWideResNet
    from robustbench.model_zoo.architectures.resnet import PreActBlock, PreActResNet
    from robustbench.model_zoo.architectures.wide_resnet import WideResNet

    assert isinstance(build_architecture("wide_resnet", {"depth": 10, "widen_factor": 1}, 10), WideResNet)
    assert isinstance(build_architecture("dm_wide_resnet", {"depth": 10, "width": 1}, 10), DMWideResNet)
    preact = build_architecture("preact_resnet", {"num_blocks": [1, 1, 1, 1], "width": 8}, 10)
    assert isinstance(preact, PreActResNet) and isinstance(preact.layer1[0], PreActBlock)
