"""Make robustbench 1.1.1 importable with the packages that the registry actually serves.

robustbench 1.1.1 has two import-time problems, both handled here and nowhere else:

1. ``robustbench.eval`` does ``from autoattack import AutoAttack`` and
   ``from autoattack.state import EvaluationState``, but its dependency ``pyautoattack``
   installs the module as ``pyautoattack``. We register ``pyautoattack`` (and the
   submodules robustbench names) under the name ``autoattack``.
2. ``robustbench.loaders`` imports ``pkg_resources``, which setuptools removed in version
   81; requirements.txt pins ``setuptools<81``. We fail with that fix named if it is gone.

Every module of filterlens that needs robustbench calls :func:`import_robustbench` (or
imports this module first) instead of ``import robustbench``.
"""

from __future__ import annotations

import importlib
import sys
import warnings
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


def import_robustbench() -> ModuleType:
    """Import and return ``robustbench`` after applying both fixes."""
    _alias_autoattack()
    _check_pkg_resources()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        return importlib.import_module("robustbench")


_alias_autoattack()
_check_pkg_resources()
