"""How a store's rows are planned into segments (Dask tasks) and pieces."""

import pandas as pd

from filterlens.reduce.streaming import plan_segments


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
