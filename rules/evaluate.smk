rule evaluate_model:
    input:
        model="data/models/{model}.pt",
        data=MINIZOO_DATA,
    output:
        "results/metrics/{model}.tsv",
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    wildcard_constraints:
        model=one_of(LOCAL_DATA_MODELS),
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


# Table 1: the clean test accuracy of the normal CIFAR models, measured on the CIFAR test set
# of cifar_training.data_dir when it is at hand (else Table 1 takes the sheet's values).
rule evaluate_clean_cifar:
    input:
        model="data/models/{model}.pt",
        data=cifar_test_images,
    output:
        "results/metrics/{model}.tsv",
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    wildcard_constraints:
        model=one_of(CIFAR_EVALUATED),
    conda:
        "../envs/models.yaml"
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    params:
        verify_checksums=config["cifar_training"]["verify_checksums"],
    script:
        "../workflow_scripts/evaluate_clean_cifar.py"
