"""The per-layer table of one model's 3x3 filters: filters, sparsity, variance entropy,
orthogonality, L1/L2 ratio and high-frequency share, with depth and depth group, as a run's
results/summaries/<model>/layers.tsv (docs/outputs.md; definitions: docs/method.md).

  filterlens analyze data/models/my_model.pt
  filterlens analyze weights/r18.pt --architecture torchvision:resnet18
  filterlens analyze robustbench:cifar10/Linf/Standard --weights Standard.pt --output standard.tsv
  filterlens analyze timm:resnet50 --random-init 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from filterlens.cli.model_arguments import (
    add_extraction_arguments,
    add_model_arguments,
    extraction_options,
    model_options,
    print_table,
)

# What the terminal shows of the table (the file gets every column).
SHOWN = ["name", "conv_depth", "depth_group", "c_in", "c_out", "n_filters", "sparsity", "entropy_unscaled",
         "entropy_scaled", "orthogonality", "l1l2_ratio", "hf_share"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--output", type=Path, metavar="FILE.tsv", help="write the whole table there, tab-separated")
    add_extraction_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from filterlens.api import analyze

    table = analyze(args.model, **model_options(args), num_classes=args.num_classes, **extraction_options(args))
    if args.output:
        from filterlens.io.files import write_tsv

        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_tsv(table, args.output)
        print(f"{args.output}: {len(table)} layers, {int(table.n_filters.sum())} filters")
    else:
        print_table(f"{args.model}: {len(table)} layers of 3x3 filters", table, SHOWN)
    return 0
