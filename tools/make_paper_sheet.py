#!/usr/bin/env python
"""Generate the zoo sheet of the paper (config/models/paper.tsv) from its reference data.

    .venv/bin/python tools/make_paper_sheet.py                      # the paper: L-inf, 71 + 43 models
    .venv/bin/python tools/make_paper_sheet.py --source random      # config/models/scale.tsv
    .venv/bin/python tools/make_paper_sheet.py --source filterdb --out config/models/paper_filterdb.tsv
    .venv/bin/python tools/make_paper_sheet.py --threat-model L2 \\
        --pairings my_l2_pairings.csv --models my_l2_models.csv --out config/models/l2.tsv

Inputs (the authors' format, config/reference/README.md):
  --pairings  CSV with columns Robust, Normal (one row per robust model; a normal model may
              serve several). Robust names: robustbench_<Key>_<dataset>_<threat>_<n>;
              normal names: hso_normal_training_robustbench_<Key>_<dataset>_<n> (trained here
              on RobustBench's constructor of <Key>) or timm_<name>_imagenet1k_<n> (timm's
              pretrained ImageNet weights). Add a model by adding a row.
  --models    CSV with columns Name, Clean Accuracy, Robust Accuracy (may lack a model: its
              accuracies stay empty).

--source chooses where the weights (or filters) come from: checkpoints (default; RobustBench,
train_cifar, timm), filterdb (the authors' published filter database; source_key = the
database's model name, the pairings' name) or random (the real architectures with seeded
random weights, rule random_init; accuracies left empty: scale runs).

Every RobustBench key is checked against robustbench.model_zoo.model_dicts[dataset][threat].
Rows: per dataset (cifar10, cifar100, imagenet), the robust models sorted by key, then their
normal counterparts sorted by id. Ids: rb_<dataset>_<Key>, normal_<dataset>_<Key>, timm_<name>.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

DATASETS = ["cifar10", "cifar100", "imagenet"]
THREAT_MODELS = ["Linf", "L2", "corruptions"]
COLUMNS = ["model_id", "dataset", "architecture", "arch_kwargs", "robust", "source", "source_key",
           "counterpart", "clean_acc", "robust_acc"]
# timm weights the paper used: timm's defaults of early 2022 (timm 0.5), whose ImageNet top-1
# equals the reference clean accuracies (69.74, 80.37, 81.45). timm 1.0 defaults resnet18 to
# other weights (a1_in1k), so the tag is pinned.
TIMM_PRETRAINED = {
    "resnet18": "resnet18.tv_in1k",
    "resnet50": "resnet50.a1_in1k",
    "wide_resnet50_2": "wide_resnet50_2.racm_in1k",
}

ROBUST_NAME = re.compile(r"^robustbench_(?P<key>.+)_(?P<dataset>cifar100|cifar10|imagenet)_(?P<threat>[a-z0-9]+)_\d+$")
NORMAL_RB_NAME = re.compile(r"^hso_normal_training_robustbench_(?P<key>.+)_(?P<dataset>cifar100|cifar10|imagenet)_\d+$")
NORMAL_TIMM_NAME = re.compile(r"^timm_(?P<name>.+)_imagenet(?:1k)?_\d+$")


class SheetToolError(ValueError):
    pass


def _accuracies(models_csv: Path) -> dict[str, tuple[str, str]]:
    with open(models_csv, newline="") as handle:
        return {row["Name"]: (row["Clean Accuracy"].strip(), row["Robust Accuracy"].strip())
                for row in csv.DictReader(handle)}


def _number(text: str) -> str:
    return "" if text == "" else repr(float(text)).removesuffix(".0") if float(text).is_integer() else str(float(text))


def _rb_kwargs(dataset: str, key: str, threat_model: str) -> str:
    return json.dumps({"dataset": dataset, "key": key, "threat_model": threat_model})


def make_rows(pairings_csv: Path, models_csv: Path, threat_model: str = "Linf") -> list[dict[str, str]]:
    """The sheet's rows (strings) for ``pairings_csv``; raises SheetToolError listing every problem."""
    from filterlens.models.robustbench_zoo import zoo

    if threat_model not in THREAT_MODELS:
        raise SheetToolError(f"unknown threat model {threat_model!r}; allowed: {THREAT_MODELS}")
    accuracies = _accuracies(models_csv)
    problems: list[str] = []
    robust_rows: dict[str, dict[str, str]] = {}
    normal_rows: dict[str, dict[str, str]] = {}
    with open(pairings_csv, newline="") as handle:
        pairings = list(csv.DictReader(handle))
    for line, pair in enumerate(pairings, start=2):
        robust_name, normal_name = pair["Robust"].strip(), pair["Normal"].strip()
        match = ROBUST_NAME.match(robust_name)
        if not match or match["threat"] != threat_model.lower():
            problems.append(f"{pairings_csv}, line {line}: robust name {robust_name!r} is not "
                            f"robustbench_<Key>_<dataset>_{threat_model.lower()}_<n>")
            continue
        key, dataset = match["key"], match["dataset"]
        if key not in zoo(dataset, threat_model):
            problems.append(f"{pairings_csv}, line {line}: RobustBench has no {dataset}/{threat_model} model {key!r}")
            continue
        if timm_match := NORMAL_TIMM_NAME.match(normal_name):
            name = timm_match["name"]
            normal = {"model_id": f"timm_{name}", "dataset": "imagenet", "architecture": "timm",
                      "arch_kwargs": json.dumps({"name": name}), "source": "timm",
                      "source_key": TIMM_PRETRAINED.get(name, name)}
        elif rb_match := NORMAL_RB_NAME.match(normal_name):
            normal_key = rb_match["key"]
            if normal_key not in zoo(rb_match["dataset"], threat_model):
                problems.append(f"{pairings_csv}, line {line}: RobustBench has no {rb_match['dataset']}/"
                                f"{threat_model} model {normal_key!r} (the normal model's architecture)")
                continue
            normal = {"model_id": f"normal_{rb_match['dataset']}_{normal_key}", "dataset": rb_match["dataset"],
                      "architecture": "robustbench",
                      "arch_kwargs": _rb_kwargs(rb_match["dataset"], normal_key, threat_model),
                      "source": "train_cifar", "source_key": normal_key}
        else:
            problems.append(f"{pairings_csv}, line {line}: normal name {normal_name!r} is neither "
                            "hso_normal_training_robustbench_<Key>_<dataset>_<n> nor timm_<name>_imagenet1k_<n>")
            continue
        if normal["dataset"] != dataset:
            problems.append(f"{pairings_csv}, line {line}: {normal_name} ({normal['dataset']}) cannot be the "
                            f"counterpart of {robust_name} ({dataset})")
            continue
        clean, robust = accuracies.get(normal_name, ("", ""))
        normal.update(robust="false", counterpart="", clean_acc=_number(clean), robust_acc=_number(robust))
        if normal_rows.setdefault(normal["model_id"], normal) != normal:
            problems.append(f"{pairings_csv}, line {line}: {normal_name} maps to id {normal['model_id']} "
                            "that another normal model has")
        model_id = f"rb_{dataset}_{key}"
        if model_id in robust_rows:
            problems.append(f"{pairings_csv}, line {line}: {robust_name} is paired twice")
            continue
        clean, robust = accuracies.get(robust_name, ("", ""))
        robust_rows[model_id] = {
            "model_id": model_id, "dataset": dataset, "architecture": "robustbench",
            "arch_kwargs": _rb_kwargs(dataset, key, threat_model), "robust": "true", "source": "robustbench",
            "source_key": key, "counterpart": normal["model_id"], "clean_acc": _number(clean),
            "robust_acc": _number(robust)}
    if problems:
        raise SheetToolError(f"{len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    rows = []
    for dataset in DATASETS:
        rows += sorted((r for r in robust_rows.values() if r["dataset"] == dataset), key=lambda r: r["model_id"])
        rows += sorted((r for r in normal_rows.values() if r["dataset"] == dataset), key=lambda r: r["model_id"])
    return rows


SOURCES = ["checkpoints", "filterdb", "random"]
SOURCE_HEADERS = {
    "checkpoints": (
        "# Robust models: RobustBench weights; normal CIFAR models: the RobustBench constructor trained\n"
        "# here (train_cifar); normal ImageNet models: timm's pretrained weights (source_key = timm tag).\n"),
    "filterdb": ("# Every model's filters come from the authors' filter database (CNN-Filter-DB-Robust, Zenodo\n"
                 "# doi 10.5281/zenodo.6414075; rules/filterdb.smk); source_key = the database's model name.\n"),
    "random": ("# Scale run: the paper's architectures with seeded random weights (rule random_init); no\n"
               "# accuracies. source_key: the model's name at its real source, for reference.\n"),
}
DEFAULT_OUT = {"checkpoints": "paper.tsv", "filterdb": "paper_filterdb.tsv", "random": "scale.tsv"}


def with_source(rows: list[dict[str, str]], pairings_csv: Path, source: str) -> list[dict[str, str]]:
    """The rows with their weights from ``source`` instead of the checkpoints."""
    if source == "checkpoints":
        return rows
    from filterlens.extract.filterdb import sheet_id

    with open(pairings_csv, newline="") as handle:
        names = {sheet_id(name): name for pair in csv.DictReader(handle)
                 for name in (pair["Robust"].strip(), pair["Normal"].strip())}
    out = []
    for row in rows:
        row = dict(row, source=source)
        if source == "filterdb":
            row["source_key"] = names[row["model_id"]]
        else:
            row.update(clean_acc="", robust_acc="")
        out.append(row)
    return out


def render(rows: list[dict[str, str]], command: str, source: str = "checkpoints") -> str:
    header = (f"# Generated by {command}; do not edit by hand (edit the inputs and run it again).\n"
              + SOURCE_HEADERS[source])
    lines = ["\t".join(COLUMNS)] + ["\t".join(row[c] for c in COLUMNS) for row in rows]
    return header + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threat-model", default="Linf", choices=THREAT_MODELS)
    parser.add_argument("--pairings", type=Path, default=REPO / "config" / "reference" / "paper_pairings.csv")
    parser.add_argument("--models", type=Path, default=REPO / "config" / "reference" / "paper_models.csv")
    parser.add_argument("--source", default="checkpoints", choices=SOURCES,
                        help="where the weights come from (default: checkpoints)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: config/models/paper.tsv, paper_filterdb.tsv or scale.tsv by --source")
    args = parser.parse_args(argv)
    out = args.out or REPO / "config" / "models" / DEFAULT_OUT[args.source]
    try:
        rows = with_source(make_rows(args.pairings, args.models, args.threat_model), args.pairings, args.source)
    except SheetToolError as error:
        print(f"make_paper_sheet: {error}", file=sys.stderr)
        return 1
    command = "tools/make_paper_sheet.py"
    if args.threat_model != "Linf":
        command += f" --threat-model {args.threat_model}"
    if args.source != "checkpoints":
        command += f" --source {args.source}"
    text = render(rows, command, args.source)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    robust = sum(r["robust"] == "true" for r in rows)
    print(f"wrote {out}: {robust} robust and {len(rows) - robust} normal models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
