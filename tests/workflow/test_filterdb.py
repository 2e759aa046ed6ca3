"""The published filter database as a source: a tiny database in the authors' layout (an (N, 9)
array, a meta table of INCLUSIVE "start:end" row ranges per layer), imported by the real
Snakefile into the filter stores and analysed; malformed meta tables fail with clear messages;
the download through the storage plugin is planned (dry run, no network)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, CodeRunningPayload, run_snakemake

from filterlens.extract.filterdb import FilterArray, FilterDBError, import_model, parse_meta, read_meta, sheet_id
from filterlens.extract.store import open_filter_store

ROBUST_10 = "robustbench_Addepalli2021Towards_RN18_cifar10_linf_13"
NORMAL_10 = "hso_normal_training_robustbench_Addepalli2021Towards_RN18_cifar10_13"
ROBUST_IN = "robustbench_Salman2020Do_R18_imagenet_linf_13"
NORMAL_IN = "timm_resnet18_imagenet1k_13"
OTHER = "robustbench_Wong2020Fast_cifar10_linf_13"  # in the database, not in the sheet

# (database name, [(c_in, c_out, conv_depth)] per 3x3 layer, max conv depth)
MODELS = [
    (ROBUST_10, [(3, 8, 0), (8, 8, 1), (8, 16, 2), (16, 16, 4)], 5),
    (OTHER, [(3, 4, 0), (4, 4, 1)], 2),
    (NORMAL_10, [(3, 8, 0), (8, 8, 1), (8, 16, 2), (16, 16, 4)], 5),
    (ROBUST_IN, [(64, 16, 1), (16, 16, 2), (16, 32, 3)], 4),  # 7x7 stem: no 3x3 layer at depth 0
    (NORMAL_IN, [(64, 16, 1), (16, 16, 2), (16, 32, 3)], 4),
]
SHEET_COLUMNS = ["model_id", "dataset", "architecture", "arch_kwargs", "robust", "source", "source_key",
                 "counterpart", "clean_acc", "robust_acc"]


def write_database(folder, seed=0):
    """filters.npy and meta.csv in the published layout; returns {database name: [layer rows]}."""
    rng = np.random.default_rng(seed)
    rows, meta, layers_of = [], [], {}
    start = 0
    for model_id, (name, layers, max_depth) in enumerate(MODELS):
        layers_of[name] = []
        for layer_id, (c_in, c_out, depth) in enumerate(layers):
            n = c_in * c_out
            block = (rng.normal(size=(n, 9)) * rng.uniform(0.05, 1, size=(n, 1))).astype(np.float32)
            block[rng.random(n) < 0.1] *= 1e-4  # some sparse filters
            rows.append(block)
            layers_of[name].append(block)
            meta.append({"model_id": model_id, "conv_depth": depth, "conv_depth_norm": depth / max_depth,
                         "layer_id": layer_id, "filter_ids": f"{start}:{start + n - 1}", "Name": name,
                         "Robust": name.startswith("robustbench"), "in_channels": c_in, "out_channels": c_out})
            start += n
            if name == OTHER:
                start += 5  # rows that belong to no layer are allowed
                rows.append(np.zeros((5, 9), np.float32))
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "filters.npy", np.concatenate(rows))
    pd.DataFrame(meta).to_csv(folder / "meta.csv", index=False)
    return layers_of


def _row(model_id, dataset, robust, source, source_key="", counterpart="", arch="robustbench", kwargs=None):
    return {"model_id": model_id, "dataset": dataset, "architecture": arch,
            "arch_kwargs": json.dumps(kwargs or {"dataset": dataset, "key": "Addepalli2021Towards_RN18",
                                                 "threat_model": "Linf"}),
            "robust": str(robust).lower(), "source": source, "source_key": source_key, "counterpart": counterpart,
            "clean_acc": "", "robust_acc": ""}


def write_zoo(workdir):
    """Database, sheet and config: each way of choosing the database is used once."""
    layers_of = write_database(workdir / "db")
    sheet = pd.DataFrame([
        # source filterdb, database name given
        _row("rb_cifar10_Addepalli2021Towards_RN18", "cifar10", True, "filterdb", ROBUST_10,
             "normal_cifar10_Addepalli2021Towards_RN18"),
        # source filterdb, database name derived from the id
        _row("normal_cifar10_Addepalli2021Towards_RN18", "cifar10", False, "filterdb"),
        # checkpoint sources, switched to the database by config filterdb.models
        _row("rb_imagenet_Salman2020Do_R18", "imagenet", True, "robustbench", "Salman2020Do_R18", "timm_resnet18",
             kwargs={"dataset": "imagenet", "key": "Salman2020Do_R18", "threat_model": "Linf"}),
        _row("timm_resnet18", "imagenet", False, "timm", "resnet18.tv_in1k", arch="timm",
             kwargs={"name": "resnet18"}),
    ], columns=SHEET_COLUMNS)
    sheet.to_csv(workdir / "sheet.tsv", sep="\t", index=False)
    config = {"sheet": "sheet.tsv", "extraction": {"chunk_rows": 1024},
              "filterdb": {"local_dir": "db", "filters_file": "filters.npy", "meta_file": "meta.csv",
                           "models": ["rb_imagenet_Salman2020Do_R18", "timm_resnet18"]}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return layers_of, dict(zip(sheet.model_id, [ROBUST_10, NORMAL_10, ROBUST_IN, NORMAL_IN]))


def test_database_names_map_to_sheet_ids():
    assert sheet_id(ROBUST_10) == "rb_cifar10_Addepalli2021Towards_RN18"
    assert sheet_id(NORMAL_10) == "normal_cifar10_Addepalli2021Towards_RN18"
    assert sheet_id("hso_normal_training_robustbench_Salman2020Do_R18_imagenet1k_13") == \
        "normal_imagenet_Salman2020Do_R18"
    assert sheet_id(ROBUST_IN) == "rb_imagenet_Salman2020Do_R18"
    assert sheet_id(NORMAL_IN) == "timm_resnet18"
    assert sheet_id("timm_wide_resnet50_2_imagenet1k_13") == "timm_wide_resnet50_2"
    assert sheet_id("something_else") is None


def test_every_paper_model_maps_to_a_paper_sheet_row():
    sheet = pd.read_csv(REPO / "config" / "models" / "paper.tsv", sep="\t", comment="#")
    pairings = pd.read_csv(REPO / "config" / "reference" / "paper_pairings.csv")
    names = set(pairings.Robust) | set(pairings.Normal)
    assert {sheet_id(n) for n in names} == set(sheet.model_id)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("filterdb")
    layers_of, names = write_zoo(workdir)
    targets = ["results/analysis/kl_by_dataset.tsv", "results/analysis/kl_by_depth.tsv",
               "results/analysis/quality_by_depth.tsv", "results/analysis/bases.tsv", "results/tables/models.tsv",
               "results/figures/fig4_first_layer_filters.png", "results/figures/fig5_last_layer_filters.png"]
    result = run_snakemake(workdir, "--configfile", str(workdir / "config.yaml"), "--cores", "2", *targets)
    return workdir, layers_of, names, result.stdout + result.stderr


def test_stores_equal_the_database_and_analyses_run(imported):
    workdir, layers_of, names, log = imported
    assert "extract_filters" not in log and "acquire_" not in log and "import_filterdb" in log
    for model_id, name in names.items():
        store = open_filter_store(workdir / "results" / "filters" / f"{model_id}.zarr")
        expected = np.concatenate(layers_of[name])
        np.testing.assert_array_equal(store.filters[:], expected)
        assert store.attrs["filterdb_name"] == name and store.attrs["depth_method"] == "filterdb"
        assert store.attrs["max_conv_depth"] == {ROBUST_10: 5, NORMAL_10: 5}.get(name, 4)
        spec = dict((m[0], m[1]) for m in MODELS)[name]
        assert list(store.layers.conv_depth) == [d for _, _, d in spec]
        assert list(store.layers.c_out) == [c for _, c, _ in spec]
        assert list(store.layers.row_stop - store.layers.row_start) == [a * b for a, b, _ in spec]
    kl = pd.read_csv(workdir / "results/analysis/kl_by_dataset.tsv", sep="\t")
    assert set(kl.dataset) >= {"cifar10", "imagenet"}
    assert np.isfinite(kl.select_dtypes("number").to_numpy()).all()
    quality = pd.read_csv(workdir / "results/analysis/quality_by_depth.tsv", sep="\t")
    assert set(quality.model_id) == set(names)
    assert quality.orthogonality.notna().any()
    models = pd.read_csv(workdir / "results/tables/models.tsv", sep="\t")
    assert dict(zip(models.model_id, models.n_filters)) == {
        m: sum(len(b) for b in layers_of[n]) for m, n in names.items()}


def test_a_second_run_does_nothing(imported):
    workdir = imported[0]
    result = run_snakemake(workdir, "--configfile", str(workdir / "config.yaml"), "-n", "results/tables/models.tsv")
    assert "Nothing to be done" in result.stdout + result.stderr


# Snakemake with the http storage plugin answering "exists" without network (a dry run asks
# the storage whether the input exists; this machine is offline).
OFFLINE_HTTP = """
import sys
import snakemake_storage_plugin_http as http

