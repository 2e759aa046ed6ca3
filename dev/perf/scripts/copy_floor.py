"""Rule copy_floor (dev/perf/rules/copy_floor.smk): a checkpoint's 3x3 weights written unprocessed
into a Zarr array, the floor that the scale run times extraction jobs against (docs/benchmarks.md)."""

import tempfile
from pathlib import Path

import filterlens.acquire.checkpoint  # noqa: F401  (torch at the job's start, as extraction imports it)
from filterlens.io.files import write_tsv_rows
from filterlens.io.scripting import rule_script
from floors import write_copy_floor  # dev/perf/floors.py (dev/perf/rules/common.smk shares dev/perf)

with rule_script(snakemake) as log:
    table = Path(snakemake.output[0])
    # Written where the stores are written (the same file system), deleted with the folder.
    with tempfile.TemporaryDirectory(dir=table.parent, prefix=f"{snakemake.wildcards.model}.") as scratch:
        n_filters = write_copy_floor(snakemake.input[0], Path(scratch) / "filters.zarr", snakemake.params.chunk_rows)
    log.info("%s: %d 3x3 filters copied", snakemake.wildcards.model, n_filters)
    write_tsv_rows(table, ["model_id", "n_filters"], [[snakemake.wildcards.model, n_filters]])
