"""``filterlens place MODEL --bundle ref.tar.gz``: one model placed against a reference bundle
(docs/bundle.md), the table of rule placement printed with the bundle's noise level.

The command registry (``filterlens.cli``) calls :func:`add_arguments` on the command's parser
and :func:`run` with the parsed arguments."""

from __future__ import annotations

import argparse
import sys

from filterlens.cli.model_arguments import add_model_arguments, model_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Place a model against a reference bundle: per depth group, its KL to the bundle's robust "
                          "and normal pools and the pool it is closer to beyond the bundle's noise level "
                          "(docs/bundle.md).")
    add_model_arguments(parser)
    parser.add_argument("--num-classes", type=int, metavar="N",
                        help="classes of the model's classifier (default: read from the weights' last linear layer)")
    parser.add_argument("--bundle", required=True,
                        help="the reference bundle (.tar.gz from filterlens export-bundle), its .sha256 beside it")
    parser.add_argument("--dataset", help="the model's training dataset, one of the bundle's (default: the "
                                          "checkpoint's, else the bundle's only one)")
    parser.add_argument("--model-id", help="the name printed for the model (default: the checkpoint's)")
    parser.add_argument("--image-size", type=int, help="input size for a model torch.fx cannot trace "
                                                       "(default: the dataset's)")
    parser.add_argument("--threads", type=int, default=1, help="threads of the passes over the filters (default 1)")


def run(args: argparse.Namespace) -> int:
    """Print the placement table; 0, or 1 with the reason on stderr where the model or the
    bundle cannot be read."""
    from filterlens.analyse.bundle import BundleError
    from filterlens.analyse.placement import printed_placement
    from filterlens.api import place

    try:
        table = place(args.model, args.bundle, **model_options(args), num_classes=args.num_classes,
                      dataset=args.dataset, model_id=args.model_id, image_size=args.image_size, threads=args.threads)
    except (BundleError, ValueError, TypeError, OSError) as error:
        print(f"filterlens place: {error}", file=sys.stderr)
        return 1
    first = table.iloc[0]
    print(f"{first.model_id} ({first.dataset}) against {args.bundle}: closer_to names a pool only where the two KLs "
          "differ by more than the noise level, the largest KL of a reference model to its own pool without it "
          "(docs/method.md §4)")
    printed = printed_placement(table).drop(columns=["model_id", "dataset"])
    print(printed.to_string(index=False))
    return 0
