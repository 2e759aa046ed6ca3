# How a checkpoint comes to exist: one rule per sheet source, each writing the same checkpoint
# contract, data/models/{model}.pt (filterlens.acquire.checkpoint), so nothing downstream knows
# where a model came from. Each rule's wildcard_constraints take the models of its source:
#
#   sheet source   rule                  data/models/{model}.pt
#   minizoo        train_minizoo         trained on the mini zoo's dataset (rules/data.smk)
#   random         random_init           seeded random weights, temporary
#   robustbench    acquire_robustbench   downloaded, RobustBench's model directory
#   timm           acquire_timm          downloaded, the Hugging Face cache
#   local          acquire_local         your own state dict file (and constructor file)
#   train_cifar    train_cifar           trained with the paper's recipe on CIFAR
#   filterdb       (none)                no checkpoint: import_filterdb writes the filter store
#                                        (rules/filterdb.smk)


# --- minizoo ----------------------------------------------------------------------------------


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


# --- random -----------------------------------------------------------------------------------


# Seeded random weights are cheap to rebuild and, at paper scale, their checkpoints would take
# more disk than the stores (docs/benchmarks.md): temporary, deleted once extracted (and left
# out of the provenance record).
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


# --- robustbench, timm -------------------------------------------------------------------------


# Pretrained models (the paper's zoo), downloaded (filterlens.acquire.robustbench_weights, filterlens.acquire.timm_weights).
#
# - robustbench: robustbench.utils.load_model reads config acquisition.model_dir in
#   RobustBench's own layout, <model_dir>/<dataset>/<threat_model>/<key>.pt, and downloads
#   only missing files (Google Drive). A directory filled beforehand needs no network. Bad
#   files (empty, an HTML page, truncated) are removed and downloaded again with exponential
#   back-off; sha256s are recorded in and verified against acquisition.lock_file.
# - timm: timm.create_model(<source_key>, pretrained=True) through the Hugging Face cache.
#   HF_HOME (or HF_HUB_CACHE) chooses the cache, HF_HUB_OFFLINE=1 forbids the network:
#   set them in the environment of snakemake (cluster jobs inherit it).
# Both run on the machine that runs snakemake (localrule: compute nodes often have no
# internet) and take one of the profile's `downloads` slots.
#
# Every downloaded file is checked before anything parses it (failed download, lock file,
# integrity); RobustBench entries that load from elsewhere than the model directory and timm
# names that load from any Hugging Face repository are refused when the sheet is read
# (rules/common.smk, filterlens.models.pretrained_sources).


rule acquire_robustbench:
    output:
        "data/models/{model}.pt",
    log:
        "logs/acquire/{model}.log",
    benchmark:
        "benchmarks/acquire_robustbench/{model}.tsv"
    wildcard_constraints:
        model=one_of(models_where(source="robustbench")),
    localrule: True
    conda:
        "../envs/models.yaml"
    resources:
        downloads=1,
        mem_mb=8000,
        runtime=120,
    params:
        row=sheet_row,
        acquisition=ACQUISITION,
    script:
        "../workflow_scripts/acquire_robustbench.py"


rule acquire_timm:
    output:
        "data/models/{model}.pt",
    log:
        "logs/acquire/{model}.log",
    benchmark:
        "benchmarks/acquire_timm/{model}.tsv"
    wildcard_constraints:
        model=one_of(models_where(source="timm")),
    localrule: True
    conda:
        "../envs/models.yaml"
    resources:
        downloads=1,
        mem_mb=4000,
        runtime=60,
    params:
        row=sheet_row,
        acquisition=config["acquisition"],
    script:
        "../workflow_scripts/acquire_timm.py"


# --- local ------------------------------------------------------------------------------------


# Your own models beside the zoo: a sheet row with source local names a state dict file
# (source_key) for the row's architecture and arch_kwargs; it becomes the checkpoint
# (filterlens.acquire.local). Architecture python builds the model with a constructor in your
# own file (arch_kwargs constructor "file.py:callable"), which runs that file
# (filterlens.models.user_code). Both files are
# inputs: editing one acquires the model again. Relative paths are relative to the working
# directory; rules/common.smk checks at parse time that they exist and lists them (OWN_FILES).
rule acquire_local:
    input:
        unpack(lambda wildcards: OWN_FILES[wildcards.model]),
    output:
        "data/models/{model}.pt",
    log:
        "logs/acquire/{model}.log",
    benchmark:
        "benchmarks/acquire_local/{model}.tsv"
    wildcard_constraints:
        model=one_of(models_where(source="local")),
    conda:
        "../envs/models.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        row=sheet_row,
    script:
        "../workflow_scripts/acquire_local.py"


# --- train_cifar --------------------------------------------------------------------------------


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
