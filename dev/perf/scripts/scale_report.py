"""Rule scale_report (dev/perf/Snakefile): the scale run's table, from the benchmark
files of the run's jobs and the read floor of its stores (dev/perf/scale_report.py)."""

import time
from pathlib import Path

from filterlens.io.scripting import rule_script
from scale_report import report  # dev/perf/scale_report.py (dev/perf/rules/common.smk shares dev/perf)

with rule_script(snakemake) as log:
    end = time.time()  # the run's end: this is its last job
    text = report(list(snakemake.params.stores), dict(snakemake.params.batches), Path(snakemake.output.table),
                  Path(snakemake.output.copies), end=end)
    log.info("scale report:\n%s", text)
