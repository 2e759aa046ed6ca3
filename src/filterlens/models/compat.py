"""Make robustbench 1.1.1 importable with the packages that the registry actually serves.

robustbench 1.1.1 has two import-time problems, both handled here and nowhere else:

1. ``robustbench.eval`` does ``from autoattack import AutoAttack`` and
   ``from autoattack.state import EvaluationState``, but its dependency ``pyautoattack``
   installs the module as ``pyautoattack``. We register ``pyautoattack`` (and the
   submodules robustbench names) under the name ``autoattack``.
2. ``robustbench.loaders`` imports ``pkg_resources``, which setuptools removed in version
   81; requirements.txt pins ``setuptools<81``. We fail with that fix named if it is gone.

Every module of filterlens that needs the whole of robustbench calls :func:`import_robustbench`,
which applies both fixes, instead of ``import robustbench``; modules inside it come through
:func:`import_robustbench_module`, which needs neither fix.

robustbench's package ``__init__`` files import its data loaders, its evaluation (AutoAttack)
and its whole model zoo (timm, torchvision), seconds per process (docs/benchmarks.md). Building an architecture
class or looking up the registry needs none of it, so :func:`import_robustbench_module`
imports one module inside robustbench with those two packages registered but their
``__init__`` not yet run; :func:`import_robustbench` runs them when the full package is asked
for (downloads), on the same module objects.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import warnings
from importlib.machinery import ModuleSpec
from types import ModuleType

_AUTOATTACK_SUBMODULES = ("autoattack", "state")  # the ones robustbench imports


def _alias_autoattack() -> None:
    if "autoattack" in sys.modules:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecations in pyautoattack
            package = importlib.import_module("pyautoattack")
    except ImportError as error:  # pragma: no cover - only without the pinned dependency
        raise ImportError(
            "robustbench needs the 'autoattack' module, installed by the package 'pyautoattack'. "
            "Fix: make the virtual environment again ('make venv') or 'pip install pyautoattack==0.2.0'."
        ) from error
    sys.modules["autoattack"] = package
    for name in _AUTOATTACK_SUBMODULES:
        sys.modules[f"autoattack.{name}"] = importlib.import_module(f"pyautoattack.{name}")


def _check_pkg_resources() -> None:
    with warnings.catch_warnings():
        # setuptools warns that pkg_resources is deprecated; robustbench is the one using it.
        warnings.simplefilter("ignore")
        try:
            importlib.import_module("pkg_resources")
        except ImportError as error:
            raise ImportError(
                "robustbench 1.1.1 imports pkg_resources, which setuptools 81 removed. "
                "Fix: pip install 'setuptools<81' (requirements.txt pins it)."
            ) from error


# Outermost first; robustbench's __init__ imports the model zoo, so the zoo's runs first.
_DEFERRED_PACKAGES = ("robustbench", "robustbench.model_zoo")
_deferred: dict[str, ModuleSpec] = {}


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        yield


def _defer_package_inits() -> None:
    for package in _DEFERRED_PACKAGES:
        if package not in sys.modules:
            spec = importlib.util.find_spec(package)
            module = importlib.util.module_from_spec(spec)
            sys.modules[package] = module
            _deferred[package] = spec
            parent, _, child = package.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, module)


@contextlib.contextmanager
def robustbench_imports():
    """Imports of modules inside robustbench in this block run without the ``__init__`` of
    ``robustbench`` and ``robustbench.model_zoo`` (unless they already ran), warnings quiet."""
    _defer_package_inits()
    with _quiet():
        yield


def robustbench_module_spec(name: str) -> ModuleSpec | None:
    """The import spec of ``name`` inside robustbench (its file), found without running anything."""
    _defer_package_inits()
    return importlib.util.find_spec(name)


def import_robustbench_module(name: str) -> ModuleType:
    """Import and return ``name``, a module inside robustbench (an architecture module,
    ``robustbench.model_zoo.models``, ``robustbench.model_zoo.enums``), without running the
    ``__init__`` of ``robustbench`` and ``robustbench.model_zoo`` unless they already ran."""
    with robustbench_imports():
        return importlib.import_module(name)


def import_robustbench() -> ModuleType:
    """Import and return the whole ``robustbench`` after applying both fixes."""
    _alias_autoattack()
    _check_pkg_resources()
    with _quiet():
        for package in reversed(_DEFERRED_PACKAGES):
            spec = _deferred.pop(package, None)
            if spec is not None:
                spec.loader.exec_module(sys.modules[package])
        return importlib.import_module("robustbench")
