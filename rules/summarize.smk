# Per-model passes over a filter store (Dask tasks over its segments, memory bounded by
# resources.mem_mb), and the merges that only read their small outputs. Each pass takes one
# thread: it has a job per model, and jobs side by side overlap each other's start-up (imports
# run on one core); Dask's tasks take what a job gets (--set-threads RULE=N).
#
# With config analysis.models_per_job above 1, the three passes run as batch rules instead
# (summarize_batch_N, ...; one rule per batch, since a rule's outputs cannot depend on a
# wildcard's value): a job reads its batch's stores one after another, with the same scripts,
# which take their models from params.models (filterlens.reduce.jobs). Each pass is written
# once, as a loop over its rules (SUMMARIZE_RULES, ... in rules/common.smk, from pass_rules):
# the per-model rule (its wildcard takes no model when the models run in batches; it stays
# defined for profiles that name it), then a rule per batch.
# Snakemake's job grouping is no substitute: a local run ignores it, and a group job still
# starts a process per model (docs/design.md).


for pass_rule in SUMMARIZE_RULES:

    rule:
        name:
            pass_rule.name
        input:
            store=pass_rule.files("results/filters/{model}.zarr"),
        output:
            **variant_files(
                pass_rule,
                variant_layers="results/summaries/{model}/sensitivity/layers.tsv",
                variant_moments="results/summaries/{model}/sensitivity/moments.npz",
            ),
            layers=pass_rule.files("results/summaries/{model}/layers.tsv"),
            moments=pass_rule.files("results/summaries/{model}/moments.npz"),
        log:
            pass_rule.log,
        benchmark:
            pass_rule.benchmark
        wildcard_constraints:
            **pass_constraints(pass_rule),
        conda:
            "../envs/analysis.yaml"
        threads: PASS_THREADS
        resources:
            mem_mb=PASS_MEM_MB,
            runtime=pass_rule.runtime,
        params:
            choices=choices_of(*PASS_CHOICES["summarize"]),
            sensitivity=SENSITIVITY,
            models=pass_rule.of_models(list),
            datasets=pass_rule.of_models(sheet_datasets),
        script:
            "../workflow_scripts/summarize_model.py"


rule pca_bases:
    input:
        unpack(
            needs_a_pair(
                {
                    "layers": expand(
                        "results/summaries/{model}/layers.tsv", model=MODELS
                    ),
                    "moments": expand(
                        "results/summaries/{model}/moments.npz", model=MODELS
                    ),
                    "sheet": SHEET_PATH,
                }
            )
        ),
    output:
        table="results/analysis/bases.tsv",
        full="results/analysis/basis_full.npz",
    log:
        "logs/analysis/pca_bases.log",
    benchmark:
        "benchmarks/pca_bases.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/pca_bases.py"


for pass_rule in COEFFICIENT_RANGE_RULES:

    rule:
        name:
            pass_rule.name
        input:
            **variant_inputs(variant_bases="results/analysis/sensitivity/bases.npz"),
            store=pass_rule.files("results/filters/{model}.zarr"),
            basis="results/analysis/basis_full.npz",
        output:
            **variant_files(
                pass_rule,
                variant_range="results/summaries/{model}/sensitivity/coefficient_range.tsv",
            ),
            range=pass_rule.files("results/summaries/{model}/coefficient_range.tsv"),
        log:
            pass_rule.log,
        benchmark:
            pass_rule.benchmark
        wildcard_constraints:
            **pass_constraints(pass_rule),
        conda:
            "../envs/analysis.yaml"
        threads: PASS_THREADS
        resources:
            mem_mb=PASS_MEM_MB,
            runtime=pass_rule.runtime,
        params:
            choices=choices_of(*PASS_CHOICES["coefficient_range"]),
            sensitivity=SENSITIVITY,
            models=pass_rule.of_models(list),
            datasets=pass_rule.of_models(sheet_datasets),
        script:
            "../workflow_scripts/coefficient_range.py"


# The histogram range runs over every model of the sheet and all its scaled filters, sparse
# ones included (the authors' range is over their whole database); the histograms and KL use
# the paired models' non-sparse filters.
rule global_coefficient_range:
    input:
        ranges=expand("results/summaries/{model}/coefficient_range.tsv", model=MODELS),
        sheet=SHEET_PATH,
    output:
        "results/analysis/coefficient_range.tsv",
    log:
        "logs/analysis/coefficient_range.log",
    benchmark:
        "benchmarks/global_coefficient_range.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        choices=choices_of("histogram_range", "pca_sign"),
    script:
        "../workflow_scripts/global_coefficient_range.py"


for pass_rule in COEFFICIENT_HISTOGRAMS_RULES:

    rule:
        name:
            pass_rule.name
        input:
            **variant_inputs(
                variant_bases="results/analysis/sensitivity/bases.npz",
                variant_range="results/analysis/sensitivity/coefficient_range.tsv",
            ),
            store=pass_rule.files("results/filters/{model}.zarr"),
            basis="results/analysis/basis_full.npz",
            range="results/analysis/coefficient_range.tsv",
        output:
            **variant_files(
                pass_rule,
                variant_histograms="results/summaries/{model}/sensitivity/histograms.npz",
            ),
            histograms=pass_rule.files("results/summaries/{model}/histograms.npz"),
        log:
            pass_rule.log,
        benchmark:
            pass_rule.benchmark
        wildcard_constraints:
            **pass_constraints(pass_rule),
        conda:
            "../envs/analysis.yaml"
        threads: PASS_THREADS
        resources:
            mem_mb=PASS_MEM_MB,
            runtime=pass_rule.runtime,
        params:
            bins=config["analysis"]["bins"],
            choices=choices_of(*PASS_CHOICES["coefficient_histograms"]),
            sensitivity=SENSITIVITY,
            models=pass_rule.of_models(list),
            datasets=pass_rule.of_models(sheet_datasets),
        script:
            "../workflow_scripts/coefficient_histograms.py"


rule kl_divergence:
    input:
        histograms=expand(
            "results/summaries/{model}/histograms.npz", model=PAIRED_MODELS
        ),
        layers=expand("results/summaries/{model}/layers.tsv", model=PAIRED_MODELS),
        basis="results/analysis/basis_full.npz",
        sheet=SHEET_PATH,
    output:
        by_dataset="results/analysis/kl_by_dataset.tsv",
        by_depth="results/analysis/kl_by_depth.tsv",
        components="results/analysis/kl_components.tsv",
    log:
        "logs/analysis/kl_divergence.log",
    benchmark:
        "benchmarks/kl_divergence.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        choices=choices_of("empty_bins", "kl_pooling"),
    script:
        "../workflow_scripts/kl_divergence.py"


rule layer_quality:
    input:
        layers=expand("results/summaries/{model}/layers.tsv", model=MODELS),
        sheet=SHEET_PATH,
    output:
        layers="results/analysis/layers.tsv",
        by_depth="results/analysis/quality_by_depth.tsv",
        sparse_shares="results/analysis/sparse_shares.tsv",
    log:
        "logs/analysis/layer_quality.log",
    benchmark:
        "benchmarks/layer_quality.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        choices=choices_of("entropy_weights"),
    script:
        "../workflow_scripts/layer_quality.py"
