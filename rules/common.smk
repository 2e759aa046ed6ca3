# All parse-time Python of the workflow: config and sheet validation, the model lists, wildcard
# constraints, input functions and the targets. The rule files (rules/*.smk) hold rules only
# and use what this file defines, so it is included first and their order does not matter.
# Everything here runs at parse time, before any job: a bad config or sheet stops the run
# with every problem listed.
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

# The workflow's folder, found from this file: workflow.basedir is the folder of the Snakefile
# that snakemake was given, another one where a workflow imports this one as a module
# (dev/perf/Snakefile).
WORKFLOW_DIR = os.path.dirname(
    workflow.current_basedir.get_path_or_uri(secret_free=True)
)

# The library: on sys.path for the parse-time checks here, and on PYTHONPATH for every rule script
# (local jobs, conda environments and cluster jobs, which parse this file again). The clone's
# .venv imports the same src/ (tools/ensure-venv), so notebooks get the same package.
sys.path.insert(0, os.path.join(WORKFLOW_DIR, "src"))
from filterlens.io.scripting import share_with_rule_scripts

share_with_rule_scripts(os.path.join(WORKFLOW_DIR, "src"))

from filterlens.config.validation import (
    CONFIG_SCHEMA,
    ConfigError,
    check_config,
    expand_dotted_keys,
    retype_command_line,
)
from filterlens.config.datasets import CIFAR_TEST_FILES, LOCAL_TEST_DATA, test_images
from filterlens.config.sheet import SheetError, pairs, read_sheet
from filterlens.extract.filterdb import config_problems as filterdb_problems
from filterlens.extract.filterdb import database_files, download_problems, uses_filterdb
from filterlens.extract.jobs import EXTRACT_MEM_MB, EXTRACT_RUNTIME
from filterlens.report.figure_data import (
    FigureConfigError,
    activation_test_images,
    resolve_pair,
)
from filterlens.method.choices import BY_NAME, COMPARED_CHOICES, PASS_CHOICES, Settings
from filterlens.method.measures import FILTER, QUALITY
from filterlens.method.measures import names as measure_names
from filterlens.models.local_sources import own_files
from filterlens.reduce.jobs import (
    PASS_MEM_MB,
    PASS_RUNTIME_PER_MODEL,
    PASS_THREADS,
    pass_rules,
)
from filterlens.report.provenance import run_facts

# --- Config and sheet: checked before anything else -----------------------------------------


def workflow_path(path):
    """A relative path from the working directory, else from the workflow's own directory where it
    is there, else in the working directory (where a new lock file is recorded): the sheet, the lock
    file and the workflow's reference files (docs/runs.md)."""
    in_workflow = os.path.join(WORKFLOW_DIR, path)
    if os.path.isabs(path) or os.path.exists(path) or not os.path.exists(in_workflow):
        return path
    return in_workflow


try:
    # A dotted key of a config file (figures.entropy: scaled) into its section, and the values of a
    # section given on the command line (--config 'figures={entropy: scaled}') typed by the schema.
    expand_dotted_keys(config, CONFIG_SCHEMA)
    retype_command_line(config, dict(workflow.config_settings.config), CONFIG_SCHEMA)
    check_config(config, CONFIG_SCHEMA)
    SHEET_PATH = workflow_path(config["sheet"])
    SHEET = read_sheet(SHEET_PATH)
except (ConfigError, SheetError) as error:
    raise WorkflowError(str(error)) from None


def check_sheet_models():
    """Sources that would bypass the download checks refused (filterlens.models.pretrained_sources),
    then every row built on the meta device (filterlens.models.sheet_checks), once per sheet and code.
    """
    from filterlens.models.pretrained_sources import (
        sheet_problems as pretrained_problems,
    )
    from filterlens.models.sheet_checks import check_sheet_builds

    if problems := pretrained_problems(SHEET.to_dict("records")):
        raise WorkflowError(
            f"the model sheet {SHEET_PATH}: sources and files:\n  - "
            + "\n  - ".join(problems)
        )
    cache = os.path.join(".snakemake", "filterlens", "sheet-checks")
    try:
        problems = check_sheet_builds(SHEET, SHEET_PATH, cache)
    # torch, timm or RobustBench missing where snakemake runs
    except ImportError as error:
        print(
            f"filterlens: the sheet's architectures are not checked before the jobs: {error}",
            file=sys.stderr,
        )
        return
    if problems:
        raise WorkflowError(
            f"the model sheet {SHEET_PATH} has {len(problems)} problem(s):\n  - "
            + "\n  - ".join(problems)
        )


