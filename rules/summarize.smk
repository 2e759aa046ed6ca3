# Per-model passes over a filter store (Dask tasks over its segments, memory bounded by
# resources.mem_mb), and the merges that only read their small outputs. Each pass takes one
# thread: it has a job per model, and jobs side by side overlap each other's start-up (imports
# run on one core); Dask's tasks take what a job gets (--set-threads RULE=N).
#
# With config analysis.models_per_job above 1, the three passes run as batch rules instead
# (summarize_batch_N, ...; one rule per batch, since a rule's outputs cannot depend on a
# wildcard's value): a job reads its batch's stores one after another, with the same scripts,
# which take their models from params.models (filterlens.reduce.jobs).


rule summarize_model:
    input:
        store="results/filters/{model}.zarr",
    output:
        layers="results/summaries/{model}/layers.tsv",
        moments="results/summaries/{model}/moments.npz",
    log:
        "logs/summarize/{model}.log",
    benchmark:
        "benchmarks/summarize/{model}.tsv"
    wildcard_constraints:
        model=one_of(UNBATCHED_MODELS),
    conda:
        "../envs/analysis.yaml"
    threads: PASS_THREADS
    resources:
        mem_mb=PASS_MEM_MB,
        runtime=PASS_RUNTIME_PER_MODEL,
    params:
        depth_definition=config["analysis"]["depth_definition"],
        models=lambda wildcards: [wildcards.model],
        datasets=lambda wildcards: sheet_datasets([wildcards.model]),
    script:
        "../workflow_scripts/summarize_model.py"


for batch, batch_models in enumerate(SUMMARY_BATCHES):

    rule:
        name:
            f"summarize_batch_{batch}"
        input:
            store=expand("results/filters/{model}.zarr", model=batch_models),
        output:
            layers=expand("results/summaries/{model}/layers.tsv", model=batch_models),
            moments=expand("results/summaries/{model}/moments.npz", model=batch_models),
        log:
            f"logs/summarize/batches/{batch}.log",
        benchmark:
            f"benchmarks/summarize/batches/{batch}.tsv"
        conda:
            "../envs/analysis.yaml"
        threads: PASS_THREADS
        resources:
            mem_mb=PASS_MEM_MB,
            runtime=PASS_RUNTIME_PER_MODEL * len(batch_models),
        params:
            depth_definition=config["analysis"]["depth_definition"],
            models=batch_models,
            datasets=sheet_datasets(batch_models),
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


rule coefficient_range:
    input:
        store="results/filters/{model}.zarr",
        basis="results/analysis/basis_full.npz",
    output:
        range="results/summaries/{model}/coefficient_range.tsv",
    log:
        "logs/coefficient_range/{model}.log",
    benchmark:
        "benchmarks/coefficient_range/{model}.tsv"
    wildcard_constraints:
        model=one_of(UNBATCHED_MODELS),
    conda:
        "../envs/analysis.yaml"
    threads: PASS_THREADS
    resources:
        mem_mb=PASS_MEM_MB,
        runtime=PASS_RUNTIME_PER_MODEL,
    params:
        models=lambda wildcards: [wildcards.model],
        datasets=lambda wildcards: sheet_datasets([wildcards.model]),
    script:
        "../workflow_scripts/coefficient_range.py"


for batch, batch_models in enumerate(SUMMARY_BATCHES):

    rule:
        name:
            f"coefficient_range_batch_{batch}"
        input:
            store=expand("results/filters/{model}.zarr", model=batch_models),
            basis="results/analysis/basis_full.npz",
        output:
            range=expand(
                "results/summaries/{model}/coefficient_range.tsv", model=batch_models
            ),
        log:
            f"logs/coefficient_range/batches/{batch}.log",
        benchmark:
            f"benchmarks/coefficient_range/batches/{batch}.tsv"
        conda:
            "../envs/analysis.yaml"
        threads: PASS_THREADS
        resources:
            mem_mb=PASS_MEM_MB,
            runtime=PASS_RUNTIME_PER_MODEL * len(batch_models),
        params:
            models=batch_models,
            datasets=sheet_datasets(batch_models),
        script:
            "../workflow_scripts/coefficient_range.py"


# The histogram range runs over every model of the sheet and all its scaled filters, sparse
# ones included (the authors' range is over their whole database); the histograms and KL use
# the paired models' non-sparse filters.
rule global_coefficient_range:
    input:
        expand("results/summaries/{model}/coefficient_range.tsv", model=MODELS),
    output:
        "results/analysis/coefficient_range.tsv",
    log:
        "logs/analysis/coefficient_range.log",
    benchmark:
        "benchmarks/global_coefficient_range.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/global_coefficient_range.py"


rule coefficient_histograms:
    input:
        store="results/filters/{model}.zarr",
        basis="results/analysis/basis_full.npz",
        range="results/analysis/coefficient_range.tsv",
    output:
        histograms="results/summaries/{model}/histograms.npz",
    log:
        "logs/coefficient_histograms/{model}.log",
    benchmark:
        "benchmarks/coefficient_histograms/{model}.tsv"
    wildcard_constraints:
        model=one_of([m for m in PAIRED_MODELS if m in UNBATCHED_MODELS]),
    conda:
        "../envs/analysis.yaml"
    threads: PASS_THREADS
    resources:
        mem_mb=PASS_MEM_MB,
        runtime=PASS_RUNTIME_PER_MODEL,
    params:
        bins=config["analysis"]["bins"],
        models=lambda wildcards: [wildcards.model],
        datasets=lambda wildcards: sheet_datasets([wildcards.model]),
    script:
        "../workflow_scripts/coefficient_histograms.py"


for batch, batch_models in enumerate(HISTOGRAM_BATCHES):

    rule:
        name:
            f"coefficient_histograms_batch_{batch}"
        input:
            store=expand("results/filters/{model}.zarr", model=batch_models),
            basis="results/analysis/basis_full.npz",
            range="results/analysis/coefficient_range.tsv",
        output:
            histograms=expand(
                "results/summaries/{model}/histograms.npz", model=batch_models
            ),
        log:
            f"logs/coefficient_histograms/batches/{batch}.log",
        benchmark:
            f"benchmarks/coefficient_histograms/batches/{batch}.tsv"
        conda:
            "../envs/analysis.yaml"
        threads: PASS_THREADS
        resources:
            mem_mb=PASS_MEM_MB,
            runtime=PASS_RUNTIME_PER_MODEL * len(batch_models),
        params:
            bins=config["analysis"]["bins"],
            models=batch_models,
            datasets=sheet_datasets(batch_models),
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
    script:
        "../workflow_scripts/layer_quality.py"
