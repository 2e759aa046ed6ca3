"""Rules coefficient_range and coefficient_range_batch_N: pass 2 over each filter store of the job:
min and max of the coefficients of all of a model's scaled filters (sparse ones included) on the
full basis (analysis.histogram_range paired_nonsparse: of its non-sparse ones; analysis.pca_sign
u_based: also each component's non-sparse coefficient of largest magnitude); with the sensitivity
analysis, the same for every variant whose pass 2 differs, from the same read."""

from filterlens.analyse.bases import projections
from filterlens.analyse.coefficient_range import range_rows
from filterlens.extract.store import check_store_matches, open_filter_store
from filterlens.io.files import write_tsv_rows
from filterlens.io.scripting import rule_script
from filterlens.method.choices import Settings, pass_variants
from filterlens.reduce.jobs import job_models
from filterlens.reduce.passes import coefficient_ranges
from filterlens.reduce.streaming import rows_per_segment


with rule_script(snakemake) as log:
    settings = Settings(**snakemake.params.choices)
    variants = pass_variants(settings, "coefficient_range") if snakemake.params.sensitivity else {}
    on = projections(settings.sparse_reference, snakemake.input.basis, variants,
                     snakemake.input.get("variant_bases"))
    # the non-sparse filters' summaries: for a variant, or where the configured range or sign needs them
    nonsparse = bool(variants) or settings.histogram_range != "all_filters" or settings.pca_sign != "v_based"
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    outputs = ["range", *(["variant_range"] if variants else [])]
    for model in job_models(snakemake, inputs=["store"], outputs=outputs):
        store = open_filter_store(model.inputs["store"])
        check_store_matches(store, model.model_id, model.dataset, max_rows)
        summaries = coefficient_ranges(store, on, snakemake.threads, max_rows, nonsparse=nonsparse)
        rows = range_rows(store.model_id, summaries[settings.sparse_reference], settings.histogram_range)
        log.info("%s: per component min and max\n%s", store.model_id,
                 "\n".join(f"{c:>9} {a!r:>24} {b!r:>24}" for _, c, a, b, _ in rows))
        columns = ["model_id", "component", "min", "max"]
        if settings.pca_sign == "u_based":
            write_tsv_rows(model.outputs["range"], [*columns, "extreme"], rows)
        else:
            write_tsv_rows(model.outputs["range"], columns, [row[:4] for row in rows])
        if variants:
            write_tsv_rows(model.outputs["variant_range"], ["variant", *columns, "extreme"],
                           [(name, *row) for name, variant in variants.items()
                            for row in range_rows(store.model_id, summaries[variant.sparse_reference],
                                                    variant.histogram_range)])
