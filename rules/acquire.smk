# Acquisition: every source ends in the same checkpoint contract, data/models/{model}.pt
# (filterlens.acquire.checkpoint), so nothing downstream knows where a model came from.


rule train_minizoo:
    input:
        MINIZOO_DATA,
    output:
        "data/models/{model}.pt",
    log:
        "logs/train/{model}.log",
    benchmark:
        "benchmarks/train/{model}.tsv"
    wildcard_constraints:
        model=one_of(models_where(source="minizoo")),
    conda:
        "../envs/models.yaml"
    threads: 1  # one thread per model: deterministic, and models train side by side
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        row=sheet_row,
        training=config["training"],
    script:
        "../workflow_scripts/train_minizoo.py"


# Seeded random weights are rebuilt in seconds, and at paper scale their checkpoints would
# take ~40 GB: temporary, deleted once extracted (and left out of the provenance record).
rule random_init:
    output:
        temp("data/models/{model}.pt"),
    log:
        "logs/random_init/{model}.log",
    benchmark:
        "benchmarks/random_init/{model}.tsv"
    wildcard_constraints:
        model=one_of(models_where(source="random")),
    conda:
        "../envs/models.yaml"
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        row=sheet_row,
        seed=config["training"]["seed"],
    script:
        "../workflow_scripts/random_init.py"
