"""The lock file of downloaded pretrained weights (config acquisition.lock_file): a TSV of file,
sha256 and bytes, one row per file relative to the model directory, recorded on each file's first
good download. Later runs verify the files against it before anything reads them and refuse a
different one (:class:`LockMismatch`); parallel jobs update it in turn under a lock on its folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any, Iterator

from filterlens.acquire.errors import AcquisitionError, PermanentError
from filterlens.io.atomic import atomic_output
from filterlens.io.hashing import sha256_of

LOG = logging.getLogger(__name__)

LOCK_COLUMNS = ["file", "sha256", "bytes"]
# The head of every lock file written; reading skips it (comment lines).
LOCK_HEADER = (
    "# sha256 of every downloaded pretrained weight file, recorded on its first good download\n"
    "# (filterlens.acquire.lock_file). Later runs verify the files against it and refuse a different one.\n"
    "# file: path relative to the model directory (config acquisition.model_dir).\n"
)


class LockMismatch(PermanentError):
    """A file differs from the sha256 its lock file recorded (not retried). ``files``: the files
    that differ; ``short``: those of them shorter than recorded."""

    def __init__(self, message: str, files: list[Path] | None = None, short: list[Path] | None = None):
        super().__init__(message)
        self.files, self.short = files or [], short or []


@contextlib.contextmanager
def _locked_directory(directory: Path) -> Iterator[None]:
    """An exclusive flock on ``directory`` (parallel jobs update one lock file in turn)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_lock(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The lock file's entries by file; an absent file is an empty lock.

    Every line is checked, and :class:`AcquisitionError` lists each bad one by its line number:
    the header must be ``file sha256 bytes`` (tab-separated), each row three fields, the file a
    relative path inside the model directory named once, the sha256 64 hex digits (either case:
    compared in lower case), the bytes a non-negative integer."""
    path = Path(path)
    if not path.exists():
        return {}
    problems: list[str] = []
    entries: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if not header_seen:
            header_seen = True
            if fields != LOCK_COLUMNS:
                problems.append(f"line {number}: header {fields}, expected {LOCK_COLUMNS} (tab-separated)")
            continue
        if len(fields) != 3:
            problems.append(f"line {number}: {len(fields)} tab-separated field(s), expected 3 ({line!r})")
            continue
        name, digest, size = (field.strip() for field in fields)
        digest = digest.lower()
        bad = []
        if not name or name.startswith("/") or ".." in Path(name).parts:
            bad.append(f"file {name!r} is not a path relative to the model directory")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            bad.append(f"sha256 {fields[1]!r} is not 64 hex digits")
        if not size.isdigit():
            bad.append(f"bytes {size!r} is not a non-negative integer")
        if name in first_line:
            bad.append(f"file {name!r} is already listed on line {first_line[name]} (one row per file)")
        if bad:
            problems.append(f"line {number}: " + "; ".join(bad))
            continue
        first_line[name] = number
        entries[name] = {"sha256": digest, "bytes": int(size)}
    if problems:
        raise AcquisitionError(f"lock file {path} has {len(problems)} bad line(s):\n  - " + "\n  - ".join(problems)
                               + "\nFix: correct or delete those lines (a deleted row is recorded again from the "
                               "next good download).")
    return entries


def _write_lock(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    with atomic_output(path) as temporary:
        with open(temporary, "w") as handle:
            handle.write(LOCK_HEADER)
            handle.write("\t".join(LOCK_COLUMNS) + "\n")
            for name in sorted(entries):
                handle.write(f"{name}\t{entries[name]['sha256']}\t{entries[name]['bytes']}\n")


def file_facts(model_dir: Path, files: list[Path]) -> list[dict[str, Any]]:
    """One ``{"file", "sha256", "bytes"}`` per file, the file relative to ``model_dir``."""
    return [{"file": path.resolve().relative_to(model_dir.resolve()).as_posix(), "sha256": sha256_of(path),
             "bytes": path.stat().st_size} for path in files]


def check_lock(lock_path: str | os.PathLike, model_dir: str | os.PathLike,
               files: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``files`` against the lock file, reading nothing but their bytes: (facts, pinned), where
    pinned are the facts the lock records. A file whose sha256 or size differs from its row
    raises :class:`LockMismatch` naming both (the file is left in place for inspection)."""
    lock_path, model_dir = Path(lock_path), Path(model_dir)
    facts = file_facts(model_dir, files)
    entries = read_lock(lock_path)
    mismatches = [f for f in facts if f["file"] in entries
                  and (entries[f["file"]]["sha256"], entries[f["file"]]["bytes"]) != (f["sha256"], f["bytes"])]
    if mismatches:
        lines = []
        for fact in mismatches:
            recorded = entries[fact["file"]]
            short = " (shorter: an interrupted download?)" if fact["bytes"] < recorded["bytes"] else ""
            lines.append(f"{model_dir / fact['file']}: sha256 {fact['sha256']} ({fact['bytes']} bytes){short}, the "
                         f"lock file recorded {recorded['sha256']} ({recorded['bytes']} bytes)")
        raise LockMismatch(
            f"weight file(s) differ from the ones recorded in the lock file {lock_path}; nothing read them:\n  "
            + "\n  ".join(lines)
            + "\nFix: if the file was replaced by mistake or cut short, delete it and run again to download it anew; "
            "if you trust the new file (the authors re-uploaded it), delete its row from the lock file.",
            files=[model_dir / f["file"] for f in mismatches],
            short=[model_dir / f["file"] for f in mismatches if f["bytes"] < entries[f["file"]]["bytes"]],
        )
    return facts, [f for f in facts if f["file"] in entries]


def verify_or_record(lock_path: str | os.PathLike, model_dir: str | os.PathLike, files: list[Path],
                     log: logging.Logger = LOG) -> list[dict[str, Any]]:
    """Check ``files`` against the lock file (:func:`check_lock`); record those it does not know yet.

    Returns one ``{"file", "sha256", "bytes"}`` per file.
    """
    lock_path = Path(lock_path)
    with _locked_directory(lock_path.parent):
        facts, pinned = check_lock(lock_path, model_dir, files)
        entries = read_lock(lock_path)
        new = [f for f in facts if f["file"] not in entries]
        if new:
            for fact in new:
                entries[fact["file"]] = {"sha256": fact["sha256"], "bytes": fact["bytes"]}
                log.info("lock file %s: recorded %s sha256 %s", lock_path, fact["file"], fact["sha256"])
            _write_lock(lock_path, entries)
        if pinned:
            log.info("lock file %s: verified %s", lock_path, ", ".join(f["file"] for f in pinned))
    return facts
