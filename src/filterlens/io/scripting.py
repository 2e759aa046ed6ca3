"""What every rule script does first: send its output to the rule's log, fail loudly."""

from __future__ import annotations

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
def rule_script(snakemake: Any) -> Iterator[logging.Logger]:
    """Redirect stdout and stderr to ``snakemake.log[0]`` and yield a logger.

    An exception is written to the log with its traceback and re-raised, so the job fails
    and Snakemake shows the log.
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
            logger.error("%s failed: %s", snakemake.rule, error)
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err


def set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))
