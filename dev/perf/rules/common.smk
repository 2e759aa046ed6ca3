# Parse-time Python of the measurement rules. The workflow's plan (its models, batches and
# config after merging) is read from its module's namespace, filterlens.*, never derived again.
from snakemake.exceptions import WorkflowError

from filterlens.io.scripting import share_with_rule_scripts

# dev/perf's own modules (floors, scale_report) for the rule scripts, beside the library.
share_with_rule_scripts(workflow.basedir)

# Models whose extraction job is timed against a copy-floor job on the same checkpoint.
COPY_FLOOR_MODELS = PERF["copy_floor_models"]
if unknown := [m for m in COPY_FLOOR_MODELS if m not in filterlens.CHECKPOINT_MODELS]:
    raise WorkflowError(
        f"config perf.copy_floor_models: {', '.join(unknown)} "
        f"{'is not a model' if len(unknown) == 1 else 'are not models'} of the sheet {filterlens.SHEET_PATH} "
        "extracted from a checkpoint. Fix: name models of the sheet whose source is not the filter database."
    )
COPY_FLOOR_TARGETS = expand(
    "results/benchmarks/copy_floor/{model}.tsv", model=COPY_FLOOR_MODELS
)

# The stores the scale report reads, and the models each of the reading passes' batch jobs
# reads (benchmarks/<pass>/batches/N.tsv); no batches where each model has a job of its own.
SCALE_STORES = expand("results/filters/{model}.zarr", model=filterlens.MODELS)
PASS_BATCHES = {
    rules[0].step: [list(rule.models) for rule in rules if rule.batch is not None]
    for rules in (
        filterlens.SUMMARIZE_RULES,
        filterlens.COEFFICIENT_RANGE_RULES,
        filterlens.COEFFICIENT_HISTOGRAMS_RULES,
    )
}