check_sheet_models()


onstart:
    # Not on dry runs: a finished run on read-only storage can still be inspected.
    from filterlens.io.atomic import unwritable_folders
    from filterlens.report.staging import offline_stop

    if problems := unwritable_folders(["results", "data", "logs"]):
        raise WorkflowError("\n".join(problems))
    # the models whose checkpoints this run acquires or trains
    acquired = [
        job.wildcards.model
        for job in workflow.dag.needrun_jobs()
        if job.rule.name in ("acquire_robustbench", "acquire_timm", "train_cifar")
    ]
    if reason := offline_stop(config, SHEET, workflow_path, models=acquired):
        raise WorkflowError(reason)


validate(config, str(CONFIG_SCHEMA))  # fills in the schema's defaults

# What this run must download or train (filterlens.report.staging, docs/runs.md), said in a few
# lines by the process that plans the run (a dry run too: it plans the paper's zoo anywhere; at
# parse time, where Snakemake does not yet say whether the run is dry). A real run that would
# download from servers this machine does not reach stops in onstart (above), before any job.
if workflow.is_main_process:
    from filterlens.report.staging import planning_lines

    for _line in planning_lines(config, SHEET):
        logger.warning(f"filterlens: {_line}")

# A dry run of a large zoo lists the jobs per rule, not each job: the paper's 711 jobs would print
# 780 KB. -n --verbose lists each job (docs/runs.md).
LISTED_MODELS = 20
_output = workflow.logger_manager.settings
if (
    workflow.is_main_process
    and _output.dryrun
    and not _output.verbose
    and len(SHEET) > LISTED_MODELS
):
    from snakemake_interface_logger_plugins.common import LogEvent

    logger.addFilter(lambda record: getattr(record, "event", None) != LogEvent.JOB_INFO)
    logger.warning(
        f"filterlens: this dry run of {len(SHEET)} models counts the jobs per rule below; "
        "-n --verbose lists each job."
    )


# --- The zoo: model lists, wildcard constraints, sheet lookups -------------------------------

MODELS = list(SHEET.model_id)
PAIRS = pairs(SHEET)
# Models in a robust/normal pair: the "full" basis, the histograms and KL use these (the
# coefficient range runs over every model of the sheet).
PAIRED_MODELS = [m for m in MODELS if m in set(PAIRS.robust) | set(PAIRS.normal)]
# A sheet without a pair (candidates to place against a reference bundle, docs/bundle.md) has
# no basis, KL, statistics or figures of its own: the rules that compare robust with normal
# models stop with this reason where a requested target needs them, and the default target
# leaves them out.
NO_PAIR = (
    ""
    if len(PAIRS)
    else (
        f"the sheet {SHEET_PATH} has no robust/normal pair (a row with robust true naming its "
        "counterpart)"
    )
)


def needs_a_pair(inputs):
    """A rule's named inputs (for unpack) on a sheet with a robust/normal pair; on one without,
    an input function that stops the run with NO_PAIR where a requested target needs the rule.
    """

    def inputs_or_why(wildcards):
        if NO_PAIR:
            raise WorkflowError(
                f"{NO_PAIR}, and a requested target compares robust with normal models. "
                "Fix: add a robust model and its normal counterpart to the sheet, or ask for "
                "targets without that comparison (the default target makes them)"
            )
        return inputs(wildcards) if callable(inputs) else inputs

    return inputs_or_why


def models_where(**criteria):
    """Model ids whose sheet columns equal the given values."""
    selected = SHEET
    for column, value in criteria.items():
        selected = selected[selected[column] == value]
    return list(selected.model_id)


