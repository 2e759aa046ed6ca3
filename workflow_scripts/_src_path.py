"""Put the filterlens library (../src) on sys.path for the rule scripts.

Snakemake runs each script from a temporary copy with this folder on sys.path, so
``import _src_path`` works locally, in conda environments and in cluster jobs alike.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[1] / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
