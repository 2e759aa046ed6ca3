"""filterlens.load_results names a table the run made and lost: the file, the rule that made it
and the command that makes it again, which does."""

from __future__ import annotations

import shutil

import pytest
from conftest import REPO, run_snakemake

import filterlens


@pytest.mark.workflow
def test_a_deleted_table_is_named_with_its_rule_and_made_again_by_the_command_given(micro_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(micro_run, run, symlinks=True)
    (run / "results/analysis/kl_by_depth.tsv").unlink()
    with pytest.warns(UserWarning, match="kl_by_depth.tsv is missing: rule kl_divergence made it"):
        results = filterlens.load_results(run)
    assert results.missing == {"results/analysis/kl_by_depth.tsv": "kl_divergence"}
    with pytest.raises(AttributeError) as error:
        results.kl_by_depth  # noqa: B018
    message = str(error.value)
    assert f"{run / 'results/analysis/kl_by_depth.tsv'} is missing" in message
    command = message.split("snakemake ", 1)[1].split(" (")[0]
    assert command == "results/analysis/kl_by_depth.tsv"
    run_snakemake(run, "--configfile", str(REPO / "config" / "micro.yaml"), "--cores", "1", command)
    assert filterlens.load_results(run).kl_by_depth.equals(filterlens.load_results(micro_run).kl_by_depth)
