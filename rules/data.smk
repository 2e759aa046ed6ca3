rule coloured_digits:
    output:
        "data/datasets/coloured_digits.npz",
    log:
        "logs/datasets/coloured_digits.log",
    benchmark:
        "benchmarks/coloured_digits.tsv"
    conda:
        "../envs/models.yaml"
    params:
        dataset=config["dataset"],
    script:
        "../workflow_scripts/make_coloured_digits.py"
