"""Validate a workflow config against its JSON schema, with messages a user can act on.

Every violation is reported at once as ``key.path: problem (allowed: ...)``; Snakemake's own
``validate`` then fills in the schema's defaults. A key given dotted on the command line
(``--config figures.entropy=scaled``) is first put where it belongs (:func:`expand_dotted_keys`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# The schemas ship inside the package, so the library finds them wherever it is installed.
SCHEMAS = Path(__file__).resolve().parent / "schemas"
CONFIG_SCHEMA = SCHEMAS / "config.schema.yaml"
MODELS_SCHEMA = SCHEMAS / "models.schema.yaml"


class ConfigError(ValueError):
    """The config has problems; the message lists every one with what is allowed."""


def schema_defaults(section: str, schema_path: str | os.PathLike = CONFIG_SCHEMA) -> dict[str, Any]:
    """The defaults of config section ``section`` in the schema, nested sections as nested dicts
    (a key without a default maps to None)."""
    def defaults(spec: dict[str, Any]) -> dict[str, Any]:
        return {name: defaults(sub) if "properties" in sub else sub.get("default")
                for name, sub in spec["properties"].items()}

    return defaults(yaml.safe_load(Path(schema_path).read_text())["properties"][section])


def _allowed(schema: dict[str, Any]) -> str:
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(map(repr, schema["enum"])))
    if "type" in schema:
        parts.append(f"type {schema['type']}")
    for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    if schema.get("additionalProperties") is False and "properties" in schema:
        parts.append("keys " + ", ".join(schema["properties"]))
    return "; ".join(parts)


# A config is a few hundred values; these bound what a crafted file can make a check walk.
MAX_CONFIG_VALUES = 100_000
MAX_CONFIG_DEPTH = 32


def shape_problems(config: Any) -> list[str]:
    """Why ``config`` cannot be checked value by value: a list or mapping that appears twice
    (a YAML alias, which can stand for exponentially many values: an alias bomb), nesting beyond
    MAX_CONFIG_DEPTH, or more than MAX_CONFIG_VALUES values. Walks each container once."""
    seen: dict[int, str] = {}
    stack: list[tuple[Any, str, int]] = [(config, "", 0)]
    count = 0
    while stack:
        value, key, depth = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            return [f"the config holds more than {MAX_CONFIG_VALUES} values. Fix: give a config of settings "
                    "(config/README.md lists them), not data"]
        if not isinstance(value, (dict, list)):
            continue
        if id(value) in seen:
            return [f"config key {key or '(top level)'}: the value repeats {seen[id(value)] or 'the top level'} "
                    "(a YAML alias, *name); configs are read without aliases. Fix: write the value out in full"]
        seen[id(value)] = key
        if depth >= MAX_CONFIG_DEPTH:
            return [f"config key {key}: nested more than {MAX_CONFIG_DEPTH} levels deep. Fix: give the value as "
                    "config/README.md describes it"]
        items = value.items() if isinstance(value, dict) else enumerate(value)
        stack.extend((item, f"{key}.{name}" if key else str(name), depth + 1) for name, item in items)
    return []


def config_problems(config: dict[str, Any], schema_path: str | os.PathLike) -> list[str]:
    if problems := shape_problems(config):
        return problems
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        allowed = _allowed(error.schema) if isinstance(error.schema, dict) else ""
        problems.append(f"config key {key}: {error.message}" + (f" (allowed: {allowed})" if allowed else ""))
    return problems


def expand_dotted_keys(config: dict[str, Any], schema_path: str | os.PathLike) -> None:
    """Move every top-level key ``a.b.c`` (a config file's ``a.b.c: value``, or ``filterlens stage --config
    a.b.c=value``) to ``config["a"]["b"]["c"]``, in place, replacing what was set there nested. A path that
    names no key of the schema raises :class:`ConfigError` naming the keys it may name. (Snakemake's own
    ``--config`` refuses a dotted key before the workflow starts; it takes ``--config 'a={b: value}'``.)"""
    schema = yaml.safe_load(Path(schema_path).read_text())
    problems = []
    for dotted in [key for key in config if isinstance(key, str) and "." in key]:
        value = config.pop(dotted)
        parts = dotted.split(".")
        spec, target, path = schema, config, []
        for index, part in enumerate(parts):
            known = spec.get("properties", {})
            if part not in known:
                where = f"section {'.'.join(path)}" if path else "the top level"
                problems.append(f"config key {dotted}: {'.'.join(path + [part])} is not a key of {where}; known: "
                                f"{', '.join(known) or 'none'}")
                break
            path.append(part)
            spec = known[part]
            if index == len(parts) - 1:
                target[part] = value
            elif isinstance(target.get(part), dict):
                target = target[part]
            elif target.get(part) is None and spec.get("type") == "object":
                target[part] = {}
                target = target[part]
            else:
                problems.append(f"config key {dotted}: {'.'.join(path)} is a value, not a section; set it as "
                                f"{'.'.join(path)}")
                break
    if problems:
        raise ConfigError(f"the config has {len(problems)} problem(s) with dotted keys:\n  - " + "\n  - ".join(problems)
                          + "\nFix: name a key as config/README.md lists it: figures.entropy: scaled in a config file, "
                          "or --config 'figures={entropy: scaled}' on snakemake's command line.")


def _types(spec: dict[str, Any]) -> set[str]:
    kinds = spec.get("type", [])
    kinds = {kinds} if isinstance(kinds, str) else set(kinds)
    for option in spec.get("oneOf", []):
        kinds |= _types(option)
    return kinds


def retype_command_line(config: dict[str, Any], command_line: dict[str, Any], schema_path: str | os.PathLike) -> None:
    """Give the values of a section set on the command line their types, in place.

    Snakemake reads ``--config 'training={epochs: 2, lr: 0.05}'`` with YAML's BaseLoader, which makes
    every value inside the braces a string ('2'); each such value whose key the schema does not allow
    to be a string is read again as YAML (2). Top-level values (``--config sheet=...``) keep
    Snakemake's own reading."""
    schema = yaml.safe_load(Path(schema_path).read_text())

    def walk(given: Any, target: dict[str, Any], spec: dict[str, Any]) -> None:
        for key, value in given.items():
            sub = spec.get("properties", {}).get(key)
            if sub is None or key not in target:
                continue
            if isinstance(value, dict) and isinstance(target[key], dict):
                walk(value, target[key], sub)
            elif isinstance(value, str) and target[key] == value and "string" not in _types(sub):
                try:
                    target[key] = yaml.safe_load(value)
                except yaml.YAMLError:
                    pass  # left a string: the schema check names the key

    for key, value in command_line.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            walk(value, config[key], schema.get("properties", {}).get(key, {}))


def check_config(config: dict[str, Any], schema_path: str | os.PathLike) -> None:
    if problems := config_problems(config, schema_path):
        raise ConfigError(f"the config has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))


# The config every run starts from, relative to the workflow's directory (the Snakefile's).
DEFAULT_CONFIG = Path("config") / "config.yaml"


def load_run_config(workflow_dir: str | os.PathLike, configfiles: list[str | os.PathLike] = (),
                    overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config of a run as the workflow loads it: ``config/config.yaml`` of ``workflow_dir``, each
    of ``configfiles`` merged over it key by key, then ``overrides`` (``--config``, keys may be dotted),
    checked against the schema and completed with its defaults. Raises :class:`ConfigError`."""
    from snakemake.utils import update_config, validate

    config: dict[str, Any] = {}
    for path in [Path(workflow_dir) / DEFAULT_CONFIG, *map(Path, configfiles)]:
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist. Fix: give the path of a config file (relative "
                              "to the working directory).")
        update_config(config, yaml.safe_load(path.read_text()) or {})
    update_config(config, dict(overrides or {}))
    expand_dotted_keys(config, CONFIG_SCHEMA)
    check_config(config, CONFIG_SCHEMA)
    validate(config, str(CONFIG_SCHEMA))
    return config
