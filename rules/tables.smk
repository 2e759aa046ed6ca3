# The model table, every table of the paper (docs/method.md §6) and the statistics table
# (docs/method.md §7), one rule each, from the small analysis tables. HTML tables go into
# `snakemake --report`, TSV and LaTeX into papers.


rule model_table:
    input:
        stores=expand("results/filters/{model}.zarr", model=MODELS),
        metrics=expand("results/metrics/{model}.tsv", model=EVALUATED_MODELS),
        sheet=SHEET_PATH,
    output:
        "results/tables/models.tsv",
    log:
        "logs/tables/models.log",
    benchmark:
        "benchmarks/model_table.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        depth_definition=config["analysis"]["depth_definition"],
    script:
        "../workflow_scripts/model_table.py"


rule table1_zoo_summary:
    input:
        unpack(
            needs_a_pair({"models": "results/tables/models.tsv", "sheet": SHEET_PATH})
        ),
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
        "../workflow_scripts/table1_zoo_summary.py"


rule table_pairs:
    input:
        unpack(
            needs_a_pair({"models": "results/tables/models.tsv", "sheet": SHEET_PATH})
        ),
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
        changed=changed_choices(*COMPARED_CHOICES),
    script:
        "../workflow_scripts/paper_comparison.py"


# Which of the paper's findings this run shows (src/filterlens/analyse/findings.py names each criterion).
rule findings:
    input:
        **variant_inputs(sensitivity="results/analysis/sensitivity.tsv"),
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
        choices=choices_of("entropy", "kl_pooling", "boxes"),
    script:
        "../workflow_scripts/findings.py"


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
            caption="report/table_statistics.rst",
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
        settings=config["statistics"],
    script:
        "../workflow_scripts/table_statistics.py"
