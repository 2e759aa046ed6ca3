rule model_table:
    input:
        stores=expand("results/filters/{model}.zarr", model=MODELS),
        metrics=[
            f"results/metrics/{m}.tsv"
            for m in MODELS
            if has_local_data(m) or m in CIFAR_EVALUATED
        ],
        sheet=SHEET_PATH,
    output:
        "results/tables/models.tsv",
    log:
        "logs/tables/models.log",
    benchmark:
        "benchmarks/model_table.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        depth_definition=config["analysis"]["depth_definition"],
    script:
        "../workflow_scripts/model_table.py"
