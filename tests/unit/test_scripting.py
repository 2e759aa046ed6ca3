"""The rule-script prologue (filterlens.io.scripting): the log, failures, and the early end of a
finished job's process."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ENV = {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "PATH": "/usr/bin:/bin"}

# A rule's script as Snakemake runs it: its preamble binds ``snakemake`` at the top of __main__.
JOB = """
import atexit, sys
from types import SimpleNamespace
from filterlens.io.scripting import rule_script

class FreedAtTeardown:
    def __del__(self):
        open(sys.argv[2], "w").write("the interpreter's teardown ran")

snakemake = SimpleNamespace(log=[sys.argv[1]], rule="probe")
freed_at_teardown = FreedAtTeardown()
atexit.register(lambda: open(sys.argv[3], "w").write("exit handlers ran"))
with rule_script(snakemake) as log:
    log.info("work done")
    print("printed to the log")
    if len(sys.argv) > 4:
        raise ValueError("bad input")
"""


def _run_job(tmp_path, *extra):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    log, teardown, handlers = tmp_path / "job.log", tmp_path / "teardown", tmp_path / "handlers"
    run = subprocess.run([sys.executable, str(script), str(log), str(teardown), str(handlers), *extra],
                         capture_output=True, text=True, env=ENV)
    return run, log.read_text(), teardown.exists(), handlers.exists()


def test_a_finished_job_ends_without_the_teardown_and_keeps_its_log(tmp_path):
    run, log, teardown_ran, handlers_ran = _run_job(tmp_path)
    assert run.returncode == 0, run.stderr
    assert "work done" in log and "printed to the log" in log
    assert not teardown_ran
    assert handlers_ran  # atexit handlers run as at an ordinary exit


def test_a_failed_job_fails_with_its_traceback_in_the_log(tmp_path):
    run, log, _, handlers_ran = _run_job(tmp_path, "fail")
    assert run.returncode != 0
    assert "ValueError: bad input" in log and "probe failed: bad input" in log
    assert handlers_ran  # a failure leaves by the ordinary way


@pytest.mark.parametrize("error, last_line", [
    ('ValueError("bad input")', "probe failed: model own_r18: ValueError: bad input. Fix: leave it out."),
    # a message that names its own fix (a bad checkpoint's) keeps it alone
    ('ValueError("checkpoint c.pt is empty. Fix: acquire it again.")',
     "probe failed: checkpoint c.pt is empty. Fix: acquire it again."),
], ids=["an error without a fix", "an error with its own fix"])
def test_a_failed_jobs_log_ends_in_its_model_and_the_fix_the_script_gives(tmp_path, error, last_line):
    job = JOB.replace('rule="probe")', 'rule="probe", wildcards=Wildcards(fromdict={"model": "own_r18"}))')
    job = job.replace("with rule_script(snakemake) as log:", 'with rule_script(snakemake, fix="leave it out.") as log:')
    job = job.replace('raise ValueError("bad input")', f"raise {error}")
    script = tmp_path / "job.py"
    script.write_text("from snakemake.iocontainers import Wildcards\n" + job)
    run = subprocess.run([sys.executable, str(script), *(str(tmp_path / n) for n in ("job.log", "t", "h")), "fail"],
                         capture_output=True, text=True, env=ENV)
    assert run.returncode != 0
    last = (tmp_path / "job.log").read_text().strip().splitlines()[-1]
    assert last.endswith(last_line), last


def test_outside_a_rule_script_the_process_goes_on(tmp_path):
    """Called from code that is not the rule's script (a test, a notebook), the block ends and the
    process goes on (run apart, so that a broken check cannot end this test session)."""
    probe = textwrap.dedent("""
        import sys
        from types import SimpleNamespace
        from filterlens.io.scripting import rule_script

        def work():
            job = SimpleNamespace(log=[sys.argv[1]], rule="here")
            with rule_script(job) as log:
                log.info("in a function")
        work()
        print("went on")
    """)
    run = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "here.log")], capture_output=True, text=True,
                         env=ENV)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "went on\n"
    assert "in a function" in (tmp_path / "here.log").read_text()
