"""How a store's rows are planned into segments (Dask tasks) and pieces."""

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filterlens.reduce.streaming import Piece, plan_segments


def _layers(sizes):
    stops = pd.Series(sizes).cumsum()
    return pd.DataFrame({"layer_id": range(len(sizes)), "row_start": stops - pd.Series(sizes), "row_stop": stops})


def test_layers_group_up_to_group_rows_and_split_only_beyond_max_rows():
    segments = plan_segments(_layers([300, 300, 900, 2500, 100]), chunk_rows=100, max_rows=2000, group_rows=1000)
    assert [(s.start, s.stop) for s in segments] == [(0, 600), (600, 1500), (1500, 3500), (3500, 4100)]
    # the 900-row layer exceeds group_rows but fits in memory: kept whole, so its
    # orthogonality is computed from the segment instead of being read again
    assert [s.whole_layers for s in segments] == [(0, 1), (2,), (), (4,)]


def test_segments_tile_the_store_and_pieces_stay_within_one_layer_and_chunk():
    layers = _layers([70, 130, 1000, 45, 5000, 1])
    for max_rows, group_rows in ((4096, 1 << 20), (256, 128), (10**6, 300)):
        segments = plan_segments(layers, chunk_rows=64, max_rows=max_rows, group_rows=group_rows)
        assert segments[0].start == 0 and segments[-1].stop == layers.row_stop.iloc[-1]
        assert all(a.stop == b.start for a, b in zip(segments, segments[1:]))
        assert all(s.stop - s.start <= max(max_rows, 64) for s in segments)
        pieces = [p for s in segments for p in s.pieces]
        assert [(p.start, p.stop) for p in pieces] == sorted((p.start, p.stop) for p in pieces)
        for p in pieces:
            layer = layers.iloc[p.layer_id]
            assert layer.row_start <= p.start < p.stop <= layer.row_stop
            assert p.start // 64 == (p.stop - 1) // 64


# --- the planner on any layer table (hypothesis) ----------------------------------------------

PLANS = settings(max_examples=150, deadline=None, derandomize=True,  # the same examples on every run
                 suppress_health_check=[HealthCheck.too_slow])


def _pieces_of_the_store(layers, chunk_rows):
    """Every (layer, chunk) intersection in row order: the pieces whatever the memory bound."""
    pieces = []
    for layer in layers.itertuples():
        for chunk in range(layer.row_start // chunk_rows, (layer.row_stop - 1) // chunk_rows + 1):
            pieces.append(Piece(layer.layer_id, max(layer.row_start, chunk * chunk_rows),
                                min(layer.row_stop, (chunk + 1) * chunk_rows)))
    return pieces


@PLANS
@given(sizes=st.lists(st.integers(1, 400), min_size=1, max_size=10), chunk_rows=st.integers(1, 300),
       max_rows=st.integers(1, 1500), group_rows=st.integers(1, 1500))
def test_any_plan_tiles_the_store_in_pieces_of_one_layer_and_chunk_within_the_bound(sizes, chunk_rows, max_rows,
                                                                                    group_rows):
    layers = _layers(sizes)
    segments = plan_segments(layers, chunk_rows=chunk_rows, max_rows=max_rows, group_rows=group_rows)
    # the segments tile the store, in order, none empty
    assert [s.start for s in segments] == [0] + [s.stop for s in segments[:-1]]
    assert segments[-1].stop == sum(sizes) and all(s.start < s.stop for s in segments)
    for s in segments:
        # within the bound, unless one chunk is larger than the bound: then the segment stays inside one chunk
        assert s.stop - s.start <= max_rows or (chunk_rows > max_rows
                                                and s.start // chunk_rows == (s.stop - 1) // chunk_rows)
        # the segment's pieces tile it
        assert [p.start for p in s.pieces] == [s.start] + [p.stop for p in s.pieces[:-1]]
        assert s.pieces[-1].stop == s.stop
        inside = layers[(layers.row_start >= s.start) & (layers.row_stop <= s.stop)]
        assert s.whole_layers == tuple(inside.layer_id)
    # each piece lies in one layer and one chunk, and the pieces do not depend on the bound
    for p in (p for s in segments for p in s.pieces):
        layer = layers.iloc[p.layer_id]
        assert layer.row_start <= p.start < p.stop <= layer.row_stop
        assert p.start // chunk_rows == (p.stop - 1) // chunk_rows
    assert [p for s in segments for p in s.pieces] == _pieces_of_the_store(layers, chunk_rows)
    # a layer is split only where the bound requires it
    for layer, size in zip(layers.itertuples(), sizes):
        holding = [s for s in segments if layer.layer_id in s.whole_layers]
        assert len(holding) <= 1 and (len(holding) == 1 or size > max_rows)
