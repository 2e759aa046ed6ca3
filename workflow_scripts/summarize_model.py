"""Rules summarize_model and summarize_batch_N: pass 1 over each filter store of the job: per-layer
counts, moments and quality."""

from filterlens.extract.store import check_store_matches, open_filter_store, with_depth_definition
from filterlens.io.files import write_npz, write_tsv
from filterlens.io.scripting import rule_script
from filterlens.reduce.jobs import job_models
from filterlens.reduce.passes import summarize
from filterlens.reduce.streaming import rows_per_segment

with rule_script(snakemake) as log:
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    for model in job_models(snakemake, inputs=["store"], outputs=["layers", "moments"]):
        # The layer table's depths under the configured definition (the store holds every one).
        store = with_depth_definition(open_filter_store(model.inputs["store"]), snakemake.params.depth_definition)
        check_store_matches(store, model.model_id, model.dataset, max_rows)
        log.info("%s: %d filters in %d layers, depth by %s (max %s), BatchNorm folded in %d layers, sparse "
                 "reference %s; %d threads, segments of at most %d rows", store.model_id, store.filters.shape[0],
                 len(store.layers), store.attrs.get("depth_definition"), store.attrs.get("max_conv_depth"),
                 int(store.layers.bn_folded.sum()), snakemake.params.sparse_reference, snakemake.threads, max_rows)
        table, moments = summarize(store, snakemake.threads, max_rows, snakemake.params.sparse_reference)
        log.info("\n%s", table.drop(columns=["model_id"]).to_string(index=False))
        write_npz(model.outputs["moments"], **moments.to_arrays())
        write_tsv(table, model.outputs["layers"])
