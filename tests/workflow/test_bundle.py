"""The reference bundle (docs/bundle.md): export and checked reading, and placing two candidate
models of a fresh working directory against the micro run's bundle."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import FAKE_RUN_BINS, REPO, SNAKEMAKE, bundle_members, fake_run, rewrite_bundle, run_snakemake
from filterlens.analyse.bundle import BundleError, checksum_path, export_bundle, read_bundle
from filterlens.analyse.placement import closer_pool
from filterlens.cli import main
from filterlens.io.files import read_tsv
from filterlens.method.depth_groups import DEPTH_GROUPS

SHEET = REPO / "config" / "models" / "micro.tsv"
BINS = FAKE_RUN_BINS


@pytest.fixture
def bundle(tmp_path) -> Path:
    archive = tmp_path / "reference.tar.gz"
    export_bundle(fake_run(tmp_path / "run"), archive, SHEET)
    return archive


@pytest.mark.parametrize(("missing", "rule"), [
    ("results/summaries/micro_robust/histograms.npz", "coefficient_histograms"),
    ("results/analysis/coefficient_range.tsv", "global_coefficient_range"),
    ("results/provenance/provenance.json", "provenance"),
])
def test_a_run_without_a_file_of_the_bundle_names_the_file_and_its_rule(tmp_path, capsys, missing, rule):
    run = fake_run(tmp_path / "run")
    (run / missing).unlink()
    archive = tmp_path / "reference.tar.gz"
    assert main(["export-bundle", str(run), str(archive), "--sheet", str(SHEET)]) == 1
    error = capsys.readouterr().err
    assert f"{missing} (rule {rule})" in error and "Fix: finish the run" in error, error
    assert "Traceback" not in error and not archive.exists()


def test_the_bundle_command_takes_the_sheet_from_the_runs_provenance(tmp_path, capsys):
    archive = tmp_path / "reference.tar.gz"
    assert main(["export-bundle", str(fake_run(tmp_path / "run")), str(archive)]) == 0
    assert f"{archive}: " in capsys.readouterr().out and read_bundle(archive).bins == BINS


def test_a_bundle_holds_the_reference_and_reads_back(bundle, tmp_path):
    read = read_bundle(bundle)
    assert read.bins == BINS and (read.low, read.high) == (-1.0, 1.0)
    assert read.manifest["definitions"]["depth_definition"] == "graph_level"
    assert set(read.layers) == {"micro_normal", "micro_robust"}
    with np.load(tmp_path / "run/results/summaries/micro_robust/histograms.npz") as data:
        robust = data["counts"]
    np.testing.assert_array_equal(read.pool("coloured_digits", "robust", "all"), robust.sum(axis=0))
    np.testing.assert_array_equal(read.pool("coloured_digits", "robust", "0.4-0.5"), robust[1])
    assert read.pool("coloured_digits", "normal", "0.1-0.2").sum() == 0
    with pytest.raises(BundleError, match="no robust pool of dataset 'cifar10'"):
        read.pool("cifar10", "robust", "all")


def test_the_same_run_exports_the_same_bytes(bundle, tmp_path):
    again = tmp_path / "again.tar.gz"
    export_bundle(tmp_path / "run", again, SHEET)
    assert again.read_bytes() == bundle.read_bytes()


def test_an_altered_archive_is_refused(bundle):
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 1
    bundle.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match .*damaged or altered"):
        read_bundle(bundle)


def test_a_bundle_without_its_checksum_file_is_refused(bundle):
    checksum_path(bundle).unlink()
    with pytest.raises(BundleError, match="sha256 is missing"):
        read_bundle(bundle)


def test_an_altered_member_is_refused_even_with_a_new_archive_checksum(bundle):
    members = bundle_members(bundle)
    members["coefficient_range.tsv"] = b"min\tmax\n-9\t9\n"
    rewrite_bundle(bundle, members, fix_manifest=False)
    with pytest.raises(BundleError, match="coefficient_range.tsv does not match its sha256"):
        read_bundle(bundle)


@pytest.mark.parametrize("name", ["../outside.tsv", "/etc/passwd", "layers/../../x.tsv", "notes.txt"])
def test_members_outside_the_allow_list_are_refused(bundle, name, tmp_path):
    rewrite_bundle(bundle, {**bundle_members(bundle), name: b"x"})
    with pytest.raises(BundleError, match="is not one a bundle holds"):
        read_bundle(bundle)
    assert not (tmp_path / "outside.tsv").exists()


def test_a_pickled_array_is_never_unpickled(bundle, tmp_path):
    marker = tmp_path / "ran"
    from conftest import CodeRunningPayload

    buffer = io.BytesIO()
    np.savez(buffer, counts=np.array([CodeRunningPayload(marker)], dtype=object), allow_pickle=True)
    rewrite_bundle(bundle, {**bundle_members(bundle), "pools.npz": buffer.getvalue()})
    with pytest.raises(BundleError, match=r"cannot be read .*array 'counts' is object of shape \(1,\)"):
        read_bundle(bundle)
    assert not marker.exists()


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _manifest_edit(bundle: Path, edit) -> dict[str, bytes]:
    members = bundle_members(bundle)
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    return {**members, "manifest.json": json.dumps(manifest).encode()}


@pytest.mark.parametrize("damage, message", [
    (lambda b: {**bundle_members(b), "manifest.json": b"[1, 2]"}, r"manifest.json: it is a list, not an object"),
    (lambda b: {**bundle_members(b), "manifest.json": b'{"format": "\xff\xfe"}'.replace(b"\\xff\\xfe", b"\xff\xfe")},
     r"manifest.json is not UTF-8 text"),
    (lambda b: {**bundle_members(b), "manifest.json": b"[" * 100_000 + b"]" * 100_000},
     r"manifest.json nests deeper than 16 levels"),
    (lambda b: _manifest_edit(b, lambda m: m["definitions"]["range"].update(low=2.0)),
     r"'definitions.range' is .*not finite low < high"),
    (lambda b: {**bundle_members(b), "basis_full.npz": _npz(n=np.array(5), mean=np.zeros(9), components=np.zeros((3, 3)),
                                                      explained_variance=np.ones(9), ratio=np.ones(9) / 9)},
     r"array 'components' is float64 of shape \(3, 3\) .* expected numbers of shape \(9, 9\)"),
    (lambda b: {**bundle_members(b), "basis_full.npz": _npz(n=np.array(5), mean=np.full(9, np.nan),
                                                      components=np.eye(9), explained_variance=np.ones(9),
                                                      ratio=np.ones(9) / 9)},
     r"basis_full.npz: array\(s\) mean hold NaN or infinite values"),
    # 3 MB of zeros that a .npz declares as counts of the wrong shape: refused by its header, not inflated
    (lambda b: {**bundle_members(b), "pools.npz": _npz(counts=np.zeros((2**20, 9, 8), np.int64))},
     r"array 'counts' is int64 of shape \(1048576, 9, 8\)"),
], ids=["manifest a list", "manifest not utf-8", "manifest nested 1e5 deep", "low above high",
        "basis of the wrong shape", "basis with nan", "npz bomb of the wrong shape"])
def test_a_crafted_bundle_is_refused_by_the_projects_error_naming_the_member(bundle, damage, message):
    members = damage(bundle)
    try:  # a careful forgery: the manifest's checksums made to match wherever it is an object
        forged = isinstance(json.loads(members["manifest.json"]), dict)
    except (ValueError, RecursionError):
        forged = False
    rewrite_bundle(bundle, members, fix_manifest=forged)
    with pytest.raises(BundleError, match=message):
        read_bundle(bundle)


def test_a_member_that_unpacks_beyond_a_bundles_bounds_is_refused_before_it_is_inflated(bundle, monkeypatch):
    import resource

    import filterlens.analyse.bundle as bundle_module

    # the real gzip bomb: a member declaring 200 MB of zeros (a few hundred kB packed); the bound
    # is lowered so that the test inflates little, and the reader's peak memory stays flat
    members = {**bundle_members(bundle), "bases.tsv": bytes(200 * 2**20)}
    rewrite_bundle(bundle, members, fix_manifest=False)
    assert bundle.stat().st_size < 2**20
    monkeypatch.setattr(bundle_module, "MAX_MEMBER_BYTES", 2**20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BundleError, match=r"member 'bases.tsv' unpacks to 209715200 bytes .* Fix: export"):
        read_bundle(bundle)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024


def test_a_candidate_is_inside_the_reference_only_as_close_to_a_pool_as_itsbundle_members():
    from filterlens.analyse.placement import inside_reference

    assert inside_reference(0.03, 0.5, 0.04) == "yes"  # as close to the robust pool as a member of it
    assert inside_reference(1.55, 1.79, 0.04) == "no"  # a random-weight WRN-10-1: nearer robust, far from both
    assert inside_reference(float("nan"), 0.5, 0.04) == inside_reference(0.1, 0.5, float("nan")) == "unknown"


def test_the_closer_pool_is_the_smaller_kl_beyond_the_noise_level():
    nan = float("nan")
    assert [closer_pool(0.1, 0.2, 0.05), closer_pool(0.3, 0.2, 0.05), closer_pool(0.1, 0.2, 0.1),
            closer_pool(0.2, 0.2, 0.0), closer_pool(nan, 0.2, 0.05), closer_pool(0.1, nan, nan),
            closer_pool(0.1, 0.2, nan)] \
        == ["robust", "normal", "within noise", "within noise", "no filters", "no filters", "no noise level"]


def test_the_noise_level_is_the_largest_kl_of_a_pooled_model_to_its_pool_without_it(tmp_path):
    from filterlens.analyse.bundle import leave_one_out_noise
    from filterlens.analyse.kl import divergence

    rng = np.random.default_rng(2)
    sheet = pd.DataFrame({"model_id": ["n1", "r1", "n2", "r2", "r3"], "dataset": "d",
                          "robust": [False, True, False, True, True], "counterpart": ["", "n1", "", "n2", "n2"]})
    layers = {m: pd.DataFrame({"layer_id": [0, 1], "depth_group": ["first", "0.9-1.0"]}) for m in sheet.model_id}
    histograms = {m: rng.integers(0, 9, size=(2, 9, BINS)) for m in sheet.model_id}
    histograms["n1"][0] = histograms["n2"][0]  # the normal pool's first layers agree: KL 0 to each other
    weights, edges = np.full(9, 1 / 9), np.linspace(-1, 1, BINS + 1)
    noise = leave_one_out_noise(sheet, histograms, layers, weights, edges).set_index(
        ["depth_group", "training", "model_id"]).kl_to_pool_without_it
    assert noise["first", "normal", "n1"] == noise["first", "normal", "n2"] == 0.0
    expected = divergence(histograms["r1"][1], histograms["r2"][1] + histograms["r3"][1], weights, edges)[0]
    assert noise["0.9-1.0", "robust", "r1"] == expected > 0
    # a model of the group with no filters in it has no KL, whatever its pool
    histograms["r3"][1] = 0
    again = leave_one_out_noise(sheet, histograms, layers, weights, edges).set_index(
        ["depth_group", "training", "model_id"]).kl_to_pool_without_it
    assert np.isnan(again["0.9-1.0", "robust", "r3"]) and np.isfinite(again["0.9-1.0", "robust", "r1"])


def test_a_pool_of_one_model_and_a_depth_group_without_filters_give_no_number(bundle):
    """The fake run pairs one robust with one normal model: no pool has a model left when one is
    left out, so no noise level; its normal model has no filters in 0.1-0.2, nor any candidate."""
    from filterlens.analyse.placement import placement_table

    read = read_bundle(bundle)
    assert read.noise is not None and read.noise.kl_to_pool_without_it.isna().all()
    assert np.isnan(read.noise_level("coloured_digits", "all"))
    layers = {"cand": pd.DataFrame({"layer_id": [0, 1], "depth_group": ["first", "0.4-0.5"]})}
    histograms = {"cand": np.ones((2, 9, BINS), dtype=np.int64)}
    table = placement_table(read, {"cand": "coloured_digits"}, histograms, {"cand": np.zeros((2, 9, 2))}, layers)
    table = table.set_index("depth_group")
    assert np.isnan(table.loc["0.1-0.2", "kl_normal"]) and table.loc["0.1-0.2", "closer_to"] == "no filters"
    assert np.isnan(table.loc["0.9-1.0", "kl_robust"])  # the candidate has no filters there
    assert np.isfinite(table.loc["all", "kl_robust"]) and table.loc["all", "closer_to"] == "no noise level"


def test_a_version_1_bundle_without_a_noise_level_is_read_and_claims_no_closer_pool(bundle):
    members = bundle_members(bundle)
    del members["noise.tsv"]
    manifest = json.loads(members["manifest.json"])
    manifest["format_version"] = 1
    members["manifest.json"] = json.dumps(manifest).encode()
    rewrite_bundle(bundle, members)
    read = read_bundle(bundle)
    assert read.noise is None and np.isnan(read.noise_level("coloured_digits", "first"))


def test_histograms_on_a_narrower_range_count_what_falls_outside(tmp_path):
    from conftest import write_filter_store
    from filterlens.extract.store import open_filter_store
    from filterlens.method.pca import Basis
    from filterlens.reduce.passes import coefficient_histograms, coefficient_histograms_with_outside

    rng = np.random.default_rng(1)
    rows = [rng.normal(size=(8 * 4, 9)).astype(np.float32), rng.normal(size=(4 * 8, 9)).astype(np.float32)]
    store = open_filter_store(write_filter_store(tmp_path / "m.zarr", [(8, 4, 1), (4, 8, 1)], rows, 1024))
    basis = Basis(64, np.zeros(9), np.eye(9), np.ones(9), np.full(9, 1 / 9))
    counts, outside = coefficient_histograms_with_outside(store, basis, -0.5, 0.5, BINS, 1, 1 << 20)
    np.testing.assert_array_equal(counts, coefficient_histograms(store, basis, -0.5, 0.5, BINS, 1, 1 << 20))
    assert outside.sum() > 0
    # every counted filter has one coefficient per component: inside, below or above the range
    wide = coefficient_histograms(store, basis, -10.0, 10.0, BINS, 1, 1 << 20)
    np.testing.assert_array_equal(counts.sum(axis=-1) + outside.sum(axis=-1), wide.sum(axis=-1))


# --- the whole path: a reference run, its bundle, candidates in a fresh directory ------------

CONSTRUCTOR = '''
from robustbench.model_zoo.architectures.wide_resnet import WideResNet


def wide_resnet(num_classes, depth, widen_factor):
    return WideResNet(depth=depth, widen_factor=widen_factor, num_classes=num_classes)
'''


def _write_candidates(reference: Path, workdir: Path) -> None:
    """Two state-dict files of the reference's models, one built from RobustBench's WideResNet
    (cand_robust, adversarially trained), one from a constructor in the user's file (cand_normal)."""
    import torch

    from filterlens.acquire.checkpoint import load_checkpoint

    (workdir / "weights").mkdir(parents=True)
    for model, file in (("micro_robust", "robust.pt"), ("micro_normal", "normal.pt")):
        state = load_checkpoint(reference / "data" / "models" / f"{model}.pt").state_dict
        torch.save(state, workdir / "weights" / file)
    (workdir / "nets.py").write_text(CONSTRUCTOR)
    kwargs = '{"depth": 10, "widen_factor": 1}'
    own = '{"constructor": "nets.py:wide_resnet", "depth": 10, "widen_factor": 1}'
    (workdir / "candidates.tsv").write_text(
        "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc\n"
        f"cand_normal\tcoloured_digits\tpython\t{own}\tfalse\tlocal\tweights/normal.pt\t\t\t\n"
        f"cand_robust\tcoloured_digits\twide_resnet\t{kwargs}\ttrue\tlocal\tweights/robust.pt\tcand_normal\t\t\n")
    (workdir / "config.yaml").write_text("sheet: candidates.tsv\nreference:\n  bundle: reference.tar.gz\n")


