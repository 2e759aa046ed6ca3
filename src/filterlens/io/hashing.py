"""File digests, without importing torch (provenance runs in the analysis environment)."""

from __future__ import annotations

import hashlib
import os


def sha256_of(path: str | os.PathLike, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()
