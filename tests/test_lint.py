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
