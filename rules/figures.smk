# Every figure and table of the paper (docs/method.md §6), one rule each, from the small analysis
# tables; `snakemake results/figures/<name>.pdf` builds one figure and only what it needs.
# A figure's settings (config `figures:`) are its rule's params, so changing one reruns that
# figure alone. PNGs and HTML tables go into `snakemake --report`, PDFs and LaTeX into papers.
from snakemake.logging import logger

from filterlens.report.figure_data import (
    FigureConfigError,
    activation_inputs,
    resolve_pair,
)

try:
    FIGURE_PAIR = resolve_pair(SHEET, config["figures"]["pair"])
except FigureConfigError as error:
    raise WorkflowError(f"{error} (sheet {SHEET_PATH})") from None
FIGURE_ROBUST, FIGURE_NORMAL = FIGURE_PAIR
AUTHORS_VALUES = workflow_path("config/reference/authors_values.tsv")
# The paper's zoo: the comparison table gives differences only where this run's zoo is it.
PAPER_SHEET = workflow_path("config/models/paper.tsv")

FIGURES = [
    "fig1_kl_by_depth",
    "fig2_pca_basis",
    "fig3_coefficient_distributions",
    "fig4_first_layer_filters",
    "fig5_last_layer_filters",
    "fig6_activations",
    "fig7_layer_quality",
]
try:  # Fig. 6 attacks a test image this run holds
    activation_inputs(SHEET, FIGURE_ROBUST, CIFAR_DATA_DIR)
except FigureConfigError as reason:
    FIGURES.remove("fig6_activations")
    logger.warning(f"Fig. 6 is skipped: {reason}")
TABLES = ["table1_zoo_summary", "table_pairs", "paper_comparison", "findings"]
FIGURE_TARGETS = expand(
    "results/figures/{name}.{ext}", name=FIGURES, ext=["pdf", "png"]
)
FIGURE_TARGETS += expand("results/tables/{name}.{ext}", name=TABLES, ext=["tsv", "tex"])


rule fig1_kl_by_depth:
    input:
        kl="results/analysis/kl_by_depth.tsv",
        stats="results/analysis/stats_kl.tsv",
    output:
        pdf="results/figures/fig1_kl_by_depth.pdf",
        png=report(
            "results/figures/fig1_kl_by_depth.png",
            caption="report/fig1_kl_by_depth.rst",
            category="Figures",
            subcategory="Distribution shifts (KL)",
            labels={"item": "Fig. 1", "shows": "KL by depth"},
        ),
    log:
        "logs/figures/fig1_kl_by_depth.log",
    benchmark:
        "benchmarks/fig1_kl_by_depth.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        alpha=STATISTICS["alpha"],
    script:
        "../workflow_scripts/fig_kl_by_depth.py"


rule fig2_pca_basis:
    input:
        "results/analysis/bases.tsv",
    output:
        pdf="results/figures/fig2_pca_basis.pdf",
        png=report(
            "results/figures/fig2_pca_basis.png",
            caption="report/fig2_pca_basis.rst",
            category="Figures",
            subcategory="Filter structure (PCA)",
            labels={"item": "Fig. 2", "shows": "PCA bases"},
        ),
    log:
        "logs/figures/fig2_pca_basis.log",
    benchmark:
        "benchmarks/fig2_pca_basis.tsv"
    conda:
        "../envs/figures.yaml"
    script:
        "../workflow_scripts/fig_pca_basis.py"


rule coefficient_distributions:
    input:
        histograms=expand(
            "results/summaries/{model}/histograms.npz", model=PAIRED_MODELS
        ),
        sheet=SHEET_PATH,
    output:
        "results/analysis/coefficient_distributions.tsv",
    log:
        "logs/figures/coefficient_distributions.log",
    benchmark:
        "benchmarks/coefficient_distributions.tsv"
    conda:
        "../envs/figures.yaml"
    script:
        "../workflow_scripts/fig_coefficient_distributions_data.py"


