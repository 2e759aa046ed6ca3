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
