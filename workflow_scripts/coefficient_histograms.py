"""Rules coefficient_histograms and coefficient_histograms_batch_N: pass 3 over each filter store
of the job: per layer and component, counts over the global range (components signed as
analysis.pca_sign says); with the sensitivity analysis, the counts of every variant whose pass 3
differs, from the same read (variants on the same basis share its coefficients)."""

from filterlens.analyse.bases import projections
from filterlens.analyse.coefficient_range import range_signs
from filterlens.extract.store import check_store_matches, open_filter_store
from filterlens.io.files import read_tsv_rows, write_npz
from filterlens.io.scripting import rule_script
from filterlens.method.choices import Settings, pass_variants
from filterlens.reduce.jobs import job_models
from filterlens.reduce.passes import HistogramSpec, coefficient_histograms_of
from filterlens.reduce.streaming import rows_per_segment

with rule_script(snakemake) as log:
    settings = Settings(**snakemake.params.choices)
    variants = pass_variants(settings, "coefficient_histograms") if snakemake.params.sensitivity else {}
    bins = snakemake.params.bins
    on = projections(settings.sparse_reference, snakemake.input.basis, variants,
                     snakemake.input.get("variant_bases"))
    value_range = read_tsv_rows(snakemake.input.range)[0]
    specs = {"": HistogramSpec(on[settings.sparse_reference], float(value_range["min"]),
                               float(value_range["max"]), range_signs(value_range))}
    variant_ranges = {row["variant"]: row for row in read_tsv_rows(snakemake.input.variant_range)} if variants else {}
    for name, variant in variants.items():
        row = variant_ranges[name]
        specs[name] = HistogramSpec(on[variant.sparse_reference], float(row["min"]), float(row["max"]),
                                    range_signs(row))
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    outputs = ["histograms", *(["variant_histograms"] if variants else [])]
    for model in job_models(snakemake, inputs=["store"], outputs=outputs):
        store = open_filter_store(model.inputs["store"])
        check_store_matches(store, model.model_id, model.dataset, max_rows)
        counts = coefficient_histograms_of(store, specs, bins, snakemake.threads, max_rows)
        low, high = specs[""].low, specs[""].high
        log.info("%s: %d coefficients per component in %d bins over [%r, %r]",
                 store.model_id, counts[""][:, 0].sum(), bins, low, high)
        write_npz(model.outputs["histograms"], counts=counts[""], low=low, high=high)
        if variants:
            write_npz(model.outputs["variant_histograms"],
                      **{f"{name}/{key}": value for name in variants
                         for key, value in (("counts", counts[name]), ("low", specs[name].low),
                                            ("high", specs[name].high))})
