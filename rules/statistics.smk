# Beyond the paper: statistics for every robust-vs-normal comparison, correlations with
# accuracy, and the filter measures of neighbouring work (docs/method.md §7), from the per-model
# summaries. The settings (config `statistics:`, `analysis.perturbation`) are each rule's params:
# changing one reruns that rule alone. Fig. 8-9 are in rules/figures.smk, the statistics table
# in rules/tables.smk.


rule layer_spectra:
    input:
        model="data/models/{model}.pt",
        layers="results/summaries/{model}/layers.tsv",
    output:
        "results/summaries/{model}/spectra.tsv",
    log:
        "logs/spectra/{model}.log",
    benchmark:
        "benchmarks/spectra/{model}.tsv"
    conda:
        "../envs/models.yaml"  # torch: the checkpoint and its input sizes
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        fold_batchnorm=config["extraction"]["fold_batchnorm"],
    script:
        "../workflow_scripts/layer_spectra.py"


rule layer_perturbation:
    input:
        model="data/models/{model}.pt",
        layers="results/summaries/{model}/layers.tsv",
        data=MINIZOO_DATA,
    output:
        "results/summaries/{model}/perturbation.tsv",
    log:
        "logs/perturbation/{model}.log",
    benchmark:
        "benchmarks/perturbation/{model}.tsv"
    wildcard_constraints:
        model=one_of(PERTURBATION_MODELS),
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        attack=config["evaluation"],
        settings=config["analysis"]["perturbation"],
    script:
        "../workflow_scripts/layer_perturbation.py"


rule filter_measures:
    input:
        layers=expand("results/summaries/{model}/layers.tsv", model=MODELS),
        spectra=expand("results/summaries/{model}/spectra.tsv", model=SPECTRA_MODELS),
        perturbation=expand(
            "results/summaries/{model}/perturbation.tsv", model=PERTURBATION_MODELS
        ),
        sheet=SHEET_PATH,
    output:
        "results/analysis/filter_measures_by_depth.tsv",
    log:
        "logs/analysis/filter_measures.log",
    benchmark:
        "benchmarks/filter_measures.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/filter_measures.py"


rule stats_quality:
    input:
        unpack(
            needs_a_pair(
                {"table": "results/analysis/quality_by_depth.tsv", "sheet": SHEET_PATH}
            )
        ),
    output:
        "results/analysis/stats_quality.tsv",
    log:
        "logs/analysis/stats_quality.log",
    benchmark:
        "benchmarks/stats_quality.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        metrics=QUALITY_METRICS,
        settings=config["statistics"],
    script:
        "../workflow_scripts/stats_paired.py"


rule stats_filter_measures:
    input:
        unpack(
            needs_a_pair(
                {
                    "table": "results/analysis/filter_measures_by_depth.tsv",
                    "sheet": SHEET_PATH,
                }
            )
        ),
    output:
        "results/analysis/stats_filter_measures.tsv",
    log:
        "logs/analysis/stats_filter_measures.log",
    benchmark:
        "benchmarks/stats_filter_measures.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        metrics=FILTER_MEASURES,
        settings=config["statistics"],
    script:
        "../workflow_scripts/stats_paired.py"


rule stats_kl:
    input:
        histograms=expand(
            "results/summaries/{model}/histograms.npz", model=PAIRED_MODELS
        ),
        layers=expand("results/summaries/{model}/layers.tsv", model=PAIRED_MODELS),
        basis="results/analysis/basis_full.npz",
        sheet=SHEET_PATH,
    output:
        "results/analysis/stats_kl.tsv",
    log:
        "logs/analysis/stats_kl.log",
    benchmark:
        "benchmarks/stats_kl.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        settings=config["statistics"],
        choices=choices_of("empty_bins"),
    script:
        "../workflow_scripts/stats_kl.py"


rule correlations:
    input:
        quality="results/analysis/quality_by_depth.tsv",
        filter_measures="results/analysis/filter_measures_by_depth.tsv",
        models="results/tables/models.tsv",
    output:
        "results/analysis/correlations.tsv",
    log:
        "logs/analysis/correlations.log",
    benchmark:
        "benchmarks/correlations.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        measures=QUALITY_METRICS + FILTER_MEASURES,
        settings=config["statistics"],
    script:
        "../workflow_scripts/correlations.py"
