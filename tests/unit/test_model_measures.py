"""The filter measures that run a model (filterlens.probe.model_measures), on tiny models whose
answers are known: input sizes through strides and pooling, the spectrum of an identity conv,
and perturbation ratios of a conv that passes its input through."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from filterlens.extract.weights import plan_extraction
from filterlens.probe.model_measures import (conv_input_sizes, perturbation_ratios, perturbation_table, spectra_table,
                                              spectrum_problem)
from filterlens.train.minizoo import PGDSettings


class Reused(nn.Module):
    """conv0 (stride 2), then conv1 twice around a 2x2 max pool, then a 5x5 conv."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.wide = nn.Conv2d(4, 2, 5, padding=2)
        self.head = nn.Linear(2, 3)

    def forward(self, x):
        x = self.conv1(self.pool(self.conv1(self.conv0(x))))
        return self.head(self.wide(x).mean((2, 3)))


def test_input_sizes_are_those_of_the_first_call_and_need_no_compute():
    with torch.device("meta"):
        model = Reused()
    sizes = conv_input_sizes(model, torch.empty(1, 3, 32, 24, device="meta"), {"conv0", "conv1", "wide", "absent"})
    assert sizes == {"conv0": (32, 24), "conv1": (16, 12), "wide": (8, 6)}  # conv1's second call is on 8x6
    assert all(not m._forward_pre_hooks for m in model.modules())  # the hooks are gone


def test_input_sizes_of_a_model_in_training_mode_are_probed_in_eval_mode_and_its_modes_kept():
    # torchvision's ResNet-18 on 32x32 images: layer4's BatchNorms see 1x1 maps, one value per
    # channel for one image, which training mode refuses; a module's own mode is restored after.
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.resnet18(num_classes=10)
    model.layer1.eval()
    sizes = conv_input_sizes(model, torch.empty(1, 3, 32, 32, device="meta"), {"layer1.0.conv1", "layer4.1.conv2"})
    assert sizes == {"layer1.0.conv1": (8, 8), "layer4.1.conv2": (1, 1)}
    assert model.training and model.layer4.training and not model.layer1.training and not model.layer1[0].bn1.training


def _identity_conv(channels: int, **kwargs) -> nn.Conv2d:
    conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False, **kwargs)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, :, 1, 1] = torch.eye(channels)
    return conv


def test_spectra_of_an_identity_conv_are_all_one_and_unsupported_layers_are_named():
    network = nn.Sequential(_identity_conv(3), nn.Conv2d(3, 2, 3, stride=2, padding=1, bias=False),
                            _identity_conv(2, dilation=1))
    with torch.no_grad():
        network[1].weight.normal_(generator=torch.Generator().manual_seed(0))
    plan = plan_extraction(network, torch.empty(1, 3, 8, 8, device="meta"))
    sizes = conv_input_sizes(network, torch.empty(1, 3, 8, 8), [layer.name for layer in plan.layers])
    assert sizes == {"0": (8, 8), "1": (8, 8), "2": (4, 4)}
    groups = {"0": "first", "1": "0.4-0.5", "2": "0.9-1.0"}
    table = spectra_table(network, plan, sizes, groups, "m", logging.getLogger("test")).set_index("name")
    assert table.loc["0", "n_singular"] == 3 * 8 * 8  # c_in x n x n values
    assert table.loc["0", ["spectral_norm", "sigma_min", "stable_rank_ratio"]].tolist() == pytest.approx([1, 1, 1])
    assert table.loc["1", "stride"] == 2 and table.loc["1", "n_singular"] == 2 * 4 * 4  # c_out x (n / 2)^2
    assert table.depth_group.tolist() == ["first", "0.4-0.5", "0.9-1.0"] and (table.note == "").all()
    odd = nn.Conv2d(3, 3, 3, stride=2, padding=1)
    assert "not a square multiple of the stride" in spectrum_problem(odd, (7, 7))
    assert "not a square multiple of the stride" in spectrum_problem(_identity_conv(3), (8, 6))
    assert "dilation (2, 2)" in spectrum_problem(nn.Conv2d(3, 3, 3, dilation=2), (8, 8))
    assert spectrum_problem(odd, (8, 8)) == ""


def test_a_layer_the_fft_method_does_not_cover_is_a_row_of_nan_with_its_note():
    network = nn.Sequential(_identity_conv(3))
    plan = plan_extraction(network, torch.empty(1, 3, 8, 6, device="meta"))
    table = spectra_table(network, plan, {"0": (8, 6)}, {"0": "first"}, "m")
    assert np.isnan(table.spectral_norm[0]) and table.n_singular[0] == 0 and "8x6" in table.note[0]


