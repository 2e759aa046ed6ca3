"""Export a finished run as a reference bundle (docs/bundle.md): one small .tar.gz holding what
placing other models against the run needs, with its sha256 in <archive>.sha256.

  filterlens export-bundle RUN_DIR OUT.tar.gz [--sheet SHEET]

RUN_DIR is the run's working directory (results/ inside it); the sheet defaults to the one its
provenance record names (relative to RUN_DIR, else to the working directory).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PROVENANCE = Path("results") / "provenance" / "provenance.json"


def run_sheet(run_dir: Path) -> Path:
    """The sheet the run's provenance record names."""
    from filterlens.analyse.bundle import BundleError

    record_path = run_dir / PROVENANCE
    if not record_path.is_file():
        raise BundleError(f"{record_path} is missing, so the run's sheet is unknown. Fix: finish the run (rule "
                          f"provenance writes it: snakemake {PROVENANCE} in {run_dir}), or pass --sheet")
    path = Path(json.loads(record_path.read_text())["sheet"]["path"])
    for candidate in (run_dir / path, path):
        if candidate.is_file():
            return candidate
    raise BundleError(f"the run's sheet {path} (named by {record_path}) is found neither in {run_dir} nor in the "
                      "working directory. Fix: pass --sheet with the sheet the run was made with")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the finished run's working directory")
    parser.add_argument("archive", type=Path, metavar="OUT.tar.gz", help="the bundle to write")
    parser.add_argument("--sheet", type=Path, help="the run's model sheet (default: its provenance record's)")


def run(args: argparse.Namespace) -> int:
    from filterlens.analyse.bundle import checksum_path, export_bundle

    sheet = args.sheet or run_sheet(args.run_dir)
    manifest = export_bundle(args.run_dir, args.archive, sheet)
    print(f"{args.archive}: {args.archive.stat().st_size} bytes, {len(manifest['members'])} members, "
          f"{len(manifest['models'])} models; sha256 in {checksum_path(args.archive)}")
    return 0
