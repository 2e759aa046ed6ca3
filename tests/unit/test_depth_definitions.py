"""Switching the depth definition or the sparse reference without touching filters: stores hold
both depths and both references, analyses select one in memory, and stores of older formats are
upgraded in place (docs/method.md)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import zarr

from test_convgraph_known_answers import PreActToy

from filterlens.cli import main
from filterlens.extract.store import (FORMAT_VERSION, FilterStoreError, FilterStoreWriter, open_filter_store,
                                      with_depth_definition)
from filterlens.extract.store_upgrade import rewrite_attrs
from filterlens.extract.weights import iter_layer_rows, plan_extraction
from filterlens.method.filters import SPARSE_REFERENCES
from filterlens.models.architectures import build_architecture
from filterlens.reduce.passes import summarize

SHEET = ("model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc"
         "\trobust_acc\n"
         'dm\tcoloured_digits\tdm_wide_resnet\t{"depth": 10, "width": 1}\tfalse\tminizoo\t\t\t\t\n')


def _write_store(path, model, example, fold=True):
    plan = plan_extraction(model, example, fold_batchnorm=fold)
    attrs = {"model_id": path.stem, "dataset": "coloured_digits", "depth_method": plan.depth_method,
             "depth_definition": plan.depth_definition, "max_conv_depth": plan.max_conv_depth,
             "max_conv_depths": plan.max_conv_depths, "fold_batchnorm": fold}
    with FilterStoreWriter(path, plan.n_filters, 64, attrs) as writer:
        for layer, rows in iter_layer_rows(model, plan):
            writer.write_layer(layer, rows)
    return plan


def _filter_bytes(path):
    """Digest of every file under the filters array: the upgrade must not touch one."""
    digest = hashlib.sha256()
    for file in sorted((path / "filters").rglob("*")):
        if file.is_file():
            digest.update(str(file.relative_to(path)).encode() + file.read_bytes())
    return digest.hexdigest()


def test_a_store_switches_definition_in_memory_and_its_summary_follows(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "toy.zarr"
    _write_store(path, PreActToy(), torch.zeros(1, 3, 8, 8))
    store = open_filter_store(path)
    assert store.attrs["depth_definition"] == "graph_level" and store.attrs["max_conv_depth"] == 4
    assert store.layers.conv_depth.tolist() == [0, 2, 3, 4]
    counted = with_depth_definition(store, "conv_count")
    assert counted.layers.conv_depth.tolist() == [0, 1, 2, 3]
    assert counted.layers.conv_depth_norm.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert counted.attrs["max_conv_depth"] == 3 and counted.attrs["depth_definition"] == "conv_count"
    assert counted.filters is store.filters
    assert with_depth_definition(store, "graph_level") is store and with_depth_definition(store, None) is store
    levels, _ = summarize(store, threads=1, max_rows=1000)
    counts, _ = summarize(counted, threads=1, max_rows=1000)
    # conv1 at graph level 2 of 4 sits in (0.4, 0.5]; counting convs, 1 of 3 in (0.3, 0.4].
    assert levels.depth_group.tolist() == ["first", "0.4-0.5", "0.7-0.8", "0.9-1.0"]
    assert counts.depth_group.tolist() == ["first", "0.3-0.4", "0.6-0.7", "0.9-1.0"]
    assert set(levels.depth_definition) == {"graph_level"} and set(counts.depth_definition) == {"conv_count"}
    assert levels.bn_folded.tolist() == [True, True, False, False]  # stem -> bn0, conv1 -> bn1
    assert levels.drop(columns=["conv_depth", "conv_depth_norm", "max_conv_depth", "depth_group",
                                "depth_definition"]).equals(
        counts.drop(columns=["conv_depth", "conv_depth_norm", "max_conv_depth", "depth_group", "depth_definition"]))


def test_a_definition_the_store_does_not_record_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "db.zarr"
    _write_store(path, PreActToy(), torch.zeros(1, 3, 8, 8))
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    attrs["layers"]["conv_depth_conv_count"] = [None] * len(attrs["layers"]["name"])
    attrs.update(depth_method="filterdb", max_conv_depths={"graph_level": 4, "conv_count": None})
    rewrite_attrs(path, attrs)
    with pytest.raises(FilterStoreError, match=r"records no depth under the definition 'conv_count'.*"
                                               r"analysis.depth_definition: graph_level"):
        with_depth_definition(open_filter_store(path), "conv_count")


def _as_version_1(path):
    """Rewrite a store's attributes as the version-1 writer left them: one depth, counting convs,
    no row sums."""
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    layers = attrs["layers"]
    del layers["max_row_sum"]
    layers["conv_depth"] = layers.pop("conv_depth_conv_count")
    top = attrs["max_conv_depths"]["conv_count"]
    layers["conv_depth_norm"] = [d / top for d in layers["conv_depth"]]
    del layers["conv_depth_graph_level"]
    for key in ("depth_definition", "max_conv_depths"):
        del attrs[key]
    attrs.update(format_version=1, max_conv_depth=top)
    rewrite_attrs(path, attrs)


def test_a_version_1_store_is_refused_naming_the_upgrade_and_upgraded_in_place_filters_untouched(tmp_path, capsys):
    torch.manual_seed(0)
    model = build_architecture("dm_wide_resnet", {"depth": 10, "width": 1}, 10)
    path = tmp_path / "dm.zarr"
    plan = _write_store(path, model, torch.zeros(1, 3, 32, 32))
    assert plan.max_conv_depths["graph_level"] != plan.max_conv_depths["conv_count"]  # DM blocks' F.pad
    before = open_filter_store(path)
    filters, layers = before.filters[:], before.layers
    _as_version_1(path)
    digest = _filter_bytes(path)
    with pytest.raises(FilterStoreError, match=r"format version 1.*filterlens upgrade-stores --configfile"):
        open_filter_store(path)
    config = _upgrade_config(tmp_path)
    assert main(["upgrade-stores", "--configfile", str(config), str(path)]) == 0
    assert f"version 1 -> {FORMAT_VERSION}" in capsys.readouterr().out
    after = open_filter_store(path)
    assert _filter_bytes(path) == digest
    np.testing.assert_array_equal(after.filters[:], filters)
    assert after.attrs["upgraded_from_format_version"] == 1 and after.attrs["architecture"] == "dm_wide_resnet"
    for column in ("conv_depth", "conv_depth_norm", "conv_depth_graph_level", "conv_depth_conv_count", "bn_folded",
                   "max_abs", "max_row_sum", "row_start", "row_stop"):
        assert after.layers[column].tolist() == layers[column].tolist(), column
    assert after.attrs["max_conv_depths"] == plan.max_conv_depths
    # A second run leaves the current store alone.
    assert main(["upgrade-stores", "--configfile", str(config), str(path)]) == 0
    assert "left as it is" in capsys.readouterr().out


def _upgrade_config(tmp_path):
    """A config file whose sheet names the toy models, as `filterlens upgrade-stores --configfile` reads it."""
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(SHEET)
    config = tmp_path / "config.yaml"
    config.write_text(f"sheet: {sheet}\n")
    return config


def test_the_upgrade_refuses_a_store_of_another_architecture(tmp_path, capsys):
    path = tmp_path / "dm.zarr"
    _write_store(path, PreActToy(), torch.zeros(1, 3, 8, 8))
    _as_version_1(path)
    config = _upgrade_config(tmp_path)
    assert main(["upgrade-stores", "--configfile", str(config), str(path)]) == 1
    assert "differ from the store's" in capsys.readouterr().err
    assert zarr.open_group(str(path), mode="r").attrs["format_version"] == 1


def _as_version_3(path):
    """Rewrite a store's attributes as the version-3 writer left them: no max_row_sum."""
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    del attrs["layers"]["max_row_sum"]
    attrs["format_version"] = 3
    rewrite_attrs(path, attrs)