def one_of(ids):
    """A wildcard regex matching exactly these ids (and nothing, if there are none)."""
    return "|".join(re.escape(i) for i in ids) or "(?!)"


def sheet_row(wildcards):
    """The model's sheet row as plain types, for a rule's params."""
    return SHEET.loc[wildcards.model].to_dict()


def sheet_dataset(wildcards):
    """The model's dataset in the sheet (its filter store must say the same)."""
    return SHEET.loc[wildcards.model, "dataset"]


wildcard_constraints:
    model=one_of(MODELS),


# --- The passes' jobs: a model each, or several (config analysis.models_per_job) -----------
# (rules/summarize.smk; filterlens.reduce.jobs)

MODELS_PER_JOB = config["analysis"]["models_per_job"]
# Each pass's rules: the per-model rule, then one per batch of models in sheet order.
SUMMARIZE_RULES = pass_rules("summarize", "summarize_model", MODELS, MODELS_PER_JOB)
COEFFICIENT_RANGE_RULES = pass_rules(
    "coefficient_range", "coefficient_range", MODELS, MODELS_PER_JOB
)
COEFFICIENT_HISTOGRAMS_RULES = pass_rules(
    "coefficient_histograms", "coefficient_histograms", PAIRED_MODELS, MODELS_PER_JOB
)


# --- The documented choices: the configured ones and, with analysis.sensitivity, each changed
# alone from the same passes (rules/summarize.smk, rules/sensitivity.smk; filterlens.method.choices)

SETTINGS = Settings.from_config(config)
SENSITIVITY = config["analysis"]["sensitivity"]


def choices_of(*names):
    """The configured values of the choices ``names`` (a rule's params: a rule reruns when one of
    the choices it reads changes, not another)."""
    return {name: getattr(SETTINGS, name) for name in names}


def changed_choices(*names):
    """The choices ``names`` whose configured value is not the default, as "key: value"."""
    return [
        f"{BY_NAME[name].key}: {getattr(SETTINGS, name)}"
        for name in names
        if getattr(SETTINGS, name) != BY_NAME[name].default
    ]


def variant_files(pass_rule, **patterns):
    """A pass rule's named files of the variants, beside its own: none without the sensitivity analysis."""
    return (
        {name: pass_rule.files(pattern) for name, pattern in patterns.items()}
        if SENSITIVITY
        else {}
    )


def variant_inputs(**paths):
    """Named inputs of the variants' merges: none without the sensitivity analysis."""
    return paths if SENSITIVITY else {}


def pass_constraints(pass_rule):
    """The per-model rule's wildcard takes the pass's models (none when they run in batches); a
    batch rule has no wildcard."""
    return {"model": one_of(pass_rule.models)} if pass_rule.batch is None else {}


def sheet_datasets(models):
    """The models' datasets in the sheet, in order (a pass job's params)."""
    return [SHEET.loc[m, "dataset"] for m in models]


# --- Where the filters come from: a checkpoint, or the authors' filter database -------------
# (rules/filterdb.smk)

FILTERDB = config["filterdb"]
FILTERDB_MODELS = uses_filterdb(SHEET, FILTERDB["models"])
# Models with a checkpoint, data/models/{model}.pt (rules that need weights, not filters).
CHECKPOINT_MODELS = [m for m in MODELS if m not in FILTERDB_MODELS]
if _problems := filterdb_problems(SHEET, FILTERDB["models"]) + download_problems(
    FILTERDB, bool(FILTERDB_MODELS)
):
    raise WorkflowError(
        f"filter database ({SHEET_PATH}):\n  - " + "\n  - ".join(_problems)
    )
# Storage objects only where a model needs them: the zenodo plugin wants its token at once.
FILTERDB_INPUTS = {
    role: storage(location) if is_query and FILTERDB_MODELS else location
    for role, (location, is_query) in database_files(FILTERDB).items()
}


# --- Pretrained models (rules/checkpoints.smk) ---------------------------------------------

