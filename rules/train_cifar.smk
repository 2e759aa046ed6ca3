# The normal CIFAR counterparts, trained with the paper's recipe (docs/method.md §1; filterlens.train.cifar,
# config key cifar_training) on torchvision's CIFAR-10/100 folders under
# cifar_training.data_dir. The output is the best-validation checkpoint. The state of every
# finished epoch goes to data/models/.{model}.train_state.pt, deliberately not an output:
# Snakemake deletes the outputs of a failed or killed job, and this file must survive so
# that the rerun (--rerun-incomplete, or the SLURM profile's retry) resumes from it. It is
# deleted once the output is written. A missing dataset fails the job (not the DAG, so dry
# runs of a paper config work anywhere) with the folder to fill and how.


rule train_cifar:
    output:
        "data/models/{model}.pt",
    log:
        "logs/train_cifar/{model}.log",
    benchmark:
        "benchmarks/train_cifar/{model}.tsv"
    wildcard_constraints:
        model=one_of(models_where(source="train_cifar")),
    conda:
        "../envs/models.yaml"
    threads: 4
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=1440,  # minutes; a job stopped at its time limit resumes when rerun
        downloads=1 if config["cifar_training"]["download"] else 0,
    params:
        row=sheet_row,
        cifar_training=config["cifar_training"],
    script:
        "../workflow_scripts/train_cifar.py"
