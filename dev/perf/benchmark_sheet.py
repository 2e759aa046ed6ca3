"""How long reading and validating a zoo sheet takes, and the memory it needs, by size; and
what a parse of the workflow costs on the paper's config (each job parses the workflow again).

    python dev/perf/benchmark_sheet.py [--rows 10000 100000 1000000] [--output results/benchmarks/sheet.tsv]

The sheets repeat config/models/paper.tsv's 114 rows with numbered ids (every pair intact),
written under data/benchmark/sheets/. Each is read in a fresh process
(filterlens.config.sheet.read_sheet) that reports its wall time and peak RSS. The workflow parse
is `snakemake --dry-run --quiet` on config/paper.yaml, timed whole (Python's start-up and
imports included) and with the sheet's read alone. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAPER_SHEET = REPO / "config" / "models" / "paper.tsv"
READ = """
import json, resource, sys, time
sys.path.insert(0, {src!r})
from filterlens.config.sheet import read_sheet
start = time.perf_counter()
sheet = read_sheet({path!r})
print(json.dumps({{"rows": len(sheet), "seconds": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def repeated_sheet(rows: int, folder: Path) -> Path:
    """config/models/paper.tsv's rows repeated to about ``rows`` rows (whole copies of the zoo)."""
    lines = [line for line in PAPER_SHEET.read_text().splitlines() if line and not line.startswith("#")]
    header, body = lines[0], [line.split("\t") for line in lines[1:]]
    counterpart = header.split("\t").index("counterpart")
    out = [header]
    for copy in range(max(1, round(rows / len(body)))):
        for cells in body:
            cells = list(cells)
            cells[0] = f"{cells[0]}_{copy}"
            cells[counterpart] = f"{cells[counterpart]}_{copy}" if cells[counterpart] else ""
            out.append("\t".join(cells))
    path = folder / f"sheet_{rows}.tsv"
    path.write_text("\n".join(out) + "\n")
    return path


def read_in_process(path: Path) -> dict:
    code = READ.format(src=str(REPO / "src"), path=str(path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def workflow_parse() -> float:
    snakemake = Path(sys.executable).parent / "snakemake"
    start = time.perf_counter()
    subprocess.run([str(snakemake), "--dry-run", "--quiet", "--cores", "1", "--configfile", "config/paper.yaml"],
                   cwd=REPO, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--output", type=Path, default=REPO / "results" / "benchmarks" / "sheet.tsv")
    args = parser.parse_args()
    folder = REPO / "data" / "benchmark" / "sheets"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["what\trows\tseconds\tpeak_mb"]
    paper = read_in_process(PAPER_SHEET)
    lines.append(f"read_sheet config/models/paper.tsv\t{paper['rows']}\t{paper['seconds']:.3f}\t{paper['peak_mb']:.0f}")
    lines.append(f"snakemake --dry-run --configfile config/paper.yaml\t{paper['rows']}\t{workflow_parse():.1f}\t")
    for rows in args.rows:
        result = read_in_process(repeated_sheet(rows, folder))
        lines.append(f"read_sheet\t{result['rows']}\t{result['seconds']:.2f}\t{result['peak_mb']:.0f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print("| " + " | ".join(lines[0].split("\t")) + " |\n|---|---|---|---|")
    for line in lines[1:]:
        print("| " + " | ".join(line.split("\t")) + " |")


if __name__ == "__main__":
    main()
