# Placing this run's models (the candidates: every model of the sheet) against a reference
# bundle (config reference.bundle, docs/bundle.md): their coefficient histograms on the
# bundle's basis and range, the KL to its robust and normal pools, and a figure.


rule candidate_histograms:
    input:
        store="results/filters/{model}.zarr",
        bundle=BUNDLE or [],
        checksum=f"{BUNDLE}.sha256" if BUNDLE else [],
    output:
        "results/placement/{model}/histograms.npz",
    log:
        "logs/placement/{model}.log",
    benchmark:
        "benchmarks/candidate_histograms/{model}.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        dataset=sheet_dataset,
    script:
        "../workflow_scripts/candidate_histograms.py"


rule placement:
    input:
        histograms=expand("results/placement/{model}/histograms.npz", model=MODELS),
        layers=expand("results/summaries/{model}/layers.tsv", model=MODELS),
        bundle=BUNDLE or [],
        checksum=f"{BUNDLE}.sha256" if BUNDLE else [],
        sheet=SHEET_PATH,
    output:
        tsv="results/tables/placement.tsv",
        html=report(
            "results/tables/placement.html",
            caption="report/placement.rst",
            category="Placement against a reference",
            labels={"item": "Table", "shows": "KL to the reference's pools"},
        ),
    log:
        "logs/placement/placement.log",
    benchmark:
        "benchmarks/placement.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        depth_definition=config["analysis"]["depth_definition"],
        fold_batchnorm=config["extraction"]["fold_batchnorm"],
        sparse_reference=config["analysis"]["sparse_reference"],
    script:
        "../workflow_scripts/placement.py"


rule fig_placement:
    input:
        placement="results/tables/placement.tsv",
        layers=expand("results/summaries/{model}/layers.tsv", model=MODELS),
        bundle=BUNDLE or [],
    output:
        pdf="results/figures/placement.pdf",
        png=report(
            "results/figures/placement.png",
            caption="report/fig_placement.rst",
            category="Placement against a reference",
            labels={"item": "Figure", "shows": "candidates vs the reference"},
        ),
    log:
        "logs/figures/placement.log",
    benchmark:
        "benchmarks/fig_placement.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        entropy=config["figures"]["entropy"],
    script:
        "../workflow_scripts/fig_placement.py"
