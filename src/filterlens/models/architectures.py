"""Architecture constructors by name: the one place that turns a sheet row into a module.

Every constructor takes the sheet's ``arch_kwargs`` plus ``num_classes`` and returns a freshly
initialised ``nn.Module``. The mini zoo's architectures are RobustBench's own classes (or
narrow variants built from RobustBench's blocks); the paper zoo builds RobustBench's
leaderboard entries and timm's models by key; ``torchvision`` builds a classification model of
``torchvision.models`` by name; ``python`` is a constructor in the user's own file.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from filterlens.models.compat import import_robustbench_module
from filterlens.models.robustbench_zoo import entry_constructor
from filterlens.models.user_code import build_user_model

# The architecture modules alone, not robustbench's package (models/compat.py).
_dm_wide_resnet = import_robustbench_module("robustbench.model_zoo.architectures.dm_wide_resnet")
_resnet = import_robustbench_module("robustbench.model_zoo.architectures.resnet")
DMWideResNet, Swish = _dm_wide_resnet.DMWideResNet, _dm_wide_resnet.Swish
PreActBlock, PreActResNet = _resnet.PreActBlock, _resnet.PreActResNet
WideResNet = import_robustbench_module("robustbench.model_zoo.architectures.wide_resnet").WideResNet


class NarrowPreActResNet(PreActResNet):
    """RobustBench's PreActResNet with a configurable base width (RobustBench fixes 64).

    Same blocks (RobustBench's ``PreActBlock``), same forward; ``width`` channels in the first
    stage, doubling per stage, so that adversarial training fits a CPU.
    """

    def __init__(self, num_blocks: list[int], num_classes: int = 10, width: int = 16) -> None:
        nn.Module.__init__(self)
        self.in_planes = width
        self.bn_before_fc = True
        self.out_shortcut = False
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.layer1 = self._make_layer(PreActBlock, width, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(PreActBlock, 2 * width, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(PreActBlock, 4 * width, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(PreActBlock, 8 * width, num_blocks[3], stride=2)
        self.bn = nn.BatchNorm2d(8 * width)
        self.linear = nn.Linear(8 * width, num_classes)


def _wide_resnet(num_classes: int, depth: int = 28, widen_factor: int = 10) -> nn.Module:
    return WideResNet(depth=depth, widen_factor=widen_factor, num_classes=num_classes)


def _dm_wide_resnet(num_classes: int, depth: int = 28, width: int = 10, activation: str = "relu") -> nn.Module:
    activations = {"relu": nn.ReLU, "swish": Swish}
    # mean 0 / std 1: the mini zoo feeds [0, 1] inputs without normalisation.
    return DMWideResNet(
        num_classes=num_classes, depth=depth, width=width, activation_fn=activations[activation],
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
    )


def _preact_resnet(num_classes: int, num_blocks: list[int] | None = None, width: int = 16) -> nn.Module:
    return NarrowPreActResNet(num_blocks or [2, 2, 2, 2], num_classes=num_classes, width=width)


def _robustbench_entry(num_classes: int, dataset: str, key: str, threat_model: str = "Linf") -> nn.Module:
    """A RobustBench leaderboard entry's architecture, freshly initialised (the registry's own
    constructor, without importing the whole registry: models/robustbench_zoo.py)."""
    return entry_constructor(dataset, key, threat_model)()


def _timm_model(num_classes: int, name: str) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def _torchvision_model(num_classes: int, name: str, **kwargs: Any) -> nn.Module:
    """A classification model of ``torchvision.models`` by its builder's name (``resnet18``), with
    the builder's other keyword arguments and no pretrained weights (the sheet check refuses
    ``weights``: filterlens.models.sheet_checks)."""
    import torchvision

    return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "wide_resnet": _wide_resnet,
    "dm_wide_resnet": _dm_wide_resnet,
    "preact_resnet": _preact_resnet,
    "robustbench": _robustbench_entry,
    "timm": _timm_model,
    "torchvision": _torchvision_model,
    "python": build_user_model,  # the user's own constructor: runs the user's file (models/user_code.py)
}


def _construct(name: str, kwargs: dict[str, Any], num_classes: int) -> nn.Module:
    """Architecture ``name``'s constructor called with ``kwargs`` and ``num_classes``. A torchvision
    row may repeat num_classes in its arch_kwargs, as torchvision's builders take it; the sheet
    check holds it equal to the dataset's."""
    if name == "torchvision":
        kwargs = {k: v for k, v in kwargs.items() if k != "num_classes"}
    return ARCHITECTURES[name](num_classes=num_classes, **kwargs)


