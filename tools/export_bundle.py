"""Export a finished run as a reference bundle (docs/bundle.md): one small .tar.gz holding what
placing other models against the run needs, with its sha256 in <archive>.sha256.

    python tools/export_bundle.py RUN_DIR OUT.tar.gz [--sheet SHEET]

RUN_DIR is the run's working directory (results/ inside it); the sheet defaults to the one its
provenance record names (relative to RUN_DIR, else to this repository).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from filterlens.analyse.bundle import checksum_path, export_bundle  # noqa: E402


def run_sheet(run_dir: Path) -> Path:
    """The sheet the run's provenance record names."""
    record = json.loads((run_dir / "results" / "provenance" / "provenance.json").read_text())
    path = Path(record["sheet"]["path"])
    for candidate in (path, run_dir / path, REPO / path):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"the run's sheet {path} is not found: pass --sheet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("archive", type=Path)
    parser.add_argument("--sheet", type=Path, help="the run's model sheet (default: its provenance record's)")
    args = parser.parse_args(argv)
    sheet = args.sheet or run_sheet(args.run_dir)
    manifest = export_bundle(args.run_dir, args.archive, sheet)
    print(f"{args.archive}: {args.archive.stat().st_size} bytes, {len(manifest['members'])} members, "
          f"{len(manifest['models'])} models; sha256 in {checksum_path(args.archive)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
