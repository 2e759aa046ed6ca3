"""The real Snakefile on the micro config (two tiny models, one epoch) in a temporary directory."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO, run_snakemake

from filterlens.acquire.checkpoint import build_model, load_checkpoint
from filterlens.extract.store import open_filter_store
from filterlens.extract.weights import plan_extraction

pytestmark = pytest.mark.workflow
MODELS = ["micro_normal", "micro_robust"]


def test_model_table_lists_every_model_with_counts_and_measured_accuracies(micro_run):
    table = pd.read_csv(micro_run / "results" / "tables" / "models.tsv", sep="\t")
    assert table.model_id.tolist() == MODELS
    assert table.accuracy_source.tolist() == ["measured", "measured"]
    assert table.clean_acc.between(0, 100).all() and table.robust_acc.between(0, 100).all()
    assert table.depth_method.tolist() == ["fx", "fx"]
    # WRN-10-1: 3->16, 16->16, 16->16, 16->32, 32->32, 32->64, 64->64 (unused sub_block1 excluded)
    assert table.n_layers.tolist() == [7, 7]
    assert table.n_filters.tolist() == [8240, 8240]


@pytest.mark.parametrize("model_id", MODELS)
def test_filter_store_holds_exactly_the_checkpoints_3x3_weights(micro_run, model_id):
    store = open_filter_store(micro_run / "results" / "filters" / f"{model_id}.zarr")
    checkpoint = load_checkpoint(micro_run / "data" / "models" / f"{model_id}.pt")
    model = build_model(checkpoint)
    plan = plan_extraction(model, torch.zeros(1, 3, 32, 32))
    assert store.layers.name.tolist() == [layer.name for layer in plan.layers]
    assert store.layers.conv_depth.tolist() == [layer.conv_depth for layer in plan.layers]
    assert store.attrs["depth_definition"] == "graph_level" and store.attrs["fold_batchnorm"] is True
    # WRN blocks: conv1 feeds bn2 alone (folded); conv2 feeds the residual add (raw).
    assert store.layers.bn_folded.tolist() == [False] + [True, False] * 3
    rows = store.filters[:]
    for layer in plan.layers:
        weight = model.get_submodule(layer.name).weight.detach().numpy()
        bn_name = plan.calls[layer.name].following_batchnorm
        if store.layers.bn_folded[layer.layer_id]:
            bn = model.get_submodule(bn_name)
            scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
            weight = weight * scale[:, None, None, None]
        np.testing.assert_allclose(rows[layer.row_start:layer.row_stop], weight.reshape(-1, 9), rtol=1e-6, atol=0)
    assert store.attrs["model_id"] == model_id and store.filters.chunks == (4096, 9)


def test_switching_the_depth_definition_plans_the_summaries_again_but_no_extraction(micro_run, tmp_path):
    override = tmp_path / "conv_count.yaml"
    override.write_text("analysis:\n  depth_definition: conv_count\n")
    result = run_snakemake(micro_run, "-n", "--configfile", str(REPO / "config" / "micro.yaml"), str(override),
                           "--cores", "2", "--quiet", "rules")
    planned = result.stdout + result.stderr
    assert "summarize_model" in planned and "model_table" in planned
    assert "extract_filters" not in planned and "train_minizoo" not in planned


def test_metrics_and_logs_exist_for_every_job(micro_run):
    for model_id in MODELS:
        metrics = pd.read_csv(micro_run / "results" / "metrics" / f"{model_id}.tsv", sep="\t")
        assert metrics.steps.tolist() == [2] and metrics.n_test.tolist() == [50]
        for stage in ("train", "extract", "evaluate"):
            assert (micro_run / "logs" / stage / f"{model_id}.log").stat().st_size > 0


def test_a_second_run_with_nothing_changed_does_no_work(micro_run):
    result = run_snakemake(micro_run, "-n", "--configfile", str(REPO / "config" / "micro.yaml"), "--cores", "2")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_no_partial_outputs_are_left_behind(micro_run):
    assert not list(micro_run.rglob(".*.partial"))


def test_analysis_tables_have_the_expected_rows(micro_run):
    analysis = micro_run / "results" / "analysis"
    kl = pd.read_csv(analysis / "kl_by_dataset.tsv", sep="\t")
    assert kl[["dataset", "pooling"]].values.tolist() == [["coloured_digits", "unique"], ["coloured_digits", "paired"]]
    assert (kl.kl >= 0).all()
    by_depth = pd.read_csv(analysis / "kl_by_depth.tsv", sep="\t")
    assert by_depth.depth_group.tolist()[:2] == ["first", "0.0-0.1"] and len(by_depth) == 11
    bases = pd.read_csv(analysis / "bases.tsv", sep="\t")
    assert set(bases.set) == {"full", "robust", "normal", "model:micro_normal", "model:micro_robust"}
    assert bases.groupby("set").ratio.sum().round(12).eq(1).all()
    quality = pd.read_csv(analysis / "quality_by_depth.tsv", sep="\t")
    assert {"sparsity", "entropy_unscaled", "entropy_scaled", "orthogonality"} <= set(quality.columns)
    assert set(quality.model_id) == set(MODELS)
    histograms = np.load(micro_run / "results" / "summaries" / "micro_robust" / "histograms.npz")
    assert histograms["counts"].shape == (7, 9, 70) and histograms["counts"].sum() > 0
