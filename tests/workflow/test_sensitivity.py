"""The sensitivity analysis of a run (config analysis.sensitivity, docs/method.md, "The documented
choices and the sensitivity analysis"): its default column is the run's own findings and numbers,
and a variant computed from the shared passes is what a run configured with that choice gives."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_snakemake

from filterlens.io.files import read_tsv
from filterlens.method.choices import CHOICES, NOT_SHARED, Settings

MICRO = str(REPO / "config" / "micro.yaml")


def _column(table: pd.DataFrame, variant: str) -> pd.DataFrame:
    return table[table.variant == variant].set_index("row")


def test_the_default_column_is_the_runs_findings_and_numbers(micro_run):
    sensitivity = read_tsv(micro_run / "results/analysis/sensitivity.tsv")
    default = _column(sensitivity, "default")
    findings = read_tsv(micro_run / "results/tables/findings.tsv")
    shown = default.loc[[f"finding/{i}" for i in range(len(findings))]]
    assert shown.text.tolist() == findings.this_run.tolist()
    np.testing.assert_array_equal(shown.holds.to_numpy(), findings.shown.to_numpy())
    kl = read_tsv(micro_run / "results/analysis/kl_by_dataset.tsv")
    for row in kl.itertuples():
        assert default.value[f"kl/{row.dataset}/{row.pooling}"] == row.kl
    shares = read_tsv(micro_run / "results/analysis/sparse_shares.tsv").set_index("training").pooled_share
    assert default.value["sparse_share/robust"] == shares["robust"]
    bases = read_tsv(micro_run / "results/analysis/bases.tsv")
    assert default.value["first_component_share"] == bases[(bases.set == "normal") & (bases.component == 1)].ratio.item()
    # every shared choice has its column, and the findings table counts them
    variants = set(sensitivity.variant) - {"default"}
    assert variants == set(Settings().variants())
    assert {c.name for c in CHOICES} == {v.split("=")[0] for v in variants} | set(NOT_SHARED)
    assert findings.holds_under.str.fullmatch(r"\d+ of \d+").all()
    for name in ("tables/sensitivity.tsv", "tables/sensitivity.tex", "tables/sensitivity.html",
                 "figures/fig_sensitivity.png", "figures/fig_sensitivity.pdf"):
        assert (micro_run / "results" / name).stat().st_size > 0, name


# The choices that act in the passes (their variants come from the passes' variant outputs) and
# one that acts in the merges.
CONFIGURED = {"sparse_reference": "max_row_sum", "pca_sign": "u_based", "histogram_range": "paired_nonsparse",
              "depth_definition": "conv_count", "empty_bins": "probability"}


@pytest.mark.parametrize("choice", CONFIGURED)
def test_a_variant_from_the_shared_passes_equals_a_run_configured_with_it(micro_run, tmp_path, choice):
    value = CONFIGURED[choice]
    shared = _column(read_tsv(micro_run / "results/analysis/sensitivity.tsv"), f"{choice}={value}")
    run = tmp_path / "run"
    shutil.copytree(micro_run, run, symlinks=True)
    section = next(c.key for c in CHOICES if c.name == choice).split(".")[0]
    run_snakemake(run, "results/analysis/sensitivity.tsv", "--configfile", MICRO, "--cores", "2",
                  "--config", f"{section}={{'{choice}': '{value}'}}")
    configured = _column(read_tsv(run / "results/analysis/sensitivity.tsv"), "default")
    assert configured.index.tolist() == shared.index.tolist()
    assert configured.text.fillna("").tolist() == shared.text.fillna("").tolist()
    np.testing.assert_array_equal(configured.holds.to_numpy(), shared.holds.to_numpy())
    np.testing.assert_allclose(configured.value.to_numpy(), shared.value.to_numpy(), rtol=1e-12, atol=0)
