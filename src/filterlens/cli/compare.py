"""Two models side by side, as the workflow compares a robust model (A) with a normal one (B),
on the filters of both (docs/method.md §4-§5): the KL divergence between their coefficient
distributions by depth group, the share of variance of the first component of their PCA bases,
and sparsity, variance entropy and orthogonality by depth group.

  filterlens compare robust.pt normal.pt --architecture timm:resnet18
  filterlens compare data/models/rb_cifar10_Standard.pt data/models/normal_cifar10_Standard.pt
  filterlens compare adv.pt torchvision:resnet18 --architecture torchvision:resnet18 --random-init-b 0

Each model takes the forms of `filterlens analyze`; --architecture, --arch-kwargs and
--num-classes apply to both unless their -b form names B's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from filterlens.cli.model_arguments import (
    ARCHITECTURE_HELP,
    MODEL_HELP,
    add_extraction_arguments,
    extraction_options,
    json_object,
    print_table,
)
from filterlens.method.measures import QUALITY, names

SHOWN = ["model_id", "depth_group", "n_layers", "n_filters", *names(QUALITY)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help=f"the model in the robust models' place: {MODEL_HELP}")
    parser.add_argument("b", metavar="B", help="the model in the normal models' place, in the same forms")
    parser.add_argument("--architecture", help=f"{ARCHITECTURE_HELP} (of both files)")
    parser.add_argument("--arch-kwargs", type=json_object, metavar="JSON", help="its keyword arguments (JSON)")
    parser.add_argument("--architecture-b", help="B's architecture, where it differs from A's")
    parser.add_argument("--arch-kwargs-b", type=json_object, metavar="JSON", help="B's keyword arguments (JSON)")
    parser.add_argument("--random-init", type=int, metavar="SEED", help="seeded random weights for A, a model name")
    parser.add_argument("--random-init-b", type=int, metavar="SEED", help="seeded random weights for B, a model name")
    parser.add_argument("--num-classes-b", type=int, metavar="N", help="B's classes, where they differ from A's")
    parser.add_argument("--bins", type=int, help="histogram bins per component (default: the config's analysis.bins)")
    parser.add_argument("--output", type=Path, metavar="DIR",
                        help="write kl_by_depth.tsv, bases.tsv, quality_by_depth.tsv and layers.tsv there")
    add_extraction_arguments(parser)


def _specs(args: argparse.Namespace):
    from filterlens.acquire.model_specs import ModelSpec, is_model_name

    def architecture(model: str, own: str | None) -> str | None:
        return None if is_model_name(model) else own

    a = ModelSpec(args.a, architecture(args.a, args.architecture), args.arch_kwargs, random_init=args.random_init,
                  num_classes=args.num_classes)
    b = ModelSpec(args.b, architecture(args.b, args.architecture_b or args.architecture),
                  args.arch_kwargs_b or (None if args.architecture_b else args.arch_kwargs),
                  random_init=args.random_init_b, num_classes=args.num_classes_b or args.num_classes)
    return a, b


def run(args: argparse.Namespace) -> int:
    from filterlens.api import compare

    result = compare(*_specs(args), bins=args.bins, **extraction_options(args))
    print(f"A = {result.a} ({args.a}), B = {result.b} ({args.b})")
    print_table("KL divergence between A's and B's coefficient distributions, by depth group (weighted symmetric, "
                "on the basis of both)", result.kl_by_depth)
    print_table("PCA bases: share of variance of the first component (lower: filters more diverse)",
                result.first_component_shares)
    print_table("Layer quality by depth group", result.quality_by_depth, SHOWN)
    if args.output:
        from filterlens.io.files import write_tsv

        args.output.mkdir(parents=True, exist_ok=True)
        for name in ("kl_by_depth", "bases", "quality_by_depth", "layers"):
            write_tsv(getattr(result, name), args.output / f"{name}.tsv")
        print(f"\nwrote {args.output}/: kl_by_depth.tsv, bases.tsv, quality_by_depth.tsv, layers.tsv")
    return 0
