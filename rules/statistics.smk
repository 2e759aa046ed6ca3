# Beyond the paper: statistics for every robust-vs-normal comparison, correlations with
# accuracy, and the filter measures of neighbouring work (docs/method.md §7), from the per-model
# summaries. The settings below are each rule's params: changing one reruns that rule alone.

# Bootstrap and permutation settings of every statistic (seeded: the tables are reproducible).
STATISTICS = {
    "n_bootstrap": 2000,
    "n_permutations": 2000,
    "seed": 0,
    "level": 0.95,
    "alpha": 0.05,
}
# The perturbation-to-signal ratio: a seeded subset of test images, attacked with the
# evaluation attack of the config (`evaluation:`) against the model itself.
PERTURBATION = {"n_images": 256, "batch_size": 64, "seed": 0}
QUALITY_METRICS = ["sparsity", "entropy_unscaled", "entropy_scaled", "orthogonality"]
FILTER_MEASURES = [
    "l1l2_ratio",
    "hf_share",
    "spectral_norm",
    "spectral_norm_max",
    "sigma_mean",
    "stable_rank_ratio",
    "effective_rank_ratio",
    "perturbation_ratio",
    "perturbation_ratio_random",
]
# Measures that need the weights of the whole model or its test data (not a filter database).
LOCAL_DATA_MODELS = [m for m in CHECKPOINT_MODELS if has_local_data(m)]
# Exact spectra are costly for wide models: config analysis.spectra can turn them off.
SPECTRA_MODELS = CHECKPOINT_MODELS if config["analysis"]["spectra"] else []
STATISTICS_TARGETS = [
    "results/analysis/stats_quality.tsv",
    "results/analysis/stats_kl.tsv",
    "results/analysis/filter_measures_by_depth.tsv",
    "results/analysis/stats_filter_measures.tsv",
    "results/analysis/correlations.tsv",
]
STATISTICS_TARGETS += expand(
    "results/figures/{name}.{ext}",
    name=["fig8_correlations", "fig9_filter_measures"],
    ext=["pdf", "png"],
)
STATISTICS_TARGETS += expand(
    "results/tables/table_statistics.{ext}", ext=["tsv", "tex", "html"]
)


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
        "../workflow_scripts/stats_layer_spectra.py"


rule layer_perturbation:
    input:
        model="data/models/{model}.pt",
        layers="results/summaries/{model}/layers.tsv",
        data="data/datasets/coloured_digits.npz",
    output:
        "results/summaries/{model}/perturbation.tsv",
    log:
        "logs/perturbation/{model}.log",
    benchmark:
        "benchmarks/perturbation/{model}.tsv"
    wildcard_constraints:
        model=one_of(LOCAL_DATA_MODELS),
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        attack=config["evaluation"],
        settings=PERTURBATION,
    script:
        "../workflow_scripts/stats_layer_perturbation.py"


rule filter_measures:
    input:
        layers=expand("results/summaries/{model}/layers.tsv", model=MODELS),
        spectra=expand("results/summaries/{model}/spectra.tsv", model=SPECTRA_MODELS),
        perturbation=expand(
            "results/summaries/{model}/perturbation.tsv", model=LOCAL_DATA_MODELS
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
        "../workflow_scripts/stats_filter_measures.py"


rule stats_quality:
    input:
        table="results/analysis/quality_by_depth.tsv",
        sheet=SHEET_PATH,
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
        settings=STATISTICS,
    script:
        "../workflow_scripts/stats_paired.py"


rule stats_filter_measures:
    input:
        table="results/analysis/filter_measures_by_depth.tsv",
        sheet=SHEET_PATH,
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
        settings=STATISTICS,
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
        settings=STATISTICS,
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
        settings=STATISTICS,
    script:
        "../workflow_scripts/stats_correlations.py"


rule fig8_correlations:
    input:
        "results/analysis/correlations.tsv",
    output:
        pdf="results/figures/fig8_correlations.pdf",
        png=report(
            "results/figures/fig8_correlations.png",
            caption="report/fig8_correlations.rst",
            category="Figures",
            subcategory="Beyond the paper",
            labels={"item": "Fig. 8", "shows": "correlations with accuracy"},
        ),
    log:
        "logs/figures/fig8_correlations.log",
    benchmark:
        "benchmarks/fig8_correlations.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        settings=STATISTICS,
    script:
        "../workflow_scripts/fig_correlations.py"


rule fig9_filter_measures:
    input:
        table="results/analysis/filter_measures_by_depth.tsv",
        stats="results/analysis/stats_filter_measures.tsv",
    output:
        pdf="results/figures/fig9_filter_measures.pdf",
        png=report(
            "results/figures/fig9_filter_measures.png",
            caption="report/fig9_filter_measures.rst",
            category="Figures",
            subcategory="Beyond the paper",
            labels={"item": "Fig. 9", "shows": "filter measures by depth"},
        ),
    log:
        "logs/figures/fig9_filter_measures.log",
    benchmark:
        "benchmarks/fig9_filter_measures.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        settings=STATISTICS,
        perturbation=PERTURBATION,
        attack=config["evaluation"],
    script:
        "../workflow_scripts/fig_filter_measures.py"


rule table_statistics:
    input:
        quality="results/analysis/stats_quality.tsv",
        filter_measures="results/analysis/stats_filter_measures.tsv",
        kl="results/analysis/stats_kl.tsv",
    output:
        tsv="results/tables/table_statistics.tsv",
        tex="results/tables/table_statistics.tex",
        html=report(
            "results/tables/table_statistics.html",
            caption="report/stats_table.rst",
            category="Tables",
            subcategory="Beyond the paper",
            labels={"item": "Statistics", "shows": "robust vs normal, tested"},
        ),
    log:
        "logs/tables/table_statistics.log",
    benchmark:
        "benchmarks/table_statistics.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        settings=STATISTICS,
    script:
        "../workflow_scripts/stats_table.py"
