# The documented choices changed one at a time (config analysis.sensitivity; docs/method.md,
# "Choices"; docs/design.md, "Sensitivity to the documented choices"). The three passes
# (rules/summarize.smk) write each variant's results beside their own from the same read;
# the rules here merge them: the variants' bases before pass 2, their ranges before pass 3, and
# after pass 3 every finding and headline number under each variant.


rule sensitivity_bases:
    input:
        moments=expand(
            "results/summaries/{model}/sensitivity/moments.npz", model=MODELS
        ),
        sheet=SHEET_PATH,
    output:
        "results/analysis/sensitivity/bases.npz",
    log:
        "logs/analysis/sensitivity_bases.log",
    benchmark:
        "benchmarks/sensitivity_bases.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        choices=choices_of(*PASS_CHOICES["summarize"]),
    script:
        "../workflow_scripts/sensitivity_bases.py"


rule sensitivity_ranges:
    input:
        ranges=expand(
            "results/summaries/{model}/sensitivity/coefficient_range.tsv", model=MODELS
        ),
        sheet=SHEET_PATH,
    output:
        "results/analysis/sensitivity/coefficient_range.tsv",
    log:
        "logs/analysis/sensitivity_ranges.log",
    benchmark:
        "benchmarks/sensitivity_ranges.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        choices=choices_of(*PASS_CHOICES["coefficient_histograms"]),
    script:
        "../workflow_scripts/sensitivity_ranges.py"


rule sensitivity_analysis:
    input:
        layers=expand("results/summaries/{model}/layers.tsv", model=MODELS),
        moments=expand("results/summaries/{model}/moments.npz", model=MODELS),
        histograms=expand(
            "results/summaries/{model}/histograms.npz", model=PAIRED_MODELS
        ),
        variant_layers=expand(
            "results/summaries/{model}/sensitivity/layers.tsv", model=MODELS
        ),
        variant_moments=expand(
            "results/summaries/{model}/sensitivity/moments.npz", model=MODELS
        ),
        variant_histograms=expand(
            "results/summaries/{model}/sensitivity/histograms.npz",
            model=PAIRED_MODELS,
        ),
        models="results/tables/models.tsv",
        sheet=SHEET_PATH,
    output:
        "results/analysis/sensitivity.tsv",
    log:
        "logs/analysis/sensitivity_analysis.log",
    benchmark:
        "benchmarks/sensitivity_analysis.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        settings=SETTINGS.as_dict(),
        bins=config["analysis"]["bins"],
        statistics=config["statistics"],
    script:
        "../workflow_scripts/sensitivity_analysis.py"


rule table_sensitivity:
    input:
        "results/analysis/sensitivity.tsv",
    output:
        tsv="results/tables/sensitivity.tsv",
        tex="results/tables/sensitivity.tex",
        html=report(
            "results/tables/sensitivity.html",
            caption="report/table_sensitivity.rst",
            category="Tables",
            subcategory="Beyond the paper",
            labels={
                "item": "Sensitivity",
                "shows": "each finding under each documented choice",
            },
        ),
    log:
        "logs/tables/table_sensitivity.log",
    benchmark:
        "benchmarks/table_sensitivity.tsv"
    conda:
        "../envs/figures.yaml"
    script:
        "../workflow_scripts/table_sensitivity.py"


rule fig_sensitivity:
    input:
        "results/analysis/sensitivity.tsv",
    output:
        pdf="results/figures/fig_sensitivity.pdf",
        png=report(
            "results/figures/fig_sensitivity.png",
            caption="report/fig_sensitivity.rst",
            category="Figures",
            subcategory="Beyond the paper",
            labels={
                "item": "Sensitivity",
                "shows": "which findings move under which choice",
            },
        ),
    log:
        "logs/figures/fig_sensitivity.log",
    benchmark:
        "benchmarks/fig_sensitivity.tsv"
    conda:
        "../envs/figures.yaml"
    script:
        "../workflow_scripts/fig_sensitivity.py"
