"""The workflow is lint-clean (snakemake --lint) and formatted (snakefmt --check)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PERF_SNAKEFILE, REPO, run_snakemake

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("snakefile", [REPO / "Snakefile", PERF_SNAKEFILE], ids=["workflow", "dev/perf"])
def test_snakemake_lint_is_clean(snakefile):
    result = run_snakemake(REPO, "--lint", check=False, snakefile=snakefile)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Congratulations, your workflow is in a good condition!" in output, output


def test_snakefmt_check_is_clean():
    result = subprocess.run([str(BIN / "snakefmt"), "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_files_hold_rules_only():
    # Parse-time Python lives in rules/common.smk, so the other rule files may be included in any order.
    # A loop may define one rule per item of a list that common.smk makes (each pass's per-model and batch rules).
    for path in sorted((REPO / "rules").glob("*.smk")):
        if path.name == "common.smk":
            continue
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        stray = [line for i, line in enumerate(lines) if not line[0].isspace()
                 and not line.startswith(("#", "rule "))
                 and not (re.fullmatch(r"for \w+ in [A-Z_]+:", line)
                          and lines[i + 1:i + 2] == ["    rule:"])]
        assert not stray, f"{path.relative_to(REPO)}: top-level code outside a rule: {stray}"
