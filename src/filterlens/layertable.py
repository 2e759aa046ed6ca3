"""The layer table of a filter store: one row per extracted 3x3 layer (no torch needed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Layer:
    """One row of a model's layer table."""

    layer_id: int
    name: str
    conv_depth: int
    conv_depth_norm: float
    c_in: int
    c_out: int
    groups: int
    row_start: int
    row_stop: int  # exclusive
    bn_folded: bool

    @property
    def n_filters(self) -> int:
        return self.row_stop - self.row_start

    def as_dict(self) -> dict:
        return asdict(self)
