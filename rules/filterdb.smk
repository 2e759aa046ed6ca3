# The authors' published filter database, "CNN-Filter-DB-Robust v1.0.0" (Zenodo, doi
# 10.5281/zenodo.6414075), as a source of filter stores (filterlens.extract.filterdb).
#
# A model's filters come from the database instead of its checkpoint if its sheet row has
# source `filterdb` (source_key: the database's model name, or empty to derive it from the
# model id), or if config `filterdb.models` names it ("all": every model of the sheet). Its
# store, results/filters/{model}.zarr, is then written here and not by extract_filters; every
# analysis and filter figure reads it like any other store.
#
# The files come through a Snakemake storage plugin: `http` (default, no account needed) or
# `zenodo` (needs a Zenodo access token: --storage-zenodo-access-token or
# SNAKEMAKE_STORAGE_ZENODO_ACCESS_TOKEN). `filterdb.local_dir` reads them from a directory
# instead (a copy downloaded beforehand, test fixtures). The file names in the record are
# config (defaults: the authors' dataset.h5 with datasets `filters` and `meta`).
#
# Every file is checked before it is opened: against `filterdb.checksums` (the md5 the Zenodo
# record lists; required for the http plugin, which checks no hash), else for a failed or cut-off
# download. A bad downloaded copy is deleted, so the next run fetches it again. The meta table
# is read without PyTables (filterlens.extract.pandas_hdf5): nothing in the file can run code.


rule import_filterdb:
    input:
        **FILTERDB_INPUTS,
    output:
        directory("results/filters/{model}.zarr"),
    log:
        "logs/import_filterdb/{model}.log",
    benchmark:
        "benchmarks/import_filterdb/{model}.tsv"
    wildcard_constraints:
        model=one_of(FILTERDB_MODELS),
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        row=sheet_row,
        filterdb=FILTERDB,
        downloaded=FILTERDB["local_dir"] is None,
        chunk_rows=config["extraction"]["chunk_rows"],
    script:
        "../workflow_scripts/import_filterdb.py"