@pytest.mark.workflow
def test_candidates_are_placed_against_the_micro_runs_bundle(micro_run, tmp_path):
    workdir = tmp_path / "candidates"
    workdir.mkdir()
    archive = workdir / "reference.tar.gz"
    assert main(["export-bundle", str(micro_run), str(archive), "--sheet", str(SHEET)]) == 0
    _write_candidates(micro_run, workdir)
    assert sorted(p.name for p in workdir.iterdir()) == ["candidates.tsv", "config.yaml", "nets.py", "reference.tar.gz",
                                                          "reference.tar.gz.sha256", "weights"]
    targets = ["results/tables/placement.tsv", "results/tables/placement.html", "results/figures/placement.pdf",
               "results/figures/placement.png"]
    run_snakemake(workdir, "--configfile", str(workdir / "config.yaml"), "--cores", "2", *targets)
    for target in targets:
        assert (workdir / target).stat().st_size > 0, target
    placement = read_tsv(workdir / "results/tables/placement.tsv").set_index(["model_id", "depth_group"])
    by_dataset = read_tsv(micro_run / "results/analysis/kl_by_dataset.tsv")
    reference_kl = by_dataset[by_dataset.default].set_index("dataset").kl["coloured_digits"]
    by_depth = read_tsv(micro_run / "results/analysis/kl_by_depth.tsv").set_index("depth_group").kl
    # Each candidate is one of the reference's models: KL 0 to its own pool, the reference's KL to
    # the other; no number in a depth group without filters, in the reference's table as here.
    assert by_depth.isna().any() and by_depth.notna().any()
    for model, own, other in (("cand_robust", "robust", "normal"), ("cand_normal", "normal", "robust")):
        assert placement.loc[(model, "all"), f"kl_{own}"] == 0.0
        assert placement.loc[(model, "all"), f"kl_{other}"] == reference_kl
        for group in DEPTH_GROUPS:
            np.testing.assert_equal(placement.loc[(model, group), f"kl_{other}"], by_depth[group], err_msg=group)
            assert (placement.loc[(model, group), "closer_to"] == "no filters") == np.isnan(by_depth[group])
        # one model per pool: none is left when it is left out, so no noise level and no claim
        assert np.isnan(placement.loc[(model, "all"), "noise"])
        assert placement.loc[(model, "all"), "closer_to"] == "no noise level"
    assert (placement.coefficients_below_range == 0).all() and (placement.coefficients_above_range == 0).all()


