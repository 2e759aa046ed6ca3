"""Names of the two depth definitions of docs/method.md §2 (filterlens.models.convgraph computes
them); config key analysis.depth_definition picks one.

Kept apart so that the reduction jobs, which check the configured name, do not import torch.
"""

from __future__ import annotations

from typing import Literal

DepthDefinition = Literal["graph_level", "conv_count"]
DEPTH_DEFINITIONS: tuple[str, ...] = ("graph_level", "conv_count")
DEFAULT_DEPTH_DEFINITION: DepthDefinition = "graph_level"  # the authors'


def check_depth_definition(definition: str) -> None:
    if definition not in DEPTH_DEFINITIONS:
        raise ValueError(f"unknown depth definition {definition!r}; use one of {', '.join(DEPTH_DEFINITIONS)} "
                         f"(config key analysis.depth_definition)")
