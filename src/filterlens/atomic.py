"""Outputs appear complete or not at all.

Everything is written under a temporary name beside its destination and renamed into place
when complete; a job killed at any moment leaves only a ``.partial`` path that no rule reads
and the next run overwrites.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def partial_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write (a file or a directory); rename it to ``path`` on success.

    On an exception the temporary path is removed and ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_path(final)
    _remove(temporary)
    try:
        yield temporary
    except BaseException:
        _remove(temporary)
        raise
    _remove(final)  # a directory cannot be replaced by rename
    os.replace(temporary, final)
