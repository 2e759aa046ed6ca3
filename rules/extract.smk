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
    # one by one instead of piling up (~40 GB at paper scale).
    priority: 10
    conda:
        "../envs/models.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        extraction={
            key: config["extraction"][key] for key in ("chunk_rows", "fold_batchnorm")
        },
        dataset=sheet_dataset,
    script:
        "../workflow_scripts/extract_filters.py"
