# Acquisition of pretrained models (the paper's zoo), into the checkpoint contract
# data/models/{model}.pt like every other source (filterlens.acquire.robustbench_weights, filterlens.acquire.timm_weights).
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
