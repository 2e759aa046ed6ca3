"""Rules coefficient_histograms and coefficient_histograms_batch_N: pass 3 over each filter store
of the job: per layer and component, counts over the global range."""

from filterlens.analyse.bases import load_basis
from filterlens.extract.store import check_store_matches, open_filter_store
from filterlens.io.files import read_tsv_rows, write_npz
from filterlens.io.scripting import rule_script
from filterlens.reduce.jobs import job_models
from filterlens.reduce.passes import coefficient_histograms
from filterlens.reduce.streaming import rows_per_segment

with rule_script(snakemake) as log:
    basis = load_basis(snakemake.input.basis)
    value_range = read_tsv_rows(snakemake.input.range)[0]
    low, high, bins = float(value_range["min"]), float(value_range["max"]), snakemake.params.bins
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    for model in job_models(snakemake, inputs=["store"], outputs=["histograms"]):
        store = open_filter_store(model.inputs["store"])
        check_store_matches(store, model.model_id, model.dataset, max_rows)
        counts = coefficient_histograms(store, basis, low, high, bins, snakemake.threads, max_rows,
                                        snakemake.params.sparse_reference)
        log.info("%s: %d coefficients per component in %d bins over [%r, %r]",
                 store.model_id, counts[:, 0].sum(), bins, low, high)
        write_npz(model.outputs["histograms"], counts=counts, low=low, high=high)
