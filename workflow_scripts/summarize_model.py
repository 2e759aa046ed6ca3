"""Rules summarize_model and summarize_batch_N: pass 1 over each filter store of the job: per-layer
counts, moments and quality; with the sensitivity analysis, also those of every variant whose
pass 1 differs (another sparse reference: its moments too; another depth definition: the layer
table relabelled), from the same read."""

from filterlens.extract.store import FilterStoreError, check_store_matches, open_filter_store, with_depth_definition
from filterlens.io.files import write_npz, write_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.choices import Settings, pass_variants
from filterlens.reduce.jobs import job_models
from filterlens.reduce.passes import stacked, summarize_references, with_depths
from filterlens.reduce.streaming import rows_per_segment

with rule_script(snakemake) as log:
    settings = Settings(**snakemake.params.choices)
    variants = pass_variants(settings, "summarize") if snakemake.params.sensitivity else {}
    references = [settings.sparse_reference, *(v.sparse_reference for v in variants.values())]
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    outputs = ["layers", "moments", *(["variant_layers", "variant_moments"] if variants else [])]
    for model in job_models(snakemake, inputs=["store"], outputs=outputs):
        # The layer table's depths under the configured definition (the store holds every one).
        store = with_depth_definition(open_filter_store(model.inputs["store"]), settings.depth_definition)
        check_store_matches(store, model.model_id, model.dataset, max_rows)
        log.info("%s: %d filters in %d layers, depth by %s (max %s), BatchNorm folded in %d layers, sparse "
                 "reference %s; %d threads, segments of at most %d rows", store.model_id, store.filters.shape[0],
                 len(store.layers), store.attrs.get("depth_definition"), store.attrs.get("max_conv_depth"),
                 int(store.layers.bn_folded.sum()), ", ".join(dict.fromkeys(references)), snakemake.threads,
                 max_rows)
        results = summarize_references(store, snakemake.threads, max_rows, references)
        table, moments = results[settings.sparse_reference]
        log.info("\n%s", table.drop(columns=["model_id"]).to_string(index=False))
        write_npz(model.outputs["moments"], **moments.to_arrays())
        write_tsv(table, model.outputs["layers"])
        if not variants:
            continue
        tables, arrays = {}, {}
        for name, variant in variants.items():
            variant_table, variant_moments = results[variant.sparse_reference]
            if variant.depth_definition != settings.depth_definition:
                try:
                    variant_table = with_depths(variant_table, with_depth_definition(store, variant.depth_definition))
                except FilterStoreError as error:  # a filter database import knows one depth only
                    log.warning("%s: no variant %s: %s", store.model_id, name, error)
                    continue
            tables[name] = variant_table
            if variant.sparse_reference != settings.sparse_reference:
                arrays.update({f"{name}/{key}": value for key, value in variant_moments.to_arrays().items()})
        write_tsv(stacked(tables, table), model.outputs["variant_layers"])
        write_npz(model.outputs["variant_moments"], **arrays)
