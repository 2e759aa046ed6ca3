"""Config sections (config.schema.yaml: training, evaluation) as training settings."""

from __future__ import annotations

from typing import Any

from filterlens.train.minizoo import PGDSettings, TrainSettings


def _fields(cls: type, section: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k in cls.__dataclass_fields__}


def pgd_from_config(section: dict[str, Any]) -> PGDSettings:
    """An attack from a section with eps, steps, step_size (and optional random_start...)."""
    return PGDSettings(**_fields(PGDSettings, section))


def settings_from_config(training: dict[str, Any], adversarial: bool) -> TrainSettings:
    """Normal training, or adversarial training with ``training['adversarial']``."""
    attack = pgd_from_config(training["adversarial"]) if adversarial else None
    return TrainSettings(**_fields(TrainSettings, {**training, "adversarial": attack}))
