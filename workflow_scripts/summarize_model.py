"""Rule summarize_model: pass 1 over a filter store: per-layer counts, moments and quality."""

from filterlens.extract.store import check_store_matches, open_filter_store, with_depth_definition
from filterlens.io.files import write_npz, write_tsv
from filterlens.io.scripting import rule_script
from filterlens.reduce.passes import summarize
from filterlens.reduce.streaming import rows_per_segment

with rule_script(snakemake) as log:
    # The layer table's depths under the configured definition (the store holds every one).
    store = with_depth_definition(open_filter_store(snakemake.input[0]), snakemake.params.depth_definition)
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    check_store_matches(store, snakemake.wildcards.model, snakemake.params.dataset, max_rows)
    log.info("%s: %d filters in %d layers, depth by %s (max %s), BatchNorm folded in %d layers; %d threads, "
             "segments of at most %d rows", store.model_id, store.filters.shape[0], len(store.layers),
             store.attrs.get("depth_definition"), store.attrs.get("max_conv_depth"), int(store.layers.bn_folded.sum()),
             snakemake.threads, max_rows)
    table, moments = summarize(store, snakemake.threads, max_rows)
    log.info("\n%s", table.drop(columns=["model_id"]).to_string(index=False))
    write_npz(snakemake.output.moments, **moments.to_arrays())
    write_tsv(table, snakemake.output.layers)
