"""What every rule script does first: send its output to the rule's log, fail loudly."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import traceback
from contextlib import contextmanager
from typing import Any, Iterator


def share_with_rule_scripts(src: str) -> None:
    """Put the library's folder first on PYTHONPATH, which every job this process starts inherits,
    so that rule scripts import the package of the checkout that runs the workflow."""
    others = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src]
    os.environ["PYTHONPATH"] = os.pathsep.join([src] + others)


@contextmanager
def rule_script(snakemake: Any, fix: str | None = None) -> Iterator[logging.Logger]:
    """Redirect stdout and stderr to ``snakemake.log[0]`` and yield a logger.

    An exception is written to the log with its traceback and re-raised, so the job fails
    and Snakemake shows the log. Its last line names the rule and the error; with ``fix`` (what
    a user can do when this job fails, e.g. leave the measure out in the config) an error whose
    message names no fix of its own (torch's, a model's) is given the job's wildcards (the
    model) and ``fix``. On success, a rule's script process then ends at once
    (:func:`end_job_process`).
    """
    log_path = snakemake.log[0]
    with open(log_path, "w", buffering=1) as handle:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = handle
        logging.basicConfig(stream=handle, level=logging.INFO, force=True,
                            format="%(asctime)s %(levelname)s %(message)s")
        logger = logging.getLogger(f"filterlens.{snakemake.rule}")
        try:
            yield logger
        except BaseException as error:
            traceback.print_exc()
            if fix is None or "Fix:" in str(error):  # a message of the library's names its own fix
                logger.error("%s failed: %s", snakemake.rule, error)
            else:
                logger.error("%s failed: %s%s: %s. Fix: %s", snakemake.rule, _wildcards_text(snakemake),
                             type(error).__name__, str(error).rstrip("."), fix)
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err
    if _runs_as_rule_script(snakemake):
        end_job_process()


def _wildcards_text(snakemake: Any) -> str:
    """'model X: ' (a job's wildcards), or '' for a job without wildcards."""
    wildcards = getattr(snakemake, "wildcards", None)
    return "".join(f"{name} {value}: " for name, value in (wildcards.items() if wildcards else []))


def _runs_as_rule_script(snakemake: Any) -> bool:
    """True in the process Snakemake started for the rule's script: its preamble binds ``snakemake``
    at the top of ``__main__`` (a test or notebook that calls :func:`rule_script` is left running)."""
    return getattr(sys.modules.get("__main__"), "snakemake", None) is snakemake


def end_job_process() -> None:
    """End a finished job's process without the interpreter's teardown (freeing every module and
    object), which writes nothing (every output is closed when the script's block ends) and
    costs a short job a large share of its time (docs/benchmarks.md, "Which start-up measures
    the run keeps"). The exit handlers registered with :mod:`atexit` still run, as at an
    ordinary exit. Every rule script is one ``with rule_script(snakemake)`` block, so nothing of
    the script is skipped (tests/meta/test_layout.py)."""
    atexit._run_exitfuncs()  # logging's shutdown among them; the only way to run them before os._exit
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))
