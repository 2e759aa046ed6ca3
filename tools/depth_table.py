"""The 71 robust architectures of the paper under both depth definitions (docs/method.md).

    python tools/depth_table.py [--out results/tables/depth_definitions.tsv]

Builds every robust model of config/reference/paper_models.csv on the `meta` device (no
weights) and prints per model: its max conv depth by ONNX graph level (the authors') and by
counting convs, its 3x3 layers and filters, and how many of those layers (and filters) fall in
another depth group (first layer, deciles of conv_depth_norm) under one definition than under
the other. The last row sums the models.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def depth_table() -> pd.DataFrame:
    import torch

    from filterlens.config.datasets import dataset_info
    from filterlens.extract.weights import plan_extraction
    from filterlens.method.depth_groups import depth_group
    from filterlens.models.architectures import build_architecture

    with open(REPO / "config" / "reference" / "paper_models.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["Name"].startswith("robustbench_")]
    out = []
    for row in rows:
        info = dataset_info(row["Training-Dataset"])
        model = build_architecture("robustbench", {"dataset": info.name, "key": row["Network"]}, info.num_classes,
                                   device="meta")
        plan = plan_extraction(model, torch.empty(1, 3, info.image_size, info.image_size, device="meta"))
        layers = pd.DataFrame([layer.as_dict() for layer in plan.layers])
        levels = depth_group(layers.conv_depth_graph_level.to_numpy(), plan.max_conv_depths["graph_level"])
        counts = depth_group(layers.conv_depth_conv_count.to_numpy(), plan.max_conv_depths["conv_count"])
        moved = levels != counts
        n = (layers.row_stop - layers.row_start).to_numpy()
        out.append({"dataset": info.name, "model": row["Network"], "class": type(model).__name__,
                    "max_depth_graph_level": plan.max_conv_depths["graph_level"],
                    "max_depth_conv_count": plan.max_conv_depths["conv_count"],
                    "layers_3x3": len(layers), "layers_other_group": int(moved.sum()),
                    "filters_3x3": int(n.sum()), "filters_other_group": int(n[moved].sum())})
    table = pd.DataFrame(out)
    total = {"dataset": "all", "model": f"{len(table)} models", "class": "",
             "max_depth_graph_level": table.max_depth_graph_level.max(),
             "max_depth_conv_count": table.max_depth_conv_count.max(),
             **{c: table[c].sum() for c in ("layers_3x3", "layers_other_group", "filters_3x3",
                                            "filters_other_group")}}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the table here (TSV)")
    args = parser.parse_args(argv)
    table = depth_table()
    print(table.to_string(index=False))
    differ = table.iloc[:-1]
    print(f"\n{(differ.max_depth_graph_level != differ.max_depth_conv_count).sum()} of {len(differ)} models differ "
          f"in max depth; {table.layers_other_group.iloc[-1]} of {table.layers_3x3.iloc[-1]} 3x3 layers "
          f"({table.filters_other_group.iloc[-1]:,} of {table.filters_3x3.iloc[-1]:,} filters) change depth group")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, sep="\t", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
