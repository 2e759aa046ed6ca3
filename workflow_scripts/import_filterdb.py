"""Rule import_filterdb: one model's filters from the published filter database into its store."""

import os

from filterlens.extract.filterdb import check_file, import_model, read_meta
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    settings = snakemake.params.filterdb
    row = snakemake.params.row
    filters_path = snakemake.input.filters
    meta_path = snakemake.input.get("meta", filters_path)
    # Every file is checked before any parser opens it; a bad downloaded copy is deleted.
    for path, name in {filters_path: settings["filters_file"], meta_path: settings["meta_file"]}.items():
        check_file(path, settings["checksums"].get(name), downloaded=snakemake.params.downloaded)
        log.info("%s: %s", path, "checksum %s verified" % settings["checksums"][name].split(":")[0]
                 if name in settings["checksums"] else "complete (no checksum configured)")
    meta = read_meta(meta_path, settings["meta_key"])
    log.info("%s: meta table %s (%d rows), filters %s", row["model_id"], meta_path, len(meta), filters_path)
    provenance = {
        "filterdb_record": settings["record"],
        "filterdb_files": sorted({os.path.basename(filters_path), os.path.basename(meta_path)}),
        "filterdb_filters_bytes": os.path.getsize(filters_path) if os.path.isfile(filters_path) else None,
    }
    attrs = import_model(
        filters_path, meta, snakemake.output[0], row["model_id"], row["dataset"],
        database_name=row["source_key"] if row["source"] == "filterdb" and row["source_key"] else None,
        filters_key=settings["filters_key"], name_column=settings["name_column"],
        chunk_rows=snakemake.params.chunk_rows, provenance=provenance,
        # a layer read whole, as float32 and as the database's dtype, beside the store's chunk
        max_layer_bytes=snakemake.resources.mem_mb * 2**20 // 4,
    )
    log.info("%s: %d filters in %d layers from database model %s (max conv depth %d, channels %s)",
             row["model_id"], attrs["n_filters"], attrs["n_layers"], attrs["filterdb_name"],
             attrs["max_conv_depth"], "known" if attrs["channels_known"] else "unknown: orthogonality NaN")
