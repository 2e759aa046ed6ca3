"""Rule coefficient_histograms: pass 3: per layer and component, counts over the global range."""

from filterlens.analyse.bases import load_basis
from filterlens.extract.store import check_store_matches, open_filter_store
from filterlens.io.files import read_tsv_rows, write_npz
from filterlens.io.scripting import rule_script
from filterlens.reduce.passes import coefficient_histograms
from filterlens.reduce.streaming import rows_per_segment

with rule_script(snakemake) as log:
    store = open_filter_store(snakemake.input.store)
    basis = load_basis(snakemake.input.basis)
    value_range = read_tsv_rows(snakemake.input.range)[0]
    low, high, bins = float(value_range["min"]), float(value_range["max"]), snakemake.params.bins
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    check_store_matches(store, snakemake.wildcards.model, snakemake.params.dataset, max_rows)
    counts = coefficient_histograms(store, basis, low, high, bins, snakemake.threads, max_rows)
    log.info("%s: %d coefficients per component in %d bins over [%r, %r]",
             store.model_id, counts[:, 0].sum(), bins, low, high)
    write_npz(snakemake.output[0], counts=counts, low=low, high=high)
