"""The ``filterlens`` command: one subcommand per module of this package, each with
``add_arguments(parser)`` and ``run(args) -> int``.

A subcommand's module is imported only when that subcommand runs (or shows its help), so that
``filterlens results`` does not wait for torch. ``filterlens --help`` lists the subcommands from
the table below alone.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple

import filterlens


class Subcommand(NamedTuple):
    module: str  # in filterlens.cli
    help: str


SUBCOMMANDS = {
    "analyze": Subcommand("analyze", "the per-layer table of one model's 3x3 filters (a checkpoint, a state dict "
                                     "file with its architecture, or a model name)"),
    "compare": Subcommand("compare", "two models side by side: KL by depth group, PCA bases, layer quality"),
    "stage": Subcommand("stage", "what a run needs staged: checkpoints, caches, data, disk, training cost"),
    "place": Subcommand("place", "where a model stands against a reference bundle"),
    "results": Subcommand("results", "where a run's outputs are, and its headline tables"),
    "export-bundle": Subcommand("export_bundle", "pack a finished run as a reference bundle (docs/bundle.md)"),
    "leaderboard-sheet": Subcommand("leaderboard_sheet", "write the paper's sheet, or a RobustBench leaderboard's, "
                                                         "from the reference data"),
    "upgrade-stores": Subcommand("upgrade_stores", "upgrade filter stores of format version 1 in place"),
}

# What a subcommand raises for a problem of the user's input: its message names the file, the
# field and the fix, so it is printed without a traceback.
USER_ERRORS = (ValueError, OSError)


def _overview() -> argparse.ArgumentParser:
    width = max(map(len, SUBCOMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {sub.help}" for name, sub in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="filterlens", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Adversarial robustness through the lens of convolutional filters: analyse and compare "
                    "models' 3x3 filters, and the tools around the workflow.",
        epilog=f"commands:\n{listing}\n\n'filterlens COMMAND --help' describes each.")
    parser.add_argument("--version", action="version", version=f"filterlens {filterlens.__version__}")
    parser.add_argument("command", choices=list(SUBCOMMANDS), metavar="COMMAND", help="one of the commands below")
    return parser


def subcommand_module(name: str):
    """The module of subcommand ``name``; :class:`ModuleNotFoundError` names the file if it is absent."""
    module = f"filterlens.cli.{SUBCOMMANDS[name].module}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
        raise ModuleNotFoundError(f"filterlens {name} is not part of this installation "
                                  f"(no module {module}: src/filterlens/cli/{SUBCOMMANDS[name].module}.py)",
                                  name=module) from None


def subcommand_parser(name: str, module) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"filterlens {name}", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        _overview().parse_args(argv)  # --help, --version, or an error naming the commands
        return 2
    name, rest = argv[0], argv[1:]
    try:
        module = subcommand_module(name)
    except ModuleNotFoundError as error:
        print(f"filterlens: {error}", file=sys.stderr)
        return 2
    args = subcommand_parser(name, module).parse_args(rest)
    try:
        return module.run(args)
    except USER_ERRORS as error:
        print(f"filterlens {name}: error: {error}", file=sys.stderr)
        return 1
