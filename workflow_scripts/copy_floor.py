"""Rule copy_floor: a checkpoint's 3x3 weights written unprocessed into a Zarr array, the floor
that the scale run times extraction jobs against (docs/benchmarks.md)."""

import tempfile
from pathlib import Path

from filterlens.extract.copy_floor import write_copy_floor
from filterlens.io.files import write_tsv_rows
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    table = Path(snakemake.output[0])
    # Written where the stores are written (the same file system), deleted with the folder.
    with tempfile.TemporaryDirectory(dir=table.parent, prefix=f"{snakemake.wildcards.model}.") as scratch:
        n_filters = write_copy_floor(snakemake.input[0], Path(scratch) / "filters.zarr", snakemake.params.chunk_rows)
    log.info("%s: %d 3x3 filters copied", snakemake.wildcards.model, n_filters)
    write_tsv_rows(table, ["model_id", "n_filters"], [[snakemake.wildcards.model, n_filters]])
