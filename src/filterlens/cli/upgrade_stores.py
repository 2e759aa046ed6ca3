"""Upgrade filter stores of format versions 1 to 3 to the current version (4) in place, the filters untouched.

  filterlens upgrade-stores [--configfile config/paper.yaml] [STORE.zarr ...]

A version-1 store has one depth per layer (counting convs). Versions 2 to 4 record the depth
under every definition (docs/method.md) so that analyses switch definition without extracting again.
The depths come from the architecture alone: each store's model is looked up in the run's
sheet (the `sheet` of the last --configfile that sets one, else config/config.yaml; paths relative to
the working directory, the run's), built on
the `meta` device (no weights, no checkpoint) and traced; its 3x3 layers must match the store's
(names, shapes, row ranges) and, for a traced store, its conv counts the store's depths. A store
imported from the filter database keeps its depth, which is the authors' graph level.

Version 4 adds each layer's largest row sum of |W| to the layer table (the reference of
analysis.sparse_reference: max_row_sum, docs/method.md §3): the upgrade computes it from the
store's own rows, one read of its filters, checking each layer's max |W| against the table. Then
only the group's attributes (zarr.json) are rewritten, by an atomic rename; the filters and their
codec stay as they are (version 2 differs from 3 in the codec only, which Zarr reads from each
array's metadata). Without STORE arguments, every results/filters/*.zarr. A version-4 store is
left as it is.

Snakemake then sees the stores as changed and reruns their summaries (not extraction).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CONFIG = Path("config") / "config.yaml"


def sheet_path(configfiles: list[Path]) -> Path:
    """The sheet of the last config file that names one (the workflow's default config first, if present)."""
    import yaml

    sheet = None
    for path in [DEFAULT_CONFIG, *configfiles] if DEFAULT_CONFIG.is_file() else configfiles:
        sheet = (yaml.safe_load(path.read_text()) or {}).get("sheet", sheet)
    if sheet is None:
        raise FileNotFoundError(f"no config names the sheet (no {DEFAULT_CONFIG} here, and no --configfile sets "
                                "`sheet`). Fix: pass the --configfile of the run that extracted the stores")
    return Path(sheet)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", type=Path, action="append", default=[],
                        help="the run's config file(s), for its sheet (repeatable, as for snakemake)")
    parser.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    parser.add_argument("stores", type=Path, nargs="*", help="filter stores (default: results/filters/*.zarr)")


def run(args: argparse.Namespace) -> int:
    from filterlens.config.sheet import read_sheet
    from filterlens.extract.store import FilterStoreError
    from filterlens.extract.store_upgrade import upgrade_store

    stores = args.stores or sorted(Path("results/filters").glob("*.zarr"))
    if not stores:
        print("no filter stores given and none under results/filters/", file=sys.stderr)
        return 1
    sheet = read_sheet(sheet_path(args.configfile))
    failed = 0
    for store in stores:
        try:
            print(upgrade_store(store, sheet, args.dry_run))
        except FilterStoreError as error:
            failed += 1
            print(f"error: {error}", file=sys.stderr)
    return 1 if failed else 0