# The lock file found as the sheet is (workflow_path): a run in a directory of its own verifies
# against, and records into, the checkout's lock (docs/runs.md).
ACQUISITION = {
    **config["acquisition"],
    "lock_file": config["acquisition"]["lock_file"]
    and workflow_path(config["acquisition"]["lock_file"]),
}


# --- Your own models (rules/checkpoints.smk) -----------------------------------------------

# Every model's own files by role: the weights of a source local row, the constructor file of an
# architecture python row (inputs of acquire_local; the provenance record holds their sha256).
OWN_FILES = {m: own_files(SHEET.loc[m].to_dict()) for m in MODELS}
OWN_FILES = {m: files for m, files in OWN_FILES.items() if files}


# --- Test data at hand: the models whose accuracy and perturbations are measured -------------

# The mini zoo's dataset (rules/data.smk), whose test split ships with the workflow.
MINIZOO_DATASET = "coloured_digits"
MINIZOO_DATA = LOCAL_TEST_DATA[MINIZOO_DATASET]
# Models of the mini zoo's dataset; all have a checkpoint (the filter database holds none).
LOCAL_DATA_MODELS = models_where(dataset=MINIZOO_DATASET)
# torchvision's CIFAR folders: what train_cifar trains on, and where Fig. 6 and Table 1 find
# the CIFAR test sets (checked at parse time; a run without them uses the sheet's values).
CIFAR_DATA_DIR = config["cifar_training"]["data_dir"]
# Normal CIFAR models of a pair whose test set is at hand: their clean accuracy is measured.
CIFAR_EVALUATED = [
    m
    for m in MODELS  # sheet order
    if m in set(PAIRS.normal)
    and SHEET.loc[m, "dataset"] in CIFAR_TEST_FILES
    and test_images(SHEET.loc[m, "dataset"], CIFAR_DATA_DIR)
]
# Models with measured accuracies, results/metrics/{model}.tsv (the model table reads them).
EVALUATED_MODELS = [m for m in MODELS if m in LOCAL_DATA_MODELS or m in CIFAR_EVALUATED]


def cifar_test_images(wildcards):
    """The CIFAR test file of the model's dataset under cifar_training.data_dir."""
    return test_images(SHEET.loc[wildcards.model, "dataset"], CIFAR_DATA_DIR)


# --- Beyond the paper: the measures tested (rules/statistics.smk, docs/method.md §7) --------

# The measures each statistics rule tests, in the registry's order (filterlens.method.measures).
QUALITY_METRICS = measure_names(QUALITY)
FILTER_MEASURES = measure_names(FILTER)
# Exact spectra are costly for wide models: config analysis.spectra can turn them off.
SPECTRA_MODELS = CHECKPOINT_MODELS if config["analysis"]["spectra"] else []
# Perturbation ratios need test images: the models of the mini zoo's dataset, unless config
# analysis.perturbation.enabled turns them off.
PERTURBATION_MODELS = (
    LOCAL_DATA_MODELS if config["analysis"]["perturbation"]["enabled"] else []
)


# --- Figures and tables (rules/figures.smk, rules/tables.smk) -------------------------------

try:  # a sheet without a pair has no Fig. 4-6: figures.pair is not checked against it
    FIGURE_PAIR = (
        resolve_pair(SHEET, config["figures"]["pair"]) if not NO_PAIR else None
    )
except FigureConfigError as error:
    raise WorkflowError(f"{error} (sheet {SHEET_PATH})") from None
FIGURE_ROBUST, FIGURE_NORMAL = FIGURE_PAIR or (None, None)
AUTHORS_VALUES = workflow_path("config/reference/authors_values.tsv")
# The paper's zoo: the comparison table gives differences only where this run's zoo is it.
PAPER_SHEET = workflow_path("config/models/paper.tsv")


@needs_a_pair
def activation_inputs(wildcards):
    """Fig. 6's inputs: the pair's robust checkpoint and its dataset's test images (raises
    why not where this run holds none; the figure is then left out of the targets)."""
    return {
        "model": f"data/models/{FIGURE_ROBUST}.pt",
        "data": activation_test_images(SHEET, FIGURE_ROBUST, CIFAR_DATA_DIR),
    }


