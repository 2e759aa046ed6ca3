# The mini zoo's dataset (MINIZOO_DATASET, rules/common.smk), fixed by config `dataset`.


rule coloured_digits:
    output:
        MINIZOO_DATA,
    log:
        f"logs/datasets/{MINIZOO_DATASET}.log",
    benchmark:
        f"benchmarks/{MINIZOO_DATASET}.tsv"
    conda:
        "../envs/models.yaml"
    params:
        dataset=config["dataset"],
    script:
        "../workflow_scripts/coloured_digits.py"
