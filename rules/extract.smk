rule extract_filters:
    input:
        "data/models/{model}.pt",
    output:
        directory("results/filters/{model}.zarr"),
    log:
        "logs/extract/{model}.log",
    benchmark:
        "benchmarks/extract/{model}.tsv"
    conda:
        "../envs/models.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        extraction=config["extraction"],
    script:
        "../workflow_scripts/extract_filters.py"