@needs_a_pair
def pair_filter_stores(wildcards):
    """Fig. 4-5's inputs: the filter stores of the pair's robust and normal model."""
    return {
        "robust": f"results/filters/{FIGURE_ROBUST}.zarr",
        "normal": f"results/filters/{FIGURE_NORMAL}.zarr",
    }


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
    if not NO_PAIR:
        activation_test_images(SHEET, FIGURE_ROBUST, CIFAR_DATA_DIR)
except FigureConfigError as reason:
    FIGURES.remove("fig6_activations")
    logger.warning(f"Fig. 6 is skipped: {reason}")
TABLES = ["table1_zoo_summary", "table_pairs", "paper_comparison", "findings"]
# Every figure and table of the paper.
PAPER_TARGETS = expand("results/figures/{name}.{ext}", name=FIGURES, ext=["pdf", "png"])
PAPER_TARGETS += expand("results/tables/{name}.{ext}", name=TABLES, ext=["tsv", "tex"])
# Beyond the paper (docs/method.md §7): the statistics, Fig. 8-9 and their table.
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

# The documented choices changed one at a time (rules/sensitivity.smk).
SENSITIVITY_TARGETS = (
    [
        *expand("results/tables/sensitivity.{ext}", ext=["tsv", "tex", "html"]),
        *expand("results/figures/fig_sensitivity.{ext}", ext=["pdf", "png"]),
    ]
    if SENSITIVITY
    else []
)


# --- Provenance (rules/provenance.smk) --------------------------------------------------------

PROVENANCE = run_facts(config, SHEET_PATH, WORKFLOW_DIR)
# Models imported from the filter database have no checkpoint to hash; seeded random ones
# have a temporary one (the seed is in the sheet and config, the store records its sha256).
HASHED_MODELS = [m for m in CHECKPOINT_MODELS if m not in models_where(source="random")]
HASHED_OWN_FILES = {m: OWN_FILES[m] for m in HASHED_MODELS if m in OWN_FILES}


# --- Placing this run's models against a reference bundle (rules/placement.smk) -------------

# A reference run's bundle (docs/bundle.md): every model of the sheet is a candidate.
BUNDLE = config["reference"]["bundle"]
if BUNDLE and not (os.path.isfile(BUNDLE) and os.path.isfile(f"{BUNDLE}.sha256")):
    raise WorkflowError(
        f"config reference.bundle: {BUNDLE} and {BUNDLE}.sha256 must both exist "
        "(relative to the working directory; filterlens export-bundle writes them)"
    )
PLACEMENT_TARGETS = (
    ["results/tables/placement.tsv", "results/tables/placement.html"]
    + expand("results/figures/placement.{ext}", ext=["pdf", "png"])
    if BUNDLE
    else []
)


# --- The default target (Snakefile, rule all) -------------------------------------------------

# What compares robust with normal models: the bases, KL, layer quality, the paper's figures
# and tables and the statistics; a sheet without a pair makes its models' stores, summaries,
# model table, provenance and placement instead, and says once what is left out.
if NO_PAIR:
    COMPARISON_TARGETS = expand("results/summaries/{model}/layers.tsv", model=MODELS)
    logger.warning(
        f"filterlens: {NO_PAIR}: the PCA bases, KL, statistics, Fig. 1-9 and the paper's tables, "
        "which compare robust with normal models, are left out; the default target makes the "
        "models' filter stores, summaries and model table"
        + (", and places them against config reference.bundle" if BUNDLE else "")
    )
else:
    COMPARISON_TARGETS = [
        "results/analysis/bases.tsv",
        "results/analysis/kl_by_dataset.tsv",
        "results/analysis/kl_by_depth.tsv",
        "results/analysis/quality_by_depth.tsv",
        *PAPER_TARGETS,
        *STATISTICS_TARGETS,
        *SENSITIVITY_TARGETS,
    ]
