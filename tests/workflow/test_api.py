"""filterlens from Python: analyze() gives the workflow's per-layer table of a model in memory,
load_results() a run's tables; `import filterlens` stays cheap."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO
from torch import nn

import filterlens
from filterlens.acquire.checkpoint import build_model, load_checkpoint
from filterlens.io.files import read_tsv

MODELS = ["micro_normal", "micro_robust"]


def _assert_tables_equal(got: pd.DataFrame, expected: pd.DataFrame, rtol: float = 1e-9) -> None:
    assert list(got.columns) == list(expected.columns) and len(got) == len(expected)
    for column in expected.columns:
        a, b = got[column], expected[column]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=0, err_msg=column)
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), column


def test_importing_filterlens_imports_neither_torch_nor_pandas():
    probe = "import sys, filterlens; print([m for m in ('torch', 'pandas', 'zarr') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,
                            env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
    assert filterlens.analyze.__module__ == "filterlens.api"  # resolved on first use
    with pytest.raises(AttributeError, match="has no attribute 'analyse_everything'"):
        filterlens.analyse_everything  # noqa: B018


@pytest.mark.workflow
@pytest.mark.parametrize("model_id", MODELS)
def test_analyze_equals_the_workflows_layer_table(micro_run, model_id):
    expected = read_tsv(micro_run / "results" / "summaries" / model_id / "layers.tsv")
    checkpoint_path = micro_run / "data" / "models" / f"{model_id}.pt"
    _assert_tables_equal(filterlens.analyze(checkpoint_path), expected)
    # a module, as in a notebook: the same numbers under the id given
    module = build_model(load_checkpoint(checkpoint_path)).train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    _assert_tables_equal(filterlens.analyze(module, model_id=model_id, threads=2), expected)
    assert module.training and all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


@pytest.mark.workflow
def test_load_results_reads_every_table_of_a_run(micro_run):
    results = filterlens.load_results(micro_run)
    assert results.models == MODELS
    _assert_tables_equal(results.layers, read_tsv(micro_run / "results" / "analysis" / "layers.tsv"), rtol=0)
    for name in ("bases", "kl_by_dataset", "kl_by_depth", "kl_components", "quality_by_depth", "sparse_shares",
                 "stats_quality", "stats_kl", "correlations", "filter_measures_by_depth"):
        assert results.analysis[name].equals(read_tsv(micro_run / "results" / "analysis" / f"{name}.tsv")), name
        assert getattr(results, name) is results.analysis[name]
    assert {"models", "findings", "table_pairs", "table1_zoo_summary", "table_statistics"} <= set(results.tables)
    assert results.findings is results.tables["findings"]
    assert set(results.summaries["micro_robust"]) == {"layers", "spectra", "perturbation", "coefficient_range"}
    assert results.metrics["micro_normal"].shape[0] == 1
    assert [m["model_id"] for m in results.provenance["models"]] == MODELS
    assert filterlens.load_results(micro_run / "results").layers.equals(results.layers)
    with pytest.raises(AttributeError, match="no table 'kl'; analysis: bases, "):
        results.kl  # noqa: B018


def test_analyze_takes_the_options_of_the_config(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=2),
                          nn.Conv2d(4, 2, 1), nn.Flatten())
    folded = filterlens.analyze(model, model_id="seq")
    assert folded.name.tolist() == ["0", "3"] and folded.bn_folded.tolist() == [True, False]
    assert folded.model_id.unique().tolist() == ["seq"] and folded.n_filters.tolist() == [12, 8]
    raw = filterlens.analyze(model, fold_batchnorm=False)
    assert not raw.bn_folded.any() and raw.model_id.unique().tolist() == ["model"]
    assert folded.depth_definition.unique().tolist() == ["graph_level"]  # the config's default
    counted = filterlens.analyze(model, depth_definition="conv_count")
    assert counted.depth_definition.unique().tolist() == ["conv_count"]
    assert counted.conv_depth.tolist() == [0, 1] and counted.max_conv_depth.unique().tolist() == [2]


def test_analyze_refuses_what_it_cannot_analyse(tmp_path):
    with pytest.raises(ValueError, match="executes no 3x3 convolution"):
        filterlens.analyze(nn.Sequential(nn.Conv2d(3, 4, 1)))
    with pytest.raises(TypeError, match="a model is a torch.nn.Module, a file or a model name, not a dict"):
        filterlens.analyze({"conv.weight": torch.ones(1)})
    with pytest.raises(FileNotFoundError, match="holds no results"):
        filterlens.load_results(tmp_path)