rule fig3_coefficient_distributions:
    input:
        "results/analysis/coefficient_distributions.tsv",
    output:
        pdf="results/figures/fig3_coefficient_distributions.pdf",
        png=report(
            "results/figures/fig3_coefficient_distributions.png",
            caption="report/fig3_coefficient_distributions.rst",
            category="Figures",
            subcategory="Filter structure (PCA)",
            labels={"item": "Fig. 3", "shows": "coefficient distributions"},
        ),
    log:
        "logs/figures/fig3_coefficient_distributions.log",
    benchmark:
        "benchmarks/fig3_coefficient_distributions.tsv"
    conda:
        "../envs/figures.yaml"
    script:
        "../workflow_scripts/fig_coefficient_distributions.py"


rule pair_filters:
    input:
        robust=f"results/filters/{FIGURE_ROBUST}.zarr",
        normal=f"results/filters/{FIGURE_NORMAL}.zarr",
    output:
        "results/analysis/pair_filters.npz",
    log:
        "logs/figures/pair_filters.log",
    benchmark:
        "benchmarks/pair_filters.tsv"
    conda:
        "../envs/analysis.yaml"  # zarr: reads two filter stores
    params:
        pair=FIGURE_PAIR,
    script:
        "../workflow_scripts/fig_pair_filters_data.py"


rule fig4_first_layer_filters:
    input:
        "results/analysis/pair_filters.npz",
    output:
        pdf="results/figures/fig4_first_layer_filters.pdf",
        png=report(
            "results/figures/fig4_first_layer_filters.png",
            caption="report/fig4_first_layer_filters.rst",
            category="Figures",
            subcategory="Filters of one pair",
            labels={"item": "Fig. 4", "shows": "first-layer filters"},
        ),
    log:
        "logs/figures/fig4_first_layer_filters.log",
    benchmark:
        "benchmarks/fig4_first_layer_filters.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        pair=FIGURE_PAIR,
    script:
        "../workflow_scripts/fig_first_layer_filters.py"


rule fig5_last_layer_filters:
    input:
        "results/analysis/pair_filters.npz",
    output:
        pdf="results/figures/fig5_last_layer_filters.pdf",
        png=report(
            "results/figures/fig5_last_layer_filters.png",
            caption="report/fig5_last_layer_filters.rst",
            category="Figures",
            subcategory="Filters of one pair",
            labels={"item": "Fig. 5", "shows": "last-layer filters"},
        ),
    log:
        "logs/figures/fig5_last_layer_filters.log",
    benchmark:
        "benchmarks/fig5_last_layer_filters.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        pair=FIGURE_PAIR,
        last_layer=config["figures"]["last_layer"],
    script:
        "../workflow_scripts/fig_last_layer_filters.py"


rule fig6_activations_data:
    input:
        unpack(
            lambda wildcards: activation_inputs(SHEET, FIGURE_ROBUST, CIFAR_DATA_DIR)
        ),
    output:
        "results/analysis/activations.npz",
    log:
        "logs/figures/activations.log",
    benchmark:
        "benchmarks/fig6_activations_data.tsv"
    conda:
        "../envs/models.yaml"  # torch: the model and the attack
    threads: 1
    params:
        model=FIGURE_ROBUST,
        activations=config["figures"]["activations"],
        verify_checksums=config["cifar_training"]["verify_checksums"],
    script:
        "../workflow_scripts/fig_activations_data.py"


rule fig6_activations:
    input:
        "results/analysis/activations.npz",
    output:
        pdf="results/figures/fig6_activations.pdf",
        png=report(
            "results/figures/fig6_activations.png",
            caption="report/fig6_activations.rst",
            category="Figures",
            subcategory="Filters of one pair",
            labels={"item": "Fig. 6", "shows": "first-layer activations"},
        ),
    log:
        "logs/figures/fig6_activations.log",
    benchmark:
        "benchmarks/fig6_activations.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        model=FIGURE_ROBUST,
        activations=config["figures"]["activations"],
    script:
        "../workflow_scripts/fig_activations.py"


