# Config and sheet validation, the model lists, wildcard constraints and input functions.
# Everything here runs at parse time, before any job: a bad config or sheet stops the run
# with every problem listed.
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The library: on sys.path for the parse-time checks here, and on PYTHONPATH for every rule script
# (local jobs, conda environments and cluster jobs, which parse this file again). A
# `pip install -e .` of the same checkout gives notebooks the same package.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from filterlens.io.scripting import share_with_rule_scripts

share_with_rule_scripts(os.path.join(workflow.basedir, "src"))

from filterlens.config.validation import CONFIG_SCHEMA, ConfigError, check_config
from filterlens.config.datasets import CIFAR_TEST_FILES, test_images
from filterlens.config.sheet import SheetError, pairs, read_sheet


def workflow_path(path):
    """A relative path from the working directory, else from the workflow's own directory."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    return os.path.join(workflow.basedir, path)


try:
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
            f"pretrained models ({SHEET_PATH}):\n  - " + "\n  - ".join(problems)
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

    if problems := unwritable_folders(["results", "data", "logs"]):
        raise WorkflowError("\n".join(problems))


validate(config, str(CONFIG_SCHEMA))  # fills in the schema's defaults

MODELS = list(SHEET.model_id)
PAIRS = pairs(SHEET)
# Models in a robust/normal pair: the "full" basis, the histograms and KL use these (the
# coefficient range runs over every model of the sheet).
PAIRED_MODELS = [m for m in MODELS if m in set(PAIRS.robust) | set(PAIRS.normal)]


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


def has_local_data(model):
    """Models whose test data ships with the workflow can be evaluated here."""
    return SHEET.loc[model, "dataset"] == "coloured_digits"


wildcard_constraints:
    model=one_of(MODELS),
