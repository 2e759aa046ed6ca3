"""RobustBench's registry of leaderboard entries (``robustbench.model_zoo.model_dicts``), looked up
here for every module that builds, checks or acquires a RobustBench model. robustbench is imported
on the first look-up, through :func:`filterlens.models.compat.import_robustbench_module`.

Importing the registry imports every module of the zoo and, through them, timm, torchvision
(which loads ``torch._dynamo``) and torchdiffeq, paid by every extraction and random-init job of
a RobustBench model: a third of the scale run's time (docs/benchmarks.md, "Which start-up
measures the run keeps"). Most entries need none of it: ``lambda: WideResNet(depth=28, widen_factor=10)`` needs one architecture module. So
:func:`entry_constructor` reads the entry from the registry module's source and runs only the
imports and definitions its ``model`` expression refers to, transitively; an entry it cannot
resolve that way gets the registry's own constructor. ``tests/unit/test_robustbench_zoo.py`` checks
both ways build the same modules for every sheet's RobustBench rows.
"""

from __future__ import annotations

import ast
import builtins
import functools
from typing import Any, Callable

# The registry module of each dataset and the name of its {ThreatModel: {key: entry}} dict.
_REGISTRY_MODULES = {
    "cifar10": ("robustbench.model_zoo.cifar10", "cifar_10_models"),
    "cifar100": ("robustbench.model_zoo.cifar100", "cifar_100_models"),
    "imagenet": ("robustbench.model_zoo.imagenet", "imagenet_models"),
}


class UnknownRobustBenchEntry(ValueError):
    """A key that RobustBench's registry lacks for the dataset and threat model."""


def zoo(dataset: str, threat_model: str = "Linf") -> dict[str, dict[str, Any]]:
    """RobustBench's entries of ``dataset`` (a BenchmarkDataset value: cifar10, cifar100, imagenet)
    and ``threat_model`` (a ThreatModel name: Linf, L2, corruptions), by key."""
    from filterlens.models.compat import import_robustbench_module

    model_dicts = import_robustbench_module("robustbench.model_zoo.models").model_dicts
    enums = import_robustbench_module("robustbench.model_zoo.enums")
    BenchmarkDataset, ThreatModel = enums.BenchmarkDataset, enums.ThreatModel

    return model_dicts[BenchmarkDataset(dataset)][ThreatModel[threat_model]]


def zoo_entry(dataset: str, key: str, threat_model: str = "Linf") -> dict[str, Any]:
    """The registry's entry ``key`` (its ``model`` constructor, ``gdrive_id``, ...), or
    :class:`UnknownRobustBenchEntry`."""
    entries = zoo(dataset, threat_model)
    if key not in entries:
        raise UnknownRobustBenchEntry(f"RobustBench has no {dataset}/{threat_model} model {key!r}")
    return entries[key]


def entry_constructor(dataset: str, key: str, threat_model: str = "Linf") -> Callable[[], Any]:
    """The entry's ``model`` constructor, the same code as the registry's, with only what it uses
    imported (module docstring); the registry's own for an entry the source does not resolve."""
    try:
        return _constructor_from_source(dataset, key, threat_model)
    except _NotResolved:
        return zoo_entry(dataset, key, threat_model)["model"]


class _NotResolved(Exception):
    """The registry's source does not define the entry in the form read here."""


@functools.cache
def _registry_source(dataset: str) -> tuple[str, str, dict[str, ast.stmt], set[str]]:
    """The registry module of ``dataset``: its name, file and top-level definitions."""
    from filterlens.models.compat import robustbench_module_spec

    if dataset not in _REGISTRY_MODULES:
        raise _NotResolved(dataset)
    module_name, _ = _REGISTRY_MODULES[dataset]
    spec = robustbench_module_spec(module_name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise _NotResolved(module_name)
    with open(spec.origin, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=spec.origin)
    return (module_name, spec.origin, *_top_level_definitions(tree))


def _top_level_definitions(tree: ast.Module) -> tuple[dict[str, ast.stmt], set[str]]:
    """Each module-level name bound by an import, class, function or plain assignment, with a
    statement that binds it alone; and every name bound at module level in another way."""
    definitions: dict[str, ast.stmt] = {}
    other: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            if isinstance(statement, ast.ImportFrom) and (statement.level or any(a.name == "*" for a in statement.names)):
                other.update(a.asname or a.name for a in statement.names)
                continue
            for alias in statement.names:
                one = type(statement)(**{**statement.__dict__, "names": [alias]})
                name = alias.asname or alias.name.partition(".")[0]
                definitions[name] = ast.copy_location(one, statement)
        elif isinstance(statement, (ast.ClassDef, ast.FunctionDef)):
            definitions[statement.name] = statement
        elif isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
            for target in statement.targets:
                definitions[target.id] = statement
        else:
            other.update(n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return definitions, other


def _entry_expression(definitions: dict[str, ast.stmt], models_dict: str,
                      key: str, threat_model: str) -> ast.expr:
    """The ``model`` value of ``models_dict[ThreatModel.<threat_model>][key]`` in the source."""

    def ordered_dict_items(name: str) -> list[ast.expr]:
        statement = definitions.get(name)
        value = statement.value if isinstance(statement, ast.Assign) else None
        if not (isinstance(value, ast.Call) and len(value.args) == 1 and isinstance(value.args[0], ast.List)):
            raise _NotResolved(name)
        return value.args[0].elts

    threat_dicts = {}
    for item in ordered_dict_items(models_dict):
        if isinstance(item, ast.Tuple) and isinstance(item.elts[0], ast.Attribute) and isinstance(item.elts[1], ast.Name):
            threat_dicts[item.elts[0].attr] = item.elts[1].id
    if threat_model not in threat_dicts:
        raise _NotResolved(threat_model)
    for item in ordered_dict_items(threat_dicts[threat_model]):
        if (isinstance(item, ast.Tuple) and isinstance(item.elts[0], ast.Constant) and item.elts[0].value == key
                and isinstance(item.elts[1], ast.Dict)):
            for entry_key, value in zip(item.elts[1].keys, item.elts[1].values):
                if isinstance(entry_key, ast.Constant) and entry_key.value == "model":
                    return value
    raise _NotResolved(key)


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _constructor_from_source(dataset: str, key: str, threat_model: str) -> Callable[[], Any]:
    from filterlens.models.compat import robustbench_imports

    module_name, path, definitions, other = _registry_source(dataset)
    expression = _entry_expression(definitions, _REGISTRY_MODULES[dataset][1], key, threat_model)
    # The definitions the expression needs, transitively; a name that is no module-level
    # definition is a local or a builtin (over-approximated: a local sharing a module-level name
    # pulls that definition in too, which only costs its import).
    needed: set[int] = set()
    pending = list(_names_used(expression))
    while pending:
        name = pending.pop()
        if name in other:
            raise _NotResolved(name)
        statement = definitions.get(name)
        if statement is None or id(statement) in needed:
            continue
        needed.add(id(statement))
        pending.extend(_names_used(statement))
    by_id = {id(s): s for s in definitions.values() if id(s) in needed}  # an assignment may bind several names
    statements = sorted(by_id.values(), key=lambda s: (s.lineno, s.col_offset))
    namespace: dict[str, Any] = {"__name__": module_name, "__file__": path, "__builtins__": builtins}
    try:
        with robustbench_imports():
            exec(compile(ast.Module(body=statements, type_ignores=[]), path, "exec"), namespace)
            return eval(compile(ast.Expression(body=expression), path, "eval"), namespace)
    except Exception as error:  # the registry's own import then shows the real problem, if any
        raise _NotResolved(key) from error
