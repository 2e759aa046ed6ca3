# Every figure of the paper (docs/method.md §6) and beyond it (Fig. 8-9, docs/method.md §7), one
# rule each, from the small analysis tables, beside the rules that shape a figure's data;
# `snakemake results/figures/<name>.pdf` builds one figure and only what it needs. A figure's
# settings (config `figures:`, `statistics:`) are its rule's params, so changing one reruns that
# figure alone. PNGs go into `snakemake --report`, PDFs into papers.


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
        alpha=config["statistics"]["alpha"],
    script:
        "../workflow_scripts/fig1_kl_by_depth.py"


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
        "../workflow_scripts/fig2_pca_basis.py"


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
        "../workflow_scripts/coefficient_distributions.py"


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
        "../workflow_scripts/fig3_coefficient_distributions.py"


rule pair_filters:
    input:
        unpack(pair_filter_stores),
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
        "../workflow_scripts/pair_filters.py"


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
        "../workflow_scripts/fig4_first_layer_filters.py"


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
        sparse_reference=config["analysis"]["sparse_reference"],
    script:
        "../workflow_scripts/fig5_last_layer_filters.py"


rule fig6_activations_data:
    input:
        unpack(activation_inputs),
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
        "../workflow_scripts/fig6_activations_data.py"


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
        "../workflow_scripts/fig6_activations.py"


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
        boxes=config["figures"]["boxes"],
        alpha=config["statistics"]["alpha"],
    script:
        "../workflow_scripts/fig7_layer_quality.py"


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
        settings=config["statistics"],
    script:
        "../workflow_scripts/fig8_correlations.py"


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
        settings=config["statistics"],
        perturbation=config["analysis"]["perturbation"],
        attack=config["evaluation"],
    script:
        "../workflow_scripts/fig9_filter_measures.py"
