"""Where a run's outputs are, and its headline tables: models, KL divergence, layer quality,
sparse filters and which of the paper's findings the run shows (what `make run` ends with).

  filterlens results            # the run in the working directory
  filterlens results path/to/run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from filterlens.method.measures import QUALITY, names

OUTPUTS = [
    ("models, filter counts, accuracies", "results/tables/models.tsv"),
    ("filter stores (Zarr v3)", "results/filters/<model>.zarr"),
    ("per-model summaries", "results/summaries/<model>/"),
    ("analyses (PCA, KL, layer quality)", "results/analysis/"),
    ("figures and tables", "results/figures/, results/tables/"),
    ("report", "results/report.html"),
    ("checkpoints", "data/models/<model>.pt"),
    ("logs, benchmarks", "logs/, benchmarks/"),
]


def show(title: str, path: Path, columns: list[str] | None = None, query: str | None = None,
         missing: dict[str, str] | None = None) -> None:
    """The table at ``path`` (if the run has it), its ``columns`` of the rows of ``query``, its NaN
    cells of the columns of ``missing`` as the text given there."""
    import pandas as pd

    if not path.exists():
        return
    table = pd.read_csv(path, sep="\t")
    if query:
        table = table.query(query)
    if columns:
        table = table[[c for c in columns if c in table.columns]]
    for column, text in (missing or {}).items():
        table[column] = [text if pd.isna(v) else f"{v:.4g}" for v in table[column]]
    print(f"\n{title} ({path}):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, nargs="?", default=Path("."), metavar="RUN_DIR",
                        help="the run's working directory (default: the working directory)")


def run(args: argparse.Namespace) -> int:
    root = args.run_dir
    if not (root / "results").is_dir():
        print(f"filterlens results: {root} holds no results/ folder. Fix: give the run's working directory "
              "(where snakemake ran), or run the workflow first (make run)", file=sys.stderr)
        return 1
    print("Outputs:")
    for label, path in OUTPUTS:
        if (root / path.split("<")[0].split(",")[0]).exists() or (root / path).exists():
            print(f"  {label:36s} {path}")
    show("Models", root / "results/tables/models.tsv",
         ["model_id", "architecture", "robust", "n_layers", "n_filters", "clean_acc", "robust_acc"])
    # no KL where a side has no filters (docs/method.md §4)
    show("KL divergence robust vs normal", root / "results/analysis/kl_by_dataset.tsv",
         ["dataset", "pooling", "kl", "default"], missing={"kl": "no filters"})
    show("KL by depth group (paired)", root / "results/analysis/kl_by_depth.tsv", ["dataset", "depth_group", "kl"],
         missing={"kl": "no filters"})
    show("Layer quality per model (all layers)", root / "results/analysis/quality_by_depth.tsv",
         ["model_id", "robust", *names(QUALITY)],
         "depth_group == 'all'")
    show("Sparse filters", root / "results/analysis/sparse_shares.tsv")
    show("The paper's findings in this run", root / "results/tables/findings.tsv",
         ["finding", "dataset", "this_run", "shown"])
    return 0
