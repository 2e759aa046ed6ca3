"""Import time of rule scripts and modules, as ``python -X importtime`` reports it.

    python dev/perf/import_times.py [workflow_scripts/summarize_model.py ... filterlens.reduce.passes ...]

For a rule script, its top-level import statements are run (not its body, which needs
Snakemake's ``snakemake`` object); for a module name, ``import <module>``. Each runs in a fresh
interpreter --repeat times (default 5); the shortest total of the top-level imports' cumulative
times counts, with the heavy packages it loaded. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT = ["workflow_scripts/summarize_model.py", "workflow_scripts/coefficient_range.py",
           "workflow_scripts/coefficient_histograms.py", "filterlens.reduce.passes", "filterlens.extract.store"]
HEAVY = ["torch", "pandas", "scipy", "numba", "dask", "dask.array", "zarr", "numpy"]


def import_code(target: str) -> str:
    if not target.endswith(".py"):
        return f"import {target}"
    tree = ast.parse((REPO / target).read_text())
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)))


def measure(code: str) -> tuple[float, list[str]]:
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    # src and dev/perf, as the workflow's rules share them with their scripts
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "dev" / "perf"),
                                                        os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", probe], capture_output=True, text=True,
                            env=env, cwd=REPO, check=True)
    total_us = 0
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if not name[1:].startswith(" ") and cumulative.strip().isdigit():  # top level: not indented
                total_us += int(cumulative)
    return total_us / 1e6, result.stdout.strip().split(",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"| imports of | s (best of {args.repeat}) | heavy packages loaded |\n|---|---|---|")
    for target in args.targets:
        runs = [measure(import_code(target)) for _ in range(args.repeat)]
        seconds = min(s for s, _ in runs)
        print(f"| `{target}` | {seconds:.2f} | {', '.join(m for m in runs[0][1] if m) or 'none'} |", flush=True)


if __name__ == "__main__":
    main()
