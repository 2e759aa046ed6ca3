"""Architecture ``python``: a model constructor in the user's own Python file.

A sheet row names it as ``architecture: python`` with ``arch_kwargs`` ``{"constructor":
"path/to/file.py:callable", ...}``; the other keys are the callable's keyword arguments, and
``num_classes`` is passed too when the callable has a parameter of that name. Building such a
model **runs the user's file** (an import, by its path), in every process that builds it: the
sheet check at parse time (on the ``meta`` device) and every job that builds the model. It is
imported only where a sheet row (or a notebook) names it, once per process and file content.

The file's checks split in two: :func:`constructor_problem` (no import: the text is parsed,
not run) says whether the file exists and defines the name at its top level, so that a typo
is reported without running anything; :func:`load_constructor` imports it and checks that the
name is callable; :func:`argument_problems` that the arguments bind to its signature.
Relative paths are relative to the working directory (where snakemake runs).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable

CONSTRUCTOR_KEY = "constructor"
_LOADED: dict[tuple[str, str], Any] = {}  # (resolved path, sha256 of its bytes) -> module


class ConstructorError(ValueError):
    """A user constructor that cannot be used; the message names the file and the fix."""


def split_constructor(spec: Any) -> tuple[Path, str]:
    """``"dir/file.py:name"`` -> (Path("dir/file.py"), "name"); :class:`ConstructorError` otherwise."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ConstructorError(f"arch_kwargs constructor is {spec!r}; it must be 'path/to/file.py:callable'")
    path, name = spec.split(":")
    if not path.endswith(".py") or not name.isidentifier():
        raise ConstructorError(f"arch_kwargs constructor is {spec!r}; it must be 'path/to/file.py:callable' "
                               "(a .py file and a Python name)")
    return Path(path), name


def constructor_file(kwargs: dict[str, Any]) -> Path | None:
    """The file that ``arch_kwargs`` of architecture python names, or None if it names none."""
    try:
        return split_constructor(kwargs.get(CONSTRUCTOR_KEY))[0]
    except ConstructorError:
        return None


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def constructor_problem(kwargs: dict[str, Any]) -> str | None:
    """Why ``arch_kwargs`` of architecture python cannot name a constructor, without running
    the file: the form ``file.py:callable``, the file, its syntax, the name at its top level."""
    try:
        path, name = split_constructor(kwargs.get(CONSTRUCTOR_KEY))
    except ConstructorError as error:
        return str(error)
    if not path.is_file():
        base = "" if path.is_absolute() else f" (relative to the working directory {os.getcwd()})"
        return (f"the constructor file {path}{base} does not exist. Fix: correct arch_kwargs constructor, or "
                "run snakemake in the directory the path is relative to")
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as error:
        return f"the constructor file {path} is not valid Python ({error})"
    if name not in _top_level_names(tree):
        return (f"the constructor file {path} defines no {name!r} at its top level. Fix: name a function or class "
                f"of {path} in arch_kwargs constructor ('{path}:<name>')")
    return None


def load_constructor(spec: str) -> Callable[..., Any]:
    """The callable that ``spec`` (``file.py:name``) names, its file imported once per content."""
    path, name = split_constructor(spec)
    if problem := constructor_problem({CONSTRUCTOR_KEY: spec}):
        raise ConstructorError(problem)
    resolved = path.resolve()
    key = (str(resolved), hashlib.sha256(resolved.read_bytes()).hexdigest())
    if key not in _LOADED:
        _LOADED[key] = _import_file(resolved, key[1])
    function = getattr(_LOADED[key], name, None)
    if not callable(function):
        raise ConstructorError(f"{name!r} in the constructor file {path} is a {type(function).__name__}, not a "
                               "callable. Fix: name a function or class that returns the model")
    return function


def _import_file(path: Path, digest: str) -> Any:
    # A unique module name per file and content: two files of one name never shadow each other.
    module_name = f"filterlens_user_code.{path.stem}_{digest[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:  # a file that calls sys.exit must not end the workflow's parse
        del sys.modules[module_name]
        raise ConstructorError(f"importing the constructor file {path} failed: {type(error).__name__}: "
                               f"{error}") from error
    return module


def _call_arguments(function: Callable[..., Any], kwargs: dict[str, Any], num_classes: int) -> dict[str, Any]:
    arguments = {k: v for k, v in kwargs.items() if k != CONSTRUCTOR_KEY}
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature: give it the arguments as they are
        return arguments
    if "num_classes" in parameters and "num_classes" not in arguments:
        arguments["num_classes"] = num_classes
    return arguments


def argument_problems(kwargs: dict[str, Any], num_classes: int) -> list[str]:
    """What stops the constructor from taking ``arch_kwargs`` (imports the file)."""
    try:
        function = load_constructor(kwargs.get(CONSTRUCTOR_KEY))
    except ConstructorError as error:
        return [str(error)]
    arguments = _call_arguments(function, kwargs, num_classes)
    try:
        inspect.signature(function).bind(**arguments)
    except TypeError as error:
        return [f"arch_kwargs {sorted(arguments)} do not fit {kwargs[CONSTRUCTOR_KEY]}: {error}"]
    except ValueError:
        pass  # no signature to check against: the call below decides
    return []


def build_user_model(num_classes: int, constructor: str, **kwargs: Any):
    """The module that the user's callable returns (the ARCHITECTURES entry of ``python``)."""
    from torch import nn

    function = load_constructor(constructor)
    model = function(**_call_arguments(function, kwargs, num_classes))
    if not isinstance(model, nn.Module):
        raise ConstructorError(f"{constructor} returned a {type(model).__name__}, not a torch.nn.Module")
    return model