async def inventory(self, cache):
    pass

http.StorageObject.inventory = inventory
http.StorageObject.exists = lambda self: True
http.StorageObject.mtime = lambda self: 0.0
http.StorageObject.size = lambda self: 1
from snakemake.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_download_is_planned_through_the_storage_plugin(tmp_path):
    write_zoo(tmp_path)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    # defaults: dataset.h5 from Zenodo record 6414075 over http, with the md5 it is checked against
    config["filterdb"] = {"models": "all", "checksums": {"dataset.h5": "md5:" + "0" * 32}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-c", OFFLINE_HTTP, "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(tmp_path), "-n", "results/tables/models.tsv", "--configfile", str(tmp_path / "config.yaml")]
    result = subprocess.run(command, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "https://zenodo.org/records/6414075/files/dataset.h5" in output, output
    assert "https://zenodo.org/records/6414075/files/dataset.h5 (retrieve from storage)" in output, output
    assert len(re.findall(r"rule import_filterdb:", output)) == 4, output
    assert "rule extract_filters:" not in output
    assert not (tmp_path / "results").exists()  # a dry run


def test_the_paper_zoo_from_the_database_is_planned(tmp_path):
    (tmp_path / "over.yaml").write_text(f"filterdb:\n  models: all\n  checksums: {{dataset.h5: 'md5:{'0' * 32}'}}\n")
    command = [sys.executable, "-c", OFFLINE_HTTP, "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(tmp_path), "-n", "results/analysis/kl_by_dataset.tsv",
               "results/analysis/quality_by_depth.tsv", "results/tables/models.tsv", "--quiet", "rules",
               "--configfile", str(REPO / "config" / "paper.yaml"), str(tmp_path / "over.yaml")]
    result = subprocess.run(command, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", output, re.MULTILINE)}
    assert counts["import_filterdb"] == 114 and counts["summarize_model"] == 114, output
    assert not {"extract_filters", "acquire_robustbench", "acquire_timm", "train_cifar"} & set(counts), output


def test_the_default_target_needs_no_checkpoint_of_a_database_model(imported):
    workdir = imported[0]
    result = run_snakemake(workdir, "--configfile", str(workdir / "config.yaml"), "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not re.search(r"rule (acquire_\w+|train_\w+|random_init|extract_filters):", output), output


def test_config_naming_an_unknown_model_stops_before_any_job(tmp_path):
    write_zoo(tmp_path)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    config["filterdb"]["models"] = ["no_such_model"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"), check=False)
    assert result.returncode != 0
    assert "filterdb.models: 'no_such_model' is not a model of the sheet" in result.stdout + result.stderr


# --- malformed meta tables -------------------------------------------------------------------

@pytest.fixture()
def database(tmp_path):
    write_database(tmp_path)
    return tmp_path, read_meta(tmp_path / "meta.csv"), len(np.load(tmp_path / "filters.npy", mmap_mode="r"))


@pytest.mark.parametrize("change, message", [
    (lambda m: m.drop(columns=["conv_depth_norm", "filter_ids"]),
     r"missing column\(s\) \['filter_ids', 'conv_depth_norm'\]"),
    (lambda m: m.assign(filter_ids=m.filter_ids.where(m.index != 1, "24:100")), r"overlap"),
    (lambda m: m.assign(filter_ids=m.filter_ids.where(m.index != 2, "0:3")), r"overlap"),
    (lambda m: m.assign(filter_ids=m.filter_ids.where(m.index != 3, "10000:10010")),
     r"leaves the filter array of \d+ rows \(ranges are inclusive"),
    (lambda m: m.assign(filter_ids=m.filter_ids.where(m.index != 0, "5-9")), r"not an inclusive range 'start:end'"),
    (lambda m: m.assign(filter_ids=m.filter_ids.where(m.index != 0, "9:5")), r"ends before it starts"),
    (lambda m: m.assign(out_channels=m.out_channels + (m.index == 0)), r"c_out 9 x c_in 3"),
])
def test_malformed_meta_fails_with_a_clear_message(database, change, message):
    folder, meta, n = database
    with pytest.raises(FilterDBError, match=message):
        parse_meta(change(meta), n)


def test_the_inclusive_end_row_is_allowed(database):
    folder, meta, n = database
    last = meta.filter_ids.iloc[-1]
    assert int(last.split(":")[1]) == n - 1
    parse_meta(meta, n)


def test_unknown_model_and_inconsistent_depths(database, tmp_path):
    folder, meta, _ = database
    with pytest.raises(FilterDBError, match="'rb_cifar10_Nope' is not in the filter database"):
        import_model(folder / "filters.npy", meta, tmp_path / "x.zarr", "rb_cifar10_Nope", "cifar10")
    bad = meta.assign(conv_depth_norm=meta.conv_depth_norm.where(meta.index != 1, 0.9))
    with pytest.raises(FilterDBError, match="conv_depth / conv_depth_norm differs between layers"):
        import_model(folder / "filters.npy", bad, tmp_path / "x.zarr", "rb_cifar10_Addepalli2021Towards_RN18",
                     "cifar10")
    assert not (tmp_path / "x.zarr").exists()


def test_nan_filters_fail_and_leave_no_store(database, tmp_path):
    folder, meta, _ = database
    filters = np.load(folder / "filters.npy")
    filters[40, 3] = np.nan
    np.save(folder / "filters.npy", filters)
    with pytest.raises(FilterDBError, match=r"layer_id 1 \(rows 24:87\): NaN or Inf"):
        import_model(folder / "filters.npy", meta, tmp_path / "x.zarr", "rb_cifar10_Addepalli2021Towards_RN18",
                     "cifar10")
    assert not (tmp_path / "x.zarr").exists()


def test_without_channels_orthogonality_is_unknown(database, tmp_path):
    folder, meta, _ = database
    attrs = import_model(folder / "filters.npy", meta.drop(columns=["in_channels", "out_channels"]),
                         tmp_path / "x.zarr", "timm_resnet18", "imagenet")
    store = open_filter_store(tmp_path / "x.zarr")
    assert attrs["channels_known"] is False and (store.layers.c_out == 1).all()


AUTHORS_INDEX = ["model_id", "conv_depth", "conv_depth_norm", "layer_id"]


def write_authors_dataset_h5(folder, seed=0):
    """ONE dataset.h5 as the authors' scripts wrote it: the (N, 9) float32 dataset ``filters``
    (h5py) and, beside it in the same file, the pandas table ``meta`` (``DataFrame.to_hdf(...,
    "meta")``) indexed by (model_id, conv_depth, conv_depth_norm, layer_id), one row per layer,
    with ``filter_ids`` an inclusive "start:end" range and the model's meta columns (Name,
    Robust, ...), no channel counts. Returns {database name: [layer rows]}."""
    layers_of = write_database(folder, seed)
    filters = np.load(folder / "filters.npy")
    meta = pd.read_csv(folder / "meta.csv", dtype={"filter_ids": str})
    meta = meta.drop(columns=["in_channels", "out_channels"]).set_index(AUTHORS_INDEX)
    meta["model"] = meta.Name.str.removesuffix("_13") + ".onnx"
    (folder / "filters.npy").unlink()
    (folder / "meta.csv").unlink()
    with h5py.File(folder / "dataset.h5", "w") as handle:
        handle.create_dataset("filters", data=filters)
    meta.to_hdf(folder / "dataset.h5", key="meta")  # mode "a": next to the h5py dataset
    return layers_of


def test_hdf5_database_in_the_authors_layout(tmp_path):
    _, names = write_zoo(tmp_path)
    layers_of = write_authors_dataset_h5(tmp_path / "db")
    database = tmp_path / "db" / "dataset.h5"
    with h5py.File(database, "r") as handle:
        assert {"filters", "meta"} <= set(handle) and handle["filters"].shape[1:] == (9,)
    meta = read_meta(database)
    assert list(meta.columns[:5]) == [*AUTHORS_INDEX, "filter_ids"]
    assert meta.filter_ids.iloc[0] == "0:23" and len(meta) == sum(len(layers) for _, layers, _ in MODELS)

    # the library entry point, for every database model
    for name, layers, max_depth in MODELS:
        attrs = import_model(database, meta, tmp_path / f"{name}.zarr", sheet_id(name), "imagenet"
                             if "imagenet" in name else "cifar10", database_name=name)
        store = open_filter_store(tmp_path / f"{name}.zarr")
        np.testing.assert_array_equal(store.filters[:], np.concatenate(layers_of[name]))
        assert attrs["max_conv_depth"] == max_depth and attrs["channels_known"] is False
        assert list(store.layers.conv_depth) == [d for _, _, d in layers]

    # the rule: filters and meta from the one file (filterdb.meta_file = filterdb.filters_file)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    config["filterdb"].update(filters_file="dataset.h5", meta_file="dataset.h5")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/filters/{model}.zarr" for model in names]
    result = run_snakemake(tmp_path, "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", *targets)
    assert "rule import_filterdb:" in result.stdout + result.stderr
    for model_id, name in names.items():
        store = open_filter_store(tmp_path / "results" / "filters" / f"{model_id}.zarr")
        np.testing.assert_array_equal(store.filters[:], np.concatenate(layers_of[name]))
        assert store.attrs["filterdb_name"] == name and store.attrs["filterdb_files"] == ["dataset.h5"]


# --- no downloaded or given database file is trusted ------------------------------------------


READ_HDF = "import sys, warnings; warnings.simplefilter('ignore'); import pandas; pandas.read_hdf(sys.argv[1], 'meta')"


def _pandas_runs_it(path, marker):
    """The crafted file is a real threat: PyTables, through pandas.read_hdf, runs its payload."""
    subprocess.run([sys.executable, "-c", READ_HDF, str(path)], capture_output=True, timeout=120)
    ran = marker.exists()
    marker.unlink(missing_ok=True)
    return ran


def crafted_object_column(folder, marker):
    """The authors' dataset.h5, its meta table given one more object column whose value
    unpickles to os.system("touch <marker>") (PyTables stores object columns as pickles)."""
    write_authors_dataset_h5(folder)
    path = folder / "dataset.h5"
    meta = read_meta(path).set_index(AUTHORS_INDEX)
    meta["Paper"] = pd.Series([CodeRunningPayload(marker)] + ["x"] * (len(meta) - 1), index=meta.index, dtype=object)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta.to_hdf(path, key="meta")
    return path


def crafted_attribute(folder, marker, table_format):
    """dataset.h5 whose meta table has an attribute that PyTables unpickles (a string ending in
    "."): fixed format, the group's pandas_type; table format, the table's non_index_axes."""
    import pickle

    write_authors_dataset_h5(folder)
    path = folder / "dataset.h5"
    if table_format:
        meta = read_meta(path).set_index(AUTHORS_INDEX)
        meta.to_hdf(path, key="meta", format="table")
    evil = np.bytes_(pickle.dumps(CodeRunningPayload(marker), protocol=0))
    with h5py.File(path, "a") as handle:
        node = handle["meta/table"] if table_format else handle["meta"]
        node.attrs["non_index_axes" if table_format else "pandas_type"] = evil
    return path


@pytest.mark.parametrize("kind", ["object column", "fixed-format attribute", "table-format attribute"])
def test_a_crafted_meta_table_runs_no_code_and_is_refused_naming_the_file(tmp_path, kind):
    marker = tmp_path / "marker"
    if kind == "object column":
        path = crafted_object_column(tmp_path / "db", marker)
        expected = r"posix\.system, which is not numpy's array reconstruction"
    else:
        path = crafted_attribute(tmp_path / "db", marker, table_format=kind.startswith("table"))
        expected = r"'table' format" if kind.startswith("table") else r"not a pandas DataFrame in fixed format"
    assert _pandas_runs_it(path, marker), f"the crafted {kind} should run code under pandas.read_hdf"
    with pytest.raises(FilterDBError) as error:
        read_meta(path)
    message = str(error.value)
    assert str(path) in message and re.search(expected, message), message
    assert "Fix:" in message
    assert not marker.exists()


def test_the_meta_table_is_read_without_pytables_and_equals_pandas(tmp_path):
    """h5py's reading of the authors' layout gives pandas' own table, value for value."""
    import warnings

    write_authors_dataset_h5(tmp_path)
    path = tmp_path / "dataset.h5"
    ours = read_meta(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = pd.read_hdf(path, "meta").reset_index()
    assert list(ours.columns) == list(theirs.columns)
    for column in theirs.columns:
        assert [str(v) for v in ours[column]] == [str(v) for v in theirs[column]], column


def _cut(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep(len(data))])


@pytest.mark.parametrize("damage", ["truncated", "html page", "empty", "checksum differs"])
def test_a_bad_database_file_is_named_before_it_is_opened(tmp_path, damage):
    from filterlens.extract.filterdb import check_file

    write_authors_dataset_h5(tmp_path)
    path = tmp_path / "dataset.h5"
    checksum = None
    if damage == "truncated":
        _cut(path, lambda n: n - 1000)
    elif damage == "html page":
        path.write_bytes(b"<!DOCTYPE html><html><body>Zenodo is down for maintenance</body></html>")
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        checksum = "md5:" + "0" * 32
    expected = {"truncated": "is truncated", "html page": "HTML/XML page", "empty": "is empty",
                "checksum differs": f"expected {'0' * 32}"}[damage]
    # a file the user gave is named with the fix and left in place
    with pytest.raises(FilterDBError, match=re.escape(expected)) as error:
        check_file(path, checksum, downloaded=False)
    assert str(path) in str(error.value) and "Fix: replace" in str(error.value) and path.exists()
    # a downloaded copy is deleted, so that the next run fetches it again
    with pytest.raises(FilterDBError, match="Removed it: run again to download it anew"):
        check_file(path, checksum, downloaded=True)
    assert not path.exists()


def test_a_complete_file_and_its_checksum_pass(tmp_path):
    import hashlib

    from filterlens.extract.filterdb import check_file

    write_authors_dataset_h5(tmp_path)
    path = tmp_path / "dataset.h5"
    check_file(path, None, downloaded=True)
    check_file(path, "md5:" + hashlib.md5(path.read_bytes()).hexdigest().upper(), downloaded=True)
    assert path.exists()


def test_a_truncated_npy_array_is_named(tmp_path):
    from filterlens.extract.filterdb import check_file

    write_database(tmp_path)
    _cut(tmp_path / "filters.npy", lambda n: n // 2)
    with pytest.raises(FilterDBError, match=r"filters.npy is truncated: \d+ bytes of the \d+ its header"):
        check_file(tmp_path / "filters.npy", None, downloaded=False)


def test_an_http_download_without_a_checksum_stops_before_any_job(tmp_path):
    write_zoo(tmp_path)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    config["filterdb"] = {"models": "all", "checksums": {"dataset.h5": "md5:xyz", "other.h5": "md5:" + "0" * 32}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "filterdb.checksums.dataset.h5: checksum 'md5:xyz' is not 'md5:<32 hex digits>'" in output, output
    assert "'other.h5' is neither filters_file nor meta_file" in output, output
    config["filterdb"]["checksums"] = {}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "no checksum for 'dataset.h5', and the http download checks none" in output, output
    assert "download: zenodo" in output


# Snakemake's http plugin "downloading" from files of the test: the first retrieval leaves
# a cut-off dataset.h5 (an interrupted download), every later one the complete file.
FLAKY_HTTP = """
import os, shutil, sys
from pathlib import Path
import snakemake_storage_plugin_http as http

SOURCE = Path(os.environ["FLAKY_SOURCE"])

async def inventory(self, cache):
    pass

def retrieve(self):
    count = SOURCE / "retrievals"
    n = int(count.read_text()) if count.exists() else 0
    count.write_text(str(n + 1))
    os.makedirs(os.path.dirname(self.local_path()), exist_ok=True)
    data = (SOURCE / "dataset.h5").read_bytes()
    Path(self.local_path()).write_bytes(data[: len(data) // 2] if n == 0 else data)

http.StorageObject.inventory = inventory
http.StorageObject.exists = lambda self: True
http.StorageObject.mtime = lambda self: 0.0
http.StorageObject.size = lambda self: 1
http.StorageObject.retrieve_object = retrieve
from snakemake.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.workflow
def test_an_interrupted_download_is_deleted_and_fetched_again(tmp_path):
    import hashlib
    import os

    _, names = write_zoo(tmp_path)
    source = tmp_path / "zenodo"
    layers_of = write_authors_dataset_h5(source)
    md5 = hashlib.md5((source / "dataset.h5").read_bytes()).hexdigest()
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    config["filterdb"] = {"models": ["rb_cifar10_Addepalli2021Towards_RN18"], "checksums": {"dataset.h5": f"md5:{md5}"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    target = "results/filters/rb_cifar10_Addepalli2021Towards_RN18.zarr"
    command = [sys.executable, "-c", FLAKY_HTTP, "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(tmp_path), "--cores", "1", target, "--configfile", str(tmp_path / "config.yaml")]
    env = {**os.environ, "FLAKY_SOURCE": str(source)}
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode != 0
    log = (tmp_path / "logs" / "import_filterdb" / "rb_cifar10_Addepalli2021Towards_RN18.log").read_text()
    assert re.search(r"the downloaded filter database file \S*dataset.h5 has md5 [0-9a-f]{32} .* expected " + md5,
                     log), log
    assert "Removed it: run again to download it anew" in log
    assert not list((tmp_path / ".snakemake" / "storage").rglob("dataset.h5"))
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (source / "retrievals").read_text() == "2"
    store = open_filter_store(tmp_path / target)
    np.testing.assert_array_equal(store.filters[:], np.concatenate(layers_of[ROBUST_10]))


def _crafted_filters(path, kind, secret):
    """dataset.h5 whose ``filters`` node reads something other than the file's own bytes, or
    declares more rows than the file stores."""
    with h5py.File(path, "w") as handle:
        if kind == "external storage":
            handle.create_dataset("filters", shape=(4, 9), dtype="<f4", external=[(str(secret), 0, h5py.h5f.UNLIMITED)])
        elif kind == "external link":
            with h5py.File(secret.with_suffix(".h5"), "w") as other:
                other.create_dataset("filters", data=np.ones((4, 9), np.float32))
            handle["filters"] = h5py.ExternalLink(str(secret.with_suffix(".h5")), "filters")
        elif kind == "virtual dataset":
            with h5py.File(secret.with_suffix(".h5"), "w") as other:
                other.create_dataset("filters", data=np.ones((4, 9), np.float32))
            layout = h5py.VirtualLayout(shape=(4, 9), dtype="<f4")
            layout[:] = h5py.VirtualSource(str(secret.with_suffix(".h5")), "filters", shape=(4, 9))
            handle.create_virtual_dataset("filters", layout)
        elif kind == "soft link loop":
            handle["filters"] = h5py.SoftLink("/loop")
            handle["loop"] = h5py.SoftLink("/filters")
        elif kind == "declared, not stored (chunked)":
            handle.create_dataset("filters", shape=(2**40, 9), chunks=(1024, 9), dtype="<f4", compression="gzip")
            handle["filters"][:1024] = 1.0
        elif kind == "declared, not stored (contiguous)":
            handle.create_dataset("filters", shape=(2**20, 9), dtype="<f4")  # never written: no storage
        elif kind == "huge chunks":
            handle.create_dataset("filters", shape=(2**26, 9), chunks=(2**26, 9), dtype="<f4", compression="gzip")


@pytest.mark.parametrize("kind, expected", [
    ("external storage", "keeps its values in external files"),
    ("external link", "is an external link"),
    ("virtual dataset", "is a virtual dataset"),
    ("soft link loop", "is a soft link"),
    ("declared, not stored (chunked)", "declares shape .* the file stores 1 of them"),
    ("declared, not stored (contiguous)", "declares shape .* the file stores 0 bytes"),
    ("huge chunks", "above the .* bytes a reader decodes at once"),
])
def test_a_database_file_is_read_from_itself_alone_and_within_what_it_stores(tmp_path, kind, expected):
    secret = tmp_path / "secret"
    secret.write_bytes(np.arange(36, dtype=np.float32).tobytes())  # another file of the machine
    path = tmp_path / "dataset.h5"
    _crafted_filters(path, kind, secret)
    with pytest.raises(FilterDBError) as error:
        FilterArray(path)
    message = str(error.value)
    assert str(path) in message and "'filters'" in message and re.search(expected, message), message
    assert "Fix:" in message


def test_a_meta_table_behind_a_link_is_refused(tmp_path):
    write_authors_dataset_h5(tmp_path / "db")
    path = tmp_path / "db" / "dataset.h5"
    with h5py.File(path, "a") as handle:
        handle.move("meta", "real_meta")
        handle["meta"] = h5py.SoftLink("/real_meta")
    with pytest.raises(FilterDBError, match=r"node 'meta' is a soft link"):
        read_meta(path)


def test_a_zarr_database_array_is_read_with_blosc_alone_and_within_its_chunks(tmp_path):
    import struct

    import zarr
    from zarr.codecs import BloscCodec, GzipCodec

    rows = np.random.default_rng(0).standard_normal((32, 9)).astype(np.float32)
    good = zarr.create_array(str(tmp_path / "good.zarr"), data=rows, chunks=(8, 9), compressors=(BloscCodec(),))
    assert FilterArray(tmp_path / "good.zarr").rows(0, 32).tolist() == rows.tolist()
    zarr.create_array(str(tmp_path / "gzip.zarr"), data=rows, chunks=(8, 9), compressors=(GzipCodec(),))
    with pytest.raises(FilterDBError, match=r"gzip.zarr: the filter array's codecs are BytesCodec, GzipCodec; a Zarr "
                                            r"database is read with Blosc \(and CRC32C\) only\. Fix: "):
        FilterArray(tmp_path / "gzip.zarr")
    chunk = tmp_path / "good.zarr" / good.metadata.chunk_key_encoding.encode_chunk_key((1, 0))
    data = bytearray(chunk.read_bytes())
    data[4:8] = struct.pack("<I", 2**31 - 1)
    chunk.write_bytes(bytes(data))
    with pytest.raises(FilterDBError, match=r"chunk c/1/0 of the filter array \(\d+ bytes\) announces 2147483647"):
        FilterArray(tmp_path / "good.zarr")


@pytest.mark.parametrize("dtype", ["complex64", "int16", "[('a', '<f4')]"])
def test_a_database_array_of_another_dtype_is_refused_by_name(tmp_path, dtype):
    path = tmp_path / "filters.npy"
    np.save(path, np.zeros((4, 9), dtype=eval(dtype) if dtype.startswith("[") else dtype))
    with pytest.raises(FilterDBError, match=r"filters.npy: (the filter array holds .*, not floating-point filters|"
                                            r"the filter array has shape)"):
        FilterArray(path)


def test_a_layer_larger_than_the_jobs_memory_allows_is_refused_before_it_is_read(database, tmp_path):
    folder, meta, _ = database
    model = "rb_cifar10_Addepalli2021Towards_RN18"
    # its largest layer holds 16 x 16 filters: 9216 bytes as float32 rows
    with pytest.raises(FilterDBError, match=r"layer_id \d+: its meta row declares 256 filters \(9216 bytes\), above the "
                                            r"9000 bytes this job reads a layer in\. Fix: raise the rule's memory"):
        import_model(folder / "filters.npy", meta, tmp_path / "x.zarr", model, "cifar10", max_layer_bytes=9000)
    assert not (tmp_path / "x.zarr").exists()
    import_model(folder / "filters.npy", meta, tmp_path / "x.zarr", model, "cifar10", max_layer_bytes=9216)
