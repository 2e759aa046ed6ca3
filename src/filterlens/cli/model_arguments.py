"""The arguments that name a model, shared by ``filterlens analyze`` and ``filterlens compare``
(the forms of filterlens.acquire.model_specs), and how the tables are printed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MODEL_HELP = ("a filterlens checkpoint (data/models/<model>.pt); a state dict file (torch.save(model.state_dict()) "
              "or .safetensors) with --architecture; or a model name, torchvision:NAME, timm:NAME, "
              "robustbench:DATASET/THREAT/KEY, with --weights FILE or --random-init SEED (nothing is downloaded)")
ARCHITECTURE_HELP = ("the architecture of a state dict file: torchvision:NAME, timm:NAME, robustbench:DATASET/THREAT/KEY, "
                     "python:FILE.py:FUNCTION, or a sheet's architecture name with --arch-kwargs")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL and the options that say what it is (analyze, place)."""
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("--architecture", help=ARCHITECTURE_HELP)
    parser.add_argument("--arch-kwargs", type=json_object, metavar="JSON",
                        help="keyword arguments of the architecture, a JSON object as a sheet's arch_kwargs")
    parser.add_argument("--weights", type=Path, metavar="FILE", help="the state dict file of a model name")
    parser.add_argument("--random-init", type=int, metavar="SEED", help="seeded random weights for a model name")


def model_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of filterlens.api.analyze / place that :func:`add_model_arguments` set."""
    return {"architecture": args.architecture, "arch_kwargs": args.arch_kwargs, "weights": args.weights,
            "random_init": args.random_init}


def json_object(text: str) -> dict:
    """An --arch-kwargs value: a JSON object, as the sheet's arch_kwargs column."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error.msg}): {text!r}; e.g. '{{\"width\": 16}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"a JSON object is needed, e.g. '{{\"width\": 16}}', not {text!r}")
    return value


def add_extraction_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the extraction and the summary (the config's defaults otherwise)."""
    parser.add_argument("--num-classes", type=int, metavar="N",
                        help="classes of the model's classifier (default: read from the weights' last linear layer)")
    parser.add_argument("--image-size", type=int, metavar="PIXELS",
                        help="input size a model that torch.fx cannot trace runs at to find its convolutions "
                             "(default: the checkpoint's dataset's, else 32)")
    parser.add_argument("--depth-definition", choices=["graph_level", "conv_count"],
                        help="depth of a layer (default: the config's analysis.depth_definition; docs/method.md)")
    parser.add_argument("--sparse-reference", choices=["max_abs", "max_row_sum"],
                        help="the layer's reference of the sparse threshold (default: the config's "
                             "analysis.sparse_reference; docs/method.md §3)")
    parser.add_argument("--raw-weights", action="store_true",
                        help="keep the raw weights instead of folding BatchNorm into its conv "
                             "(extraction.fold_batchnorm: false)")
    parser.add_argument("--threads", type=int, default=1, help="threads of the passes over the filters (default 1)")


def extraction_options(args: argparse.Namespace) -> dict:
    return {"image_size": args.image_size, "depth_definition": args.depth_definition,
            "sparse_reference": args.sparse_reference,
            "fold_batchnorm": False if args.raw_weights else None, "threads": args.threads}


def print_table(title: str, table, columns: list[str] | None = None) -> None:
    """``table`` under ``title``, numbers to four significant digits."""
    if columns:
        table = table[[c for c in columns if c in table.columns]]
    print(f"\n{title}:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
