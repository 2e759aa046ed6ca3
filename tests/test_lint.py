"""The workflow is lint-clean (snakemake --lint) and formatted (snakefmt --check)."""

import subprocess
import sys
from pathlib import Path

from conftest import REPO, run_snakemake

BIN = Path(sys.executable).parent


def test_snakemake_lint_is_clean(tmp_path):
    result = run_snakemake(REPO, "--lint", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Congratulations, your workflow is in a good condition!" in output, output


def test_snakefmt_check_is_clean():
    result = subprocess.run([str(BIN / "snakefmt"), "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_files_hold_rules_only():
    # Parse-time Python lives in rules/common.smk, so the other rule files may be included in any order.
    for path in sorted((REPO / "rules").glob("*.smk")):
        if path.name == "common.smk":
            continue
        top_level = [line for line in path.read_text().splitlines() if line and not line[0].isspace()]
        stray = [line for line in top_level if not line.startswith(("#", "rule "))]
        assert not stray, f"{path.relative_to(REPO)}: top-level code outside a rule: {stray}"
