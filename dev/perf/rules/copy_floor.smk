# The floor an extraction job is timed against in the scale run (docs/benchmarks.md): the same
# checkpoint's 3x3 weights written unprocessed with the store's codec, for the models of config
# perf.copy_floor_models. The job deletes its store at its end and keeps a table.
rule copy_floor:
    input:
        "data/models/{model}.pt",
    output:
        "results/benchmarks/copy_floor/{model}.tsv",
    log:
        "logs/copy_floor/{model}.log",
    benchmark:
        "benchmarks/copy_floor/{model}.tsv"
    wildcard_constraints:
        model=filterlens.one_of(COPY_FLOOR_MODELS),
    # As extraction: while the temporary checkpoint exists.
    priority: 10
    conda:
        "../../../envs/models.yaml"
    resources:
        mem_mb=filterlens.EXTRACT_MEM_MB,
        runtime=filterlens.EXTRACT_RUNTIME,
    params:
        chunk_rows=config["extraction"]["chunk_rows"],
    script:
        "../scripts/copy_floor.py"
