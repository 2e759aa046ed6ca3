"""Rule candidate_histograms: pass 3 on a reference bundle's basis and range (sparse filters by
the bundle's sparse reference), with the coefficients outside that range counted per layer and
component."""

from filterlens.analyse.bundle import read_bundle
from filterlens.extract.store import check_store_matches, open_filter_store
from filterlens.io.files import write_npz
from filterlens.io.scripting import rule_script
from filterlens.reduce.passes import coefficient_histograms_with_outside
from filterlens.reduce.streaming import rows_per_segment

with rule_script(snakemake) as log:
    bundle = read_bundle(snakemake.input.bundle)
    store = open_filter_store(snakemake.input.store)
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    check_store_matches(store, snakemake.wildcards.model, snakemake.params.dataset, max_rows)
    counts, outside = coefficient_histograms_with_outside(store, bundle.basis, bundle.low, bundle.high, bundle.bins,
                                                          snakemake.threads, max_rows, bundle.sparse_reference)
    log.info("%s: %d coefficients per component in %d bins over the bundle's [%r, %r]; %d below, %d above it "
             "(over 9 components)", store.model_id, counts[:, 0].sum(), bundle.bins, bundle.low, bundle.high,
             outside[..., 0].sum(), outside[..., 1].sum())
    write_npz(snakemake.output[0], counts=counts, outside=outside, low=bundle.low, high=bundle.high)