def test_a_version_3_store_keeps_working_names_the_upgrade_for_the_row_sum_and_gets_it_from_its_rows(tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "toy.zarr"
    _write_store(path, PreActToy(), torch.zeros(1, 3, 8, 8))
    current = open_filter_store(path)
    row_sums = current.layers.max_row_sum.tolist()
    for layer in current.layers.itertuples():  # the authors' np.linalg.norm(W, np.inf) of the layer's rows
        rows = current.filters[layer.row_start:layer.row_stop].astype(np.float64)
        assert layer.max_row_sum == pytest.approx(np.linalg.norm(rows, np.inf), rel=1e-15), layer.name
    expected = {reference: summarize(current, 1, 1000, reference)[0] for reference in SPARSE_REFERENCES}
    _as_version_3(path)
    digest = _filter_bytes(path)
    old = open_filter_store(path)
    assert old.attrs["format_version"] == 3 and old.layers.max_row_sum.isna().all()
    assert summarize(old, 1, 1000)[0].equals(expected["max_abs"]), "the default reads a version-3 store as it is"
    with pytest.raises(FilterStoreError, match=r"format version 3, whose layer table has no max_row_sum.*"
                                               r"filterlens upgrade-stores --configfile .*"
                                               r"or set analysis.sparse_reference: max_abs \(and analysis.sensitivity: false"):
        summarize(old, 1, 1000, "max_row_sum")
    assert main(["upgrade-stores", "--configfile", str(_upgrade_config(tmp_path)), str(path)]) == 0
    assert f"version 3 -> {FORMAT_VERSION}" in capsys.readouterr().out
    after = open_filter_store(path)
    assert _filter_bytes(path) == digest
    assert after.attrs["format_version"] == FORMAT_VERSION and after.attrs["upgraded_from_format_version"] == 3
    assert after.layers.max_row_sum.tolist() == row_sums, "the writer's row sums, from the store's own rows"
    for reference in SPARSE_REFERENCES:
        assert summarize(after, 1, 1000, reference)[0].equals(expected[reference]), reference


def test_the_upgrade_refuses_a_store_whose_rows_contradict_its_layer_table(tmp_path, capsys):
    path = tmp_path / "toy.zarr"
    _write_store(path, PreActToy(), torch.zeros(1, 3, 8, 8))
    _as_version_3(path)
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    attrs["layers"]["max_abs"][1] *= 2
    rewrite_attrs(path, attrs)
    assert main(["upgrade-stores", "--configfile", str(_upgrade_config(tmp_path)), str(path)]) == 1
    assert "layer table says" in capsys.readouterr().err
    assert zarr.open_group(str(path), mode="r").attrs["format_version"] == 3