rule fig7_layer_quality:
    input:
        quality="results/analysis/quality_by_depth.tsv",
        stats="results/analysis/stats_quality.tsv",
        sheet=SHEET_PATH,
    output:
        pdf="results/figures/fig7_layer_quality.pdf",
        png=report(
            "results/figures/fig7_layer_quality.png",
            caption="report/fig7_layer_quality.rst",
            category="Figures",
            subcategory="Layer quality",
            labels={"item": "Fig. 7", "shows": "layer quality by depth"},
        ),
    log:
        "logs/figures/fig7_layer_quality.log",
    benchmark:
        "benchmarks/fig7_layer_quality.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        entropy=config["figures"]["entropy"],
        alpha=STATISTICS["alpha"],
    script:
        "../workflow_scripts/fig_layer_quality.py"


rule table1_zoo_summary:
    input:
        models="results/tables/models.tsv",
        sheet=SHEET_PATH,
    output:
        tsv="results/tables/table1_zoo_summary.tsv",
        tex="results/tables/table1_zoo_summary.tex",
        html=report(
            "results/tables/table1_zoo_summary.html",
            caption="report/table1_zoo_summary.rst",
            category="Tables",
            subcategory="Tables",
            labels={"item": "Table 1", "shows": "the zoo per dataset"},
        ),
    log:
        "logs/tables/table1_zoo_summary.log",
    benchmark:
        "benchmarks/table1_zoo_summary.tsv"
    conda:
        "../envs/figures.yaml"
    script:
        "../workflow_scripts/table_zoo_summary.py"


rule table_pairs:
    input:
        models="results/tables/models.tsv",
        sheet=SHEET_PATH,
    output:
        tsv="results/tables/table_pairs.tsv",
        tex="results/tables/table_pairs.tex",
        html=report(
            "results/tables/table_pairs.html",
            caption="report/table_pairs.rst",
            category="Tables",
            subcategory="Tables",
            labels={"item": "Pairs", "shows": "every robust/normal pair"},
        ),
    log:
        "logs/tables/table_pairs.log",
    benchmark:
        "benchmarks/table_pairs.tsv"
    conda:
        "../envs/figures.yaml"
    script:
        "../workflow_scripts/table_pairs.py"


rule paper_comparison:
    input:
        authors=AUTHORS_VALUES,
        kl_by_dataset="results/analysis/kl_by_dataset.tsv",
        kl_by_depth="results/analysis/kl_by_depth.tsv",
        sparse_shares="results/analysis/sparse_shares.tsv",
        bases="results/analysis/bases.tsv",
        summary="results/tables/table1_zoo_summary.tsv",
        sheet=SHEET_PATH,
        paper_sheet=PAPER_SHEET,
    output:
        tsv="results/tables/paper_comparison.tsv",
        tex="results/tables/paper_comparison.tex",
        html=report(
            "results/tables/paper_comparison.html",
            caption="report/paper_comparison.rst",
            category="Tables",
            subcategory="Tables",
            labels={"item": "Comparison", "shows": "headline numbers vs the authors'"},
        ),
    log:
        "logs/tables/paper_comparison.log",
    benchmark:
        "benchmarks/paper_comparison.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        fold_batchnorm=config["extraction"]["fold_batchnorm"],
        filterdb_models=config["filterdb"]["models"],
    script:
        "../workflow_scripts/table_paper_comparison.py"


# Which of the paper's findings this run shows (src/filterlens/analyse/findings.py names each criterion).
rule findings:
    input:
        bases="results/analysis/bases.tsv",
        sparse_shares="results/analysis/sparse_shares.tsv",
        quality="results/analysis/quality_by_depth.tsv",
        stats_kl="results/analysis/stats_kl.tsv",
        models="results/tables/models.tsv",
        sheet=SHEET_PATH,
    output:
        tsv="results/tables/findings.tsv",
        tex="results/tables/findings.tex",
        html=report(
            "results/tables/findings.html",
            caption="report/findings.rst",
            category="Tables",
            subcategory="Tables",
            labels={
                "item": "Findings",
                "shows": "which of the paper's findings this run shows",
            },
        ),
    log:
        "logs/tables/findings.log",
    benchmark:
        "benchmarks/findings.tsv"
    conda:
        "../envs/figures.yaml"
    params:
        entropy=config["figures"]["entropy"],
    script:
        "../workflow_scripts/table_findings.py"
