"""Rules coefficient_range and coefficient_range_batch_N: pass 2 over each filter store of the job:
min and max of the coefficients of all of a model's scaled filters (sparse ones included) on the
full basis."""

from filterlens.analyse.bases import load_basis
from filterlens.extract.store import check_store_matches, open_filter_store
from filterlens.io.files import write_tsv_rows
from filterlens.io.scripting import rule_script
from filterlens.reduce.jobs import job_models
from filterlens.reduce.passes import coefficient_range
from filterlens.reduce.streaming import rows_per_segment

with rule_script(snakemake) as log:
    basis = load_basis(snakemake.input.basis)
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    for model in job_models(snakemake, inputs=["store"], outputs=["range"]):
        store = open_filter_store(model.inputs["store"])
        check_store_matches(store, model.model_id, model.dataset, max_rows)
        low, high = coefficient_range(store, basis, snakemake.threads, max_rows)
        rows = [(store.model_id, c + 1, low[c], high[c]) for c in range(len(low))]
        log.info("%s: per component min and max\n%s", store.model_id,
                 "\n".join(f"{c:>9} {a!r:>24} {b!r:>24}" for _, c, a, b in rows))
        write_tsv_rows(model.outputs["range"], ["model_id", "component", "min", "max"], rows)