class PassThrough(nn.Module):
    """An identity 3x3 conv (the measured layer), then a linear classifier."""

    def __init__(self, classes: int = 4, size: int = 6):
        super().__init__()
        self.conv = _identity_conv(3)
        self.head = nn.Linear(3 * size * size, classes)
        with torch.no_grad():
            self.head.weight.normal_(generator=torch.Generator().manual_seed(1))

    def forward(self, x):
        return self.head(self.conv(x).flatten(1))


def test_perturbation_ratios_of_a_pass_through_layer_are_eps_over_the_pixel_value():
    # f(x) = x: with x = 0.5 everywhere and x' - x = +-eps at every pixel (no clipping), the
    # ratio ||x' - x|| / ||x|| is eps / 0.5 for the sign noise, and for one PGD step of size eps
    # from x itself (no random start: the gradient of a linear head is non-zero at every pixel).
    network = PassThrough()
    x = torch.full((5, 3, 6, 6), 0.5)
    y = network(x).argmax(1)  # the model's own answers: clean accuracy 100 %
    attack = PGDSettings(eps=0.05, step_size=0.05, steps=1, random_start=False)
    result = perturbation_ratios(network, network, ["conv"], x, y, attack, seed=0, batch_size=2)
    assert result.n_images == 5 and result.accuracy("clean") == 100.0
    np.testing.assert_allclose(result.ratios["random"]["conv"], 0.1, rtol=1e-6)
    np.testing.assert_allclose(result.ratios["pgd"]["conv"], 0.1, rtol=1e-6)
    assert result.correct["pgd"] <= result.correct["clean"]
    assert not network.conv._forward_hooks  # the hooks are gone
    table = perturbation_table(result, plan_extraction(network, torch.empty(1, 3, 6, 6)).layers, {"conv": "first"},
                               "m", attack)
    assert table.loc[0, ["perturbation_ratio", "perturbation_ratio_random"]].tolist() == pytest.approx([0.1, 0.1])
    assert table.loc[0, "perturbation_ratio_std"] == pytest.approx(0, abs=1e-6)
    assert table.loc[0, ["n_images", "eps", "steps", "accuracy_clean"]].tolist() == [5, 0.05, 1, 100.0]


def test_perturbation_ratios_are_reproducible_from_the_seed_and_stay_in_the_eps_ball():
    network = PassThrough()
    x = torch.rand((6, 3, 6, 6), generator=torch.Generator().manual_seed(2))
    y = torch.arange(6) % 4
    attack = PGDSettings(eps=0.03, step_size=0.01, steps=3, random_start=True)
    a = perturbation_ratios(network, network, ["conv"], x, y, attack, seed=5, batch_size=4)
    b = perturbation_ratios(network, network, ["conv"], x, y, attack, seed=5, batch_size=4)
    np.testing.assert_array_equal(a.ratios["pgd"]["conv"], b.ratios["pgd"]["conv"])
    np.testing.assert_array_equal(a.ratios["random"]["conv"], b.ratios["random"]["conv"])
    assert a.correct == b.correct
    assert (a.ratios["pgd"]["conv"] <= 0.03 * np.sqrt(3 * 36) / np.linalg.norm(x.reshape(6, -1), axis=1) + 1e-6).all()


def test_perturbation_ratios_of_a_model_in_training_mode_are_those_of_eval_mode_and_leave_it_unchanged():
    # A BatchNorm after the conv: in training mode it would normalise by the batch and update its
    # running statistics; the ratios are measured in eval mode, the model's mode and buffers kept.
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 36, 3))
    x = torch.rand((4, 3, 6, 6), generator=torch.Generator().manual_seed(1))
    y = torch.arange(4) % 3
    attack = PGDSettings(eps=0.03, step_size=0.01, steps=2, random_start=True)
    expected = perturbation_ratios(network.eval(), network, ["0"], x, y, attack, seed=0, batch_size=2)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    result = perturbation_ratios(network.train(), network, ["0"], x, y, attack, seed=0, batch_size=2)
    assert network.training and all(torch.equal(before[k], v) for k, v in network.state_dict().items())
    for kind in ("pgd", "random"):
        np.testing.assert_array_equal(result.ratios[kind]["0"], expected.ratios[kind]["0"])