# --- docs/bundle.md's recipe, as written there ----------------------------------------------

def _doc_blocks(section: str) -> dict[str, str]:
    """The fenced blocks of a section (a '## ' heading) of docs/bundle.md, by their language."""
    text = (REPO / "docs" / "bundle.md").read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return {match[0]: match[1] for match in re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)}


def _run_doc_command(command: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    """A command of the doc in ``cwd``: its comment and line continuations dropped, the doc's
    placeholders for this checkout and its environment's executables filled in."""
    command = command.split("#", 1)[0].replace("\\\n", " ").replace("path/to/filterlens", str(REPO))
    words = shlex.split(command)
    executables = {"snakemake": str(SNAKEMAKE), ".venv/bin/python": sys.executable,
                   ".venv/bin/filterlens": str(Path(sys.executable).parent / "filterlens")}
    words = [executables.get(words[0], words[0]), *words[1:]]
    return subprocess.run([*words, *extra], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.mark.workflow
def test_the_placement_recipe_of_docs_bundle_md_runs_as_written(micro_run, tmp_path, capsys):
    import torch

    from filterlens.acquire.checkpoint import load_checkpoint

    workdir = tmp_path / "mine"
    workdir.mkdir()
    export = _doc_blocks("Exporting a run")["bash"].replace("path/to/run", str(micro_run))
    assert _run_doc_command(export, workdir).returncode == 0
    placing = _doc_blocks("Placing models against a bundle")
    (workdir / "candidates.tsv").write_text(placing["tsv"])
    (workdir / "config.yaml").write_text(placing["yaml"])
    (workdir / "weights").mkdir()
    # the candidate's weights: the micro run's robust model, which it does not know as such
    torch.save(load_checkpoint(micro_run / "data/models/micro_robust.pt").state_dict, workdir / "weights/my_net.pt")

    # Without targets: what the sheet can make, and one line on what it cannot.
    plan = _run_doc_command("snakemake --snakefile path/to/filterlens/Snakefile --configfile config.yaml --cores 2",
                            workdir, "-n")
    assert plan.returncode == 0, plan.stderr
    output = plan.stdout + plan.stderr
    assert output.count("has no robust/normal pair") == 1, output
    assert "Fig. 1-9 and the paper's tables, which compare robust with normal models, are left out" in output
    jobs = set(re.findall(r"^rule (\w+):", plan.stdout, flags=re.M))
    assert {"extract_filters", "summarize_model", "placement", "fig_placement"} <= jobs, jobs
    assert not jobs & {"pca_bases", "kl_divergence", "pair_filters", "stats_quality", "table_pairs"}, jobs
    # A target that compares robust with normal models says why it cannot be made.
    figure = _run_doc_command("snakemake --snakefile path/to/filterlens/Snakefile --configfile config.yaml --cores 2",
                              workdir, "-n", "results/figures/fig4_first_layer_filters.pdf")
    assert figure.returncode != 0
    assert "a requested target compares robust with normal models" in figure.stdout + figure.stderr

    result = _run_doc_command(placing["bash"], workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    placement = read_tsv(workdir / "results/tables/placement.tsv")
    assert placement.set_index("depth_group").loc["all", "kl_robust"] == 0.0
    assert (workdir / "results/figures/placement.pdf").stat().st_size > 0

    # From Python and from the command line, the same table without Snakemake.
    import filterlens
    from filterlens.cli import place as place_command

    checkpoint = micro_run / "data/models/micro_robust.pt"
    placed = filterlens.place(checkpoint, workdir / "reference.tar.gz", model_id="my_net")
    pd.testing.assert_frame_equal(placed, placement, check_dtype=False)
    from filterlens.acquire.checkpoint import build_model

    module = build_model(load_checkpoint(checkpoint))  # a module: the bundle's one dataset
    pd.testing.assert_frame_equal(filterlens.place(module, workdir / "reference.tar.gz", model_id="my_net"), placement,
                                  check_dtype=False)
    parser = argparse.ArgumentParser()
    place_command.add_arguments(parser)
    assert place_command.run(parser.parse_args([str(checkpoint), "--bundle", str(workdir / "reference.tar.gz")])) == 0
    printed = capsys.readouterr().out
    assert "noise level" in printed and "no noise level" in printed and "no filters" in printed, printed
    assert place_command.run(parser.parse_args([str(checkpoint), "--bundle", str(tmp_path / "absent.tar.gz")])) == 1
    assert "absent.tar.gz.sha256 is missing" in capsys.readouterr().err


def test_the_runs_kl_by_depth_has_no_number_where_a_side_has_no_filters():
    from filterlens.analyse.kl import kl_tables

    rng = np.random.default_rng(3)
    pairs = pd.DataFrame({"robust": ["r"], "normal": ["n"], "dataset": ["d"]})
    layers = {"r": pd.DataFrame({"layer_id": [0, 1], "depth_group": ["first", "0.9-1.0"]}),
              "n": pd.DataFrame({"layer_id": [0, 1], "depth_group": ["0.4-0.5", "0.9-1.0"]})}
    histograms = {m: rng.integers(1, 9, size=(2, 9, BINS)) for m in layers}
    _, by_depth, components = kl_tables(pairs, histograms, layers, np.full(9, 1 / 9), np.linspace(-1, 1, BINS + 1))
    kl = by_depth.set_index("depth_group").kl
    # first: robust only; 0.4-0.5: normal only; 0.0-0.1: neither side
    assert kl[["first", "0.4-0.5", "0.0-0.1"]].isna().all() and kl["0.9-1.0"] > 0
    assert components[components.depth_group == "first"].kl.isna().all()
