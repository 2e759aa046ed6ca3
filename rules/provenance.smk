# What produced this run (results/provenance/): the config as resolved, the sheet's sha256,
# package versions, the workflow's git commit and whether its tree is dirty, the interpreter,
# and every checkpoint's sha256 beside the one its filter store recorded at extraction (and,
# for your own models, the sha256 of the weights and constructor files the sheet names).
# The parse-time facts are params, so the rule reruns when the config, the sheet's content, a
# package or the commit changes; nothing reads its outputs, so it never makes others rerun.


rule provenance:
    input:
        checkpoints=expand("data/models/{model}.pt", model=HASHED_MODELS),
        stores=expand("results/filters/{model}.zarr", model=HASHED_MODELS),
        own_files=[f for files in HASHED_OWN_FILES.values() for f in files.values()],
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
    benchmark:
        "benchmarks/provenance.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 2  # checkpoints are hashed two at a time
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        models=HASHED_MODELS,
        own_files=HASHED_OWN_FILES,
        facts=PROVENANCE,
    script:
        "../workflow_scripts/provenance.py"