def random_init_seed(model_id: str, seed: int) -> int:
    """The seed of a model's random weights (rule random_init): one per model, since a robust
    model and its counterpart share an architecture and would otherwise get identical weights."""
    return zlib.crc32(model_id.encode()) + seed


# In-place random (and fill) initialisers; torch.nn.init's functions are matched by their module.
_INITIALISERS = frozenset({
    torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.zero_, torch.Tensor.fill_, torch.Tensor.random_,
    torch.Tensor.bernoulli_, torch.Tensor.exponential_, torch.Tensor.geometric_, torch.Tensor.log_normal_,
    torch.Tensor.cauchy_,
})


class _SkippedInitialisers(TorchFunctionMode):
    """Initialisers return at once: on meta tensors (``every_tensor=False``), which have nothing
    to fill (torch runs a meta ``normal_`` through its Python reference, whose first call imports
    ``torch._dynamo``, seconds of every job that builds a model on the meta device), or on every
    tensor, whose values are about to be replaced. Records the storages it left as allocated."""

    def __init__(self, every_tensor: bool) -> None:
        super().__init__()
        self.every_tensor = every_tensor
        self.left_as_allocated: set[int] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _INITIALISERS or getattr(func, "__module__", None) == "torch.nn.init":
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and (self.every_tensor or tensor.is_meta):
                if not tensor.is_meta:
                    self.left_as_allocated.add(tensor.untyped_storage().data_ptr())
                return tensor
        return func(*args, **kwargs)


@contextlib.contextmanager
def _weights_registered_on_meta() -> Iterator[None]:
    """Every parameter and buffer a module registers goes to the meta device as it is registered,
    while the constructor's other tensors stay on the CPU: the meta build of a constructor that
    reads values of tensors it makes (timm's drop-path rates from ``torch.linspace(...).tolist()``
    in ViTs and ConvNeXts, torchvision's RegNet widths), which the ``torch.device("meta")``
    context cannot run. A weight exists on the CPU only until it is registered."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def to_meta_parameter(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and not param.is_meta:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    def to_meta_buffer(module: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True) -> None:
        register_buffer(module, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = to_meta_parameter, to_meta_buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


def _reads_meta_values(error: Exception) -> bool:
    """Whether ``error`` is a constructor reading the values of a meta tensor."""
    return "meta tensor" in str(error)


def build_architecture(
    name: str, kwargs: dict[str, Any], num_classes: int, device: str | torch.device = "cpu",
    seed: int | None = None,
) -> nn.Module:
    """Build architecture ``name`` with ``kwargs``; on the ``meta`` device it allocates nothing
    (a constructor that reads values of tensors it makes is built again with its weights put on
    the meta device as they are registered, :func:`_weights_registered_on_meta`).

    With ``seed``, the initial weights depend on the seed alone (the global RNG is left as it was).
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    meta = torch.device(device).type == "meta"
    skip_initialisers = _SkippedInitialisers(every_tensor=False) if meta else contextlib.nullcontext()
    with torch.random.fork_rng(enabled=seed is not None), skip_initialisers:
        if seed is not None:
            torch.manual_seed(seed)
        try:
            with torch.device(device):
                return _construct(name, kwargs, num_classes)
        except Exception as error:
            if not (meta and _reads_meta_values(error)):
                raise
        with _weights_registered_on_meta():
            return _construct(name, kwargs, num_classes)


def build_with_weights(name: str, kwargs: dict[str, Any], num_classes: int,
                       state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Architecture ``name`` on the CPU with the tensors of ``state_dict`` as its weights
    (``load_state_dict(..., assign=True)``, strict), for an architecture that needs its real
    constructor: a buffer outside the state dict (DMWideResNet's mean and std) is made there.
    The constructor's initialisers are skipped, since every weight is replaced right after
    (the initialisation of a wide model takes seconds); if a tensor they left as allocated is still in
    the model (a buffer outside the state dict made by an initialiser), it is built again with them."""
    skipped = _SkippedInitialisers(every_tensor=True)
    with torch.device("cpu"), skipped:
        model = _construct(name, kwargs, num_classes)
    model.load_state_dict(state_dict, assign=True)
    if any(t.untyped_storage().data_ptr() in skipped.left_as_allocated
           for t in (*model.parameters(), *model.buffers()) if t.numel()):
        model = build_architecture(name, kwargs, num_classes)
        model.load_state_dict(state_dict, assign=True)
    return model
