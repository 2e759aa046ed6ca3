"""Rule coefficient_range: pass 2: min and max of the coefficients of all of a model's scaled filters
(sparse ones included) on the full basis."""

import pandas as pd

from filterlens.analyse.bases import load_basis
from filterlens.extract.store import check_store_matches, open_filter_store
from filterlens.io.files import write_tsv
from filterlens.io.scripting import rule_script
from filterlens.reduce.passes import coefficient_range
from filterlens.reduce.streaming import rows_per_segment

with rule_script(snakemake) as log:
    store = open_filter_store(snakemake.input.store)
    basis = load_basis(snakemake.input.basis)
    max_rows = rows_per_segment(snakemake.resources.mem_mb, snakemake.threads)
    check_store_matches(store, snakemake.wildcards.model, snakemake.params.dataset, max_rows)
    low, high = coefficient_range(store, basis, snakemake.threads, max_rows)
    table = pd.DataFrame({"model_id": store.model_id, "component": range(1, 10), "min": low, "max": high})
    log.info("\n%s", table.to_string(index=False))
    write_tsv(table, snakemake.output[0])
