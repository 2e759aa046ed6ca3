"""Generate the zoo sheet of the paper (config/models/paper.tsv) from its reference data, or the
sheet of a RobustBench leaderboard. Paths are relative to the working directory (the repository's).

  filterlens leaderboard-sheet                      # the paper: L-inf, 71 + 43 models
  filterlens leaderboard-sheet --source random      # config/models/scale.tsv
  filterlens leaderboard-sheet --source filterdb --out config/models/paper_filterdb.tsv
  filterlens leaderboard-sheet --threat-model L2 \\
      --pairings my_l2_pairings.csv --models my_l2_models.csv --out config/models/l2.tsv
  filterlens leaderboard-sheet --leaderboard cifar10:L2   # no pairings file
  filterlens leaderboard-sheet --leaderboard all          # config/models/leaderboards/

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

--leaderboard DATASET:THREAT takes every entry of robustbench.model_zoo.model_dicts[dataset][threat]
and pairs it by the paper's rule: a robust CIFAR model's counterpart is its architecture trained
here (train_cifar; entries of one architecture share one, built on the first of their keys by
name), a robust ImageNet model's is timm's pretrained model of its architecture (left out where
timm has none); the Standard entries are normal models with RobustBench's weights. Entries a
sheet cannot hold (weights served outside RobustBench's model directory, constructors that do not
build on the meta device, where the workflow checks every row) are listed in the sheet's header.
Ids: rb_<dataset>_<Key> (L-inf, as the paper's) or rb_<dataset>_<threat>_<Key>, likewise normal_...,
and timm_<name>. Accuracies stay empty: the package ships no leaderboard results. Run a sheet with
    snakemake --configfile config/leaderboard.yaml --config sheet=config/models/leaderboards/<dataset>_<threat>.tsv

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


# --- Leaderboard sheets: every entry RobustBench lists, paired by architecture ----------------

# timm architectures an ImageNet entry is matched against (torchvision's ResNets, which
# RobustBench's ImageNet ResNets are): same parameter shapes in the same order.
TIMM_CANDIDATES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
                   "wide_resnet101_2"]
IMAGENET_CLASSES = 1000
LEADERBOARD_DIR = Path("config") / "models" / "leaderboards"


def leaderboards() -> list[tuple[str, str]]:
    """Every (dataset, threat model) of robustbench.model_zoo.model_dicts."""
    from filterlens.models.compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts

    return [(dataset.value, threat.name) for dataset, threats in model_dicts.items() for threat in threats]


def _architecture_print(module) -> str:
    """The architecture as text: every leaf module's class and settings, in order (weights and
    attribute names left out, so one architecture written twice prints the same)."""
    return "\n".join(f"{type(m).__name__}({m.extra_repr()})" for m in module.modules() if not list(m.children()))


def _parameter_shapes(module) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(p.shape) for p in module.parameters())


def _built_entry(dataset: str, key: str, threat_model: str):
    """(the entry built on the meta device, None) or (None, why it cannot be in a sheet)."""
    from filterlens.config.datasets import DATASETS as DATASET_SPECS
    from filterlens.models.architectures import build_architecture
    from filterlens.models.pretrained_sources import SERVED_ELSEWHERE

    if through := SERVED_ELSEWHERE.get((dataset, threat_model, key)):
        return None, f"weights served through {through}, not RobustBench's model directory"
    try:
        kwargs = {"dataset": dataset, "key": key, "threat_model": threat_model}
        return build_architecture("robustbench", kwargs, DATASET_SPECS[dataset].num_classes, device="meta"), None
    except Exception as error:  # noqa: BLE001 (the workflow's sheet check builds it the same way)
        return None, f"cannot be built on the meta device ({type(error).__name__})"


def _timm_counterpart(model, timm_shapes: dict[str, tuple]) -> str | None:
    """The timm architecture with ``model``'s parameter shapes, or None."""
    if not timm_shapes:
        from filterlens.models.architectures import build_architecture

        for name in TIMM_CANDIDATES:
            timm_shapes[name] = _parameter_shapes(build_architecture("timm", {"name": name}, IMAGENET_CLASSES,
                                                                     device="meta"))
    shapes = _parameter_shapes(model)
    return next((name for name, candidate in timm_shapes.items() if candidate == shapes), None)


def _board_id(dataset: str, threat_model: str) -> str:
    """The ids' middle part: the dataset for L-inf (the paper's ids), else dataset and threat
    model, so that the entries of every leaderboard have ids of their own."""
    return dataset if threat_model == "Linf" else f"{dataset}_{threat_model}"


def _robustbench_row(dataset: str, key: str, threat_model: str, robust: bool, counterpart: str) -> dict[str, str]:
    return {"model_id": f"rb_{_board_id(dataset, threat_model)}_{key}", "dataset": dataset, "architecture": "robustbench",
            "arch_kwargs": _rb_kwargs(dataset, key, threat_model), "robust": "true" if robust else "false",
            "source": "robustbench", "source_key": key, "counterpart": counterpart, "clean_acc": "",
            "robust_acc": ""}


def _normal_row(dataset: str, key: str, threat_model: str, timm_name: str | None) -> dict[str, str]:
    if timm_name:
        return {"model_id": f"timm_{timm_name}", "dataset": dataset, "architecture": "timm",
                "arch_kwargs": json.dumps({"name": timm_name}), "robust": "false", "source": "timm",
                "source_key": TIMM_PRETRAINED.get(timm_name, timm_name), "counterpart": "", "clean_acc": "",
                "robust_acc": ""}
    return {"model_id": f"normal_{_board_id(dataset, threat_model)}_{key}", "dataset": dataset,
            "architecture": "robustbench", "arch_kwargs": _rb_kwargs(dataset, key, threat_model), "robust": "false",
            "source": "train_cifar", "source_key": key, "counterpart": "", "clean_acc": "", "robust_acc": ""}


