rule extract_filters:
    input:
        "data/models/{model}.pt",
    output:
        directory("results/filters/{model}.zarr"),
    log:
        "logs/extract/{model}.log",
    benchmark:
        "benchmarks/extract/{model}.tsv"
    wildcard_constraints:
        model=one_of(CHECKPOINT_MODELS),
    # Extract as soon as a checkpoint exists: temporary ones (random_init) are then deleted
    # one by one instead of piling up (their disk at paper scale: docs/runs.md).
    priority: 10
    conda:
        "../envs/models.yaml"
    resources:
        mem_mb=EXTRACT_MEM_MB,
        runtime=EXTRACT_RUNTIME,
    params:
        extraction={
            key: config["extraction"][key] for key in ("chunk_rows", "fold_batchnorm")
        },
        dataset=sheet_dataset,
    script:
        "../workflow_scripts/extract_filters.py"


# The floor an extraction job is timed against in the scale run (docs/benchmarks.md): the same
# checkpoint's 3x3 weights written unprocessed with the store's codec, for the models of config
# extraction.copy_floor_models. The job deletes its store at its end and keeps a table.
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
        model=one_of(COPY_FLOOR_MODELS),
    # As extraction: while the temporary checkpoint exists.
    priority: 10
    conda:
        "../envs/models.yaml"
    resources:
        mem_mb=EXTRACT_MEM_MB,
        runtime=EXTRACT_RUNTIME,
    params:
        chunk_rows=config["extraction"]["chunk_rows"],
    script:
        "../workflow_scripts/copy_floor.py"
