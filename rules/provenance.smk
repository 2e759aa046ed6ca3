# What produced this run (results/provenance/): the config as resolved, the sheet's sha256,
# package versions, the workflow's git commit and whether its tree is dirty, the interpreter,
# and every checkpoint's sha256 beside the one its filter store recorded at extraction.
# The parse-time facts are params, so the rule reruns when the config, the sheet's content, a
# package or the commit changes; nothing reads its outputs, so it never makes others rerun.
from filterlens.provenance import run_facts

PROVENANCE = run_facts(config, SHEET_PATH, workflow.basedir)


rule provenance:
    input:
        # Models imported from the filter database have no checkpoint to hash.
        checkpoints=expand("data/models/{model}.pt", model=CHECKPOINT_MODELS),
        stores=expand("results/filters/{model}.zarr", model=CHECKPOINT_MODELS),
    output:
        json="results/provenance/provenance.json",
        tsv="results/provenance/provenance.tsv",
        html=report(
            "results/provenance/provenance.html",
            caption="report/provenance.rst",
            category="Provenance",
            labels={"item": "Provenance", "shows": "what produced this run"},
        ),
    log:
        "logs/provenance/provenance.log",
    conda:
        "../envs/analysis.yaml"
    threads: 2  # checkpoints are hashed two at a time
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        models=CHECKPOINT_MODELS,
        facts=PROVENANCE,
    script:
        "../workflow_scripts/provenance.py"