def leaderboard_rows(dataset: str, threat_model: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The rows of one RobustBench leaderboard, and the entries left out (key: why).

    The paper's rule: a robust CIFAR model's counterpart is its architecture trained here
    (train_cifar, on the constructor of the first key by name among the robust entries of that
    architecture, so entries of one architecture share it); a robust ImageNet model's is timm's
    pretrained model of its architecture, and it is left out where timm has none. The Standard
    entries are normal models with RobustBench's weights. RobustBench ships no accuracies
    (its model_info is not in the package): they stay empty."""
    from filterlens.models.robustbench_zoo import zoo

    left_out: dict[str, str] = {}
    by_architecture: dict[str, list[str]] = {}
    timm_of: dict[str, str] = {}
    timm_shapes: dict[str, tuple] = {}
    standard: list[str] = []
    for key in sorted(zoo(dataset, threat_model)):
        model, problem = _built_entry(dataset, key, threat_model)
        if problem:
            left_out[key] = problem
        elif key.startswith("Standard"):
            standard.append(key)
        elif dataset != "imagenet":
            by_architecture.setdefault(_architecture_print(model), []).append(key)
        elif timm_name := _timm_counterpart(model, timm_shapes):
            timm_of[key] = timm_name
        else:
            left_out[key] = "no timm model of its architecture (no normal counterpart)"
    robust_rows, normal_rows = [], {}
    for keys in by_architecture.values():
        normal = _normal_row(dataset, keys[0], threat_model, None)
        normal_rows[normal["model_id"]] = normal
        robust_rows += [_robustbench_row(dataset, key, threat_model, True, normal["model_id"]) for key in keys]
    for key, timm_name in timm_of.items():
        normal = normal_rows.setdefault(f"timm_{timm_name}", _normal_row(dataset, key, threat_model, timm_name))
        robust_rows.append(_robustbench_row(dataset, key, threat_model, True, normal["model_id"]))
    for key in standard:
        row = _robustbench_row(dataset, key, threat_model, False, "")
        normal_rows[row["model_id"]] = row
    rows = sorted(robust_rows, key=lambda r: r["model_id"]) + sorted(normal_rows.values(), key=lambda r: r["model_id"])
    return rows, left_out


def write_leaderboard(dataset: str, threat_model: str, out: Path) -> list[dict[str, str]]:
    rows, left_out = leaderboard_rows(dataset, threat_model)
    command = f"filterlens leaderboard-sheet --leaderboard {dataset}:{threat_model}"
    header = (f"# RobustBench's {dataset} {threat_model} leaderboard (robustbench.model_zoo.model_dicts).\n"
              + "".join(f"# Left out: {key}: {why}.\n" for key, why in left_out.items()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(rows, command, notes=header))
    robust = sum(r["robust"] == "true" for r in rows)
    print(f"wrote {out}: {robust} robust and {len(rows) - robust} normal models, {len(left_out)} entries left out")
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


def render(rows: list[dict[str, str]], command: str, source: str = "checkpoints", notes: str = "") -> str:
    header = (f"# Generated by {command}; do not edit by hand (edit the inputs and run it again).\n"
              + notes + SOURCE_HEADERS[source])
    lines = ["\t".join(COLUMNS)] + ["\t".join(row[c] for c in COLUMNS) for row in rows]
    return header + "\n".join(lines) + "\n"


def _write_leaderboards(names: list[str], out: Path | None) -> int:
    known = leaderboards()
    wanted = known if "all" in names else [tuple(name.split(":", 1)) for name in names]
    if unknown := [":".join(board) for board in wanted if board not in known]:
        print(f"filterlens leaderboard-sheet: unknown leaderboard(s) {', '.join(unknown)}; RobustBench lists "
              f"{', '.join(':'.join(board) for board in known)}", file=sys.stderr)
        return 1
    if out is not None and len(wanted) > 1:
        print("filterlens leaderboard-sheet: --out names one sheet; give one --leaderboard with it", file=sys.stderr)
        return 1
    for dataset, threat_model in wanted:
        write_leaderboard(dataset, threat_model, out or LEADERBOARD_DIR / f"{dataset}_{threat_model}.tsv")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threat-model", default="Linf", choices=THREAT_MODELS)
    parser.add_argument("--pairings", type=Path, default=Path("config/reference/paper_pairings.csv"),
                        help="the pairings CSV (default: %(default)s)")
    parser.add_argument("--models", type=Path, default=Path("config/reference/paper_models.csv"),
                        help="the accuracies CSV (default: %(default)s)")
    parser.add_argument("--source", default="checkpoints", choices=SOURCES,
                        help="where the weights come from (default: checkpoints)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: config/models/paper.tsv, paper_filterdb.tsv or scale.tsv by --source")
    parser.add_argument("--leaderboard", action="append", metavar="DATASET:THREAT",
                        help="a sheet of every entry of this RobustBench leaderboard (e.g. cifar10:L2), paired by "
                             "the paper's rule, no pairings file; 'all' for every leaderboard. Default --out: "
                             f"{LEADERBOARD_DIR}/<dataset>_<threat>.tsv")


def run(args: argparse.Namespace) -> int:
    if args.leaderboard:
        return _write_leaderboards(args.leaderboard, args.out)
    out = args.out or Path("config") / "models" / DEFAULT_OUT[args.source]
    try:
        rows = with_source(make_rows(args.pairings, args.models, args.threat_model), args.pairings, args.source)
    except SheetToolError as error:
        print(f"filterlens leaderboard-sheet: {error}", file=sys.stderr)
        return 1
    command = "filterlens leaderboard-sheet"
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
