"""Every reader of an outside file, fed damaged copies of a valid input in a process of bounded
address space (tests/fuzz_readers.py): each copy reads, or is refused with the project's own
error, and the process's peak memory stays within what the small inputs justify."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

EXAMPLES = 120
# The inputs are a few KB: a reader that allocates more than this for one is unbounded.
EXTRA_PEAK_MB = 256


@pytest.mark.parametrize("reader", ["store", "filterdb", "weights", "checkpoint", "sheet", "config", "bundle"])
def test_a_damaged_input_reads_or_is_refused_by_the_projects_error_within_memory(tmp_path, reader):
    result = subprocess.run([sys.executable, str(REPO / "tests" / "fuzz_readers.py"), reader, str(EXAMPLES), "0",
                             str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert not report["failures"], "\n\n".join(f"example {f['example']}:\n{f['error']}" for f in report["failures"][:3])
    assert report["refused"] > EXAMPLES // 10, "the damage should make the reader refuse some of the copies"
    assert report["extra_peak_kb"] < EXTRA_PEAK_MB * 1024, f"{reader}: {report['extra_peak_kb'] // 1024} MB more"
