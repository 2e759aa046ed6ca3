rule evaluate_model:
    input:
        model="data/models/{model}.pt",
        data="data/datasets/coloured_digits.npz",
    output:
        "results/metrics/{model}.tsv",
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    wildcard_constraints:
        model=one_of([m for m in MODELS if has_local_data(m)]),
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        evaluation=config["evaluation"],
    script:
        "../workflow_scripts/evaluate_model.py"
