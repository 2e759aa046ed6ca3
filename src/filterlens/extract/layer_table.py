"""The layer table of a filter store: one row per extracted 3x3 layer (no torch needed).

``conv_depth`` and ``conv_depth_norm`` hold the depth under the definition the store's
``depth_definition`` attribute names; ``conv_depth_graph_level`` and ``conv_depth_conv_count``
hold it under each definition (docs/method.md), so that analyses can switch definition without
reading or rewriting the filters (:func:`filterlens.extract.store.with_depth_definition`). None
where a store does not know a definition (a filter database import has the authors' depth only).
"""

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
    # max |W| over the layer and its largest row sum of |W| (np.linalg.norm(W, np.inf) of the
    # (n, 9) matrix), recorded by the store writer: the reductions need the one that
    # analysis.sparse_reference names before they read the layer (the sparse threshold), and
    # check max |W| as they read. None in the table of a store older than format version 4.
    max_abs: float = float("nan")
    max_row_sum: float = float("nan")
    conv_depth_graph_level: int | None = None
    conv_depth_conv_count: int | None = None

    @property
    def n_filters(self) -> int:
        return self.row_stop - self.row_start

    def as_dict(self) -> dict:
        return asdict(self)


# The layer table's columns in a store's ``layers`` attribute, in Layer's order.
LAYER_COLUMNS = [f for f in Layer.__dataclass_fields__]
