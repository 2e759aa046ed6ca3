"""Validate a workflow config against its JSON schema, with messages a user can act on.

Every violation is reported at once as ``key.path: problem (allowed: ...)``; Snakemake's own
``validate`` then fills in the schema's defaults.
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


def check_config(config: dict[str, Any], schema_path: str | os.PathLike) -> None:
    if problems := config_problems(config, schema_path):
        raise ConfigError(f"the config has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
