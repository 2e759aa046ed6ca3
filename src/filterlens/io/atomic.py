"""Outputs appear complete or not at all, and an old output is never lost to a failed write.

Everything is written under a temporary name beside its destination (``.<name>.partial``) and
renamed into place when complete; a job killed at any moment leaves only a ``.partial`` path
that no rule reads and the next write of that output removes.

A file replaces its old version in one ``os.replace``: at every moment the destination holds
the old file or the new one. A directory (a Zarr store) cannot be renamed over an existing
one, so the old directory is first moved aside (``.<name>.previous``), the new one renamed
into place, and only then the old one removed; if the second rename fails, the old directory
is moved back. A process killed between the two renames leaves the old output whole under
``.<name>.previous``: the next write of that output (or :func:`recover`) puts it back first.

A write that fails for want of space or permission (disk full, a read-only file system) is
reported as :class:`OutputWriteError`, one message naming the output, the cause and the fix.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# errors of the file system that holds the output, not of the data being written
_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS}
_PERMISSION = {errno.EACCES, errno.EPERM}


class OutputWriteError(OSError):
    """An output could not be written; the message names it, the cause and the fix."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def partial_path(path: str | os.PathLike, writer: int | None = None) -> Path:
    """The temporary name of ``path`` while it is written; with ``writer`` (a process id), one of
    its own for each of several processes that may write the same output at once."""
    path = Path(path)
    return path.with_name(f".{path.name}.{writer}.partial" if writer is not None else f".{path.name}.partial")


def previous_path(path: str | os.PathLike) -> Path:
    """Where an old directory output waits while its replacement is renamed into place."""
    path = Path(path)
    return path.with_name(f".{path.name}.previous")


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif _exists(path):
        path.unlink()


def _remove_settled(path: Path, attempts: int = 20) -> None:
    """Remove ``path`` and make sure it stays removed: a failed Zarr write may still have chunk
    writes in flight on other threads, which recreate folders under ``path`` for a moment."""
    for _ in range(attempts):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif _exists(path):
            path.unlink(missing_ok=True)
        time.sleep(0.05)
        if not _exists(path):
            return
    _remove(path)


def recover(path: str | os.PathLike) -> None:
    """Finish or undo a replacement that a killed process left half done.

    ``.<name>.previous`` without ``<name>``: the old output was moved aside and the new one
    never arrived; the old one is put back. Both present: the new one arrived; the old one goes.
    """
    final, previous = Path(path), previous_path(path)
    if not _exists(previous):
        return
    if _exists(final):
        _remove(previous)
    else:
        os.replace(previous, final)


def _is_about(error: OSError, *paths: Path) -> bool:
    """Whether ``error`` concerns one of ``paths`` or something beneath them."""
    names = [n for n in (error.filename, getattr(error, "filename2", None)) if n]
    for name in names:
        name = os.path.abspath(os.fspath(name))
        for path in paths:
            root = os.path.abspath(path)
            if name == root or name.startswith(root + os.sep):
                return True
    return False


def write_error(error: BaseException, final: Path, kept: str) -> OutputWriteError | None:
    """The :class:`OutputWriteError` for ``error`` when it is the file system's (space,
    read-only, permission) in writing ``final``, else None. ``kept`` says what is left."""
    if isinstance(error, OutputWriteError) or not isinstance(error, OSError) or error.errno is None:
        return None
    code = error.errno
    where = final.parent
    if code in _SPACE:
        cause = f"no space left on the file system of {where} ({error.strerror})"
        fix = f"free space there (df -h {where}) or move the working directory, then rerun"
    elif code in _READ_ONLY:
        cause = f"{where} is on a read-only file system ({error.strerror})"
        fix = "remount it writable or run in a writable working directory, then rerun"
    elif code in _PERMISSION and _is_about(error, final.parent):
        cause = f"no permission to write in {where} ({error.strerror})"
        fix = f"make {where} writable for this user (ls -ld {where}), then rerun"
    else:
        return None
    return OutputWriteError(code, f"cannot write {final}: {cause}; {kept}. Fix: {fix}.")


@contextmanager
def atomic_output(path: str | os.PathLike, shared: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write (a file or a directory); rename it to ``path`` on success.

    On an exception the temporary path is removed and ``path`` is left as it was; a failure
    for want of space or permission becomes :class:`OutputWriteError`.

    ``shared``: several processes may write this file at once, with the same content (a cache
    such as the sheet check's marker, written by every Snakemake process that parses the
    workflow). Each then writes a temporary of its own, named by its process id, so that none
    removes or renames another's half-written one; the last rename wins.
    """
    final = Path(path)
    temporary = partial_path(final, os.getpid() if shared else None)
    had_old = _exists(final) or _exists(previous_path(final))
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        recover(final)
        _remove(temporary)
        yield temporary
        _replace(temporary, final)
    except BaseException as error:
        try:
            _remove_settled(temporary)
        except OSError:
            pass  # the next write of this output removes it
        kept = "the old output is kept as it was" if had_old else "nothing was written"
        if (wrapped := write_error(error, final, kept)) is not None:
            raise wrapped from error
        raise


def _replace(temporary: Path, final: Path) -> None:
    """Put ``temporary`` at ``final``; ``final`` holds the old or the new output throughout,
    or, for a directory between the two renames, the old one is whole at its previous path."""
    def is_dir(p: Path) -> bool:
        return p.is_dir() and not p.is_symlink()

    if not _exists(final) or not (is_dir(final) or is_dir(temporary)):
        os.replace(temporary, final)  # atomic: a file over a file, or nothing there yet
        return
    previous = previous_path(final)
    _remove(previous)
    os.replace(final, previous)
    try:
        os.replace(temporary, final)
    except BaseException:
        os.replace(previous, final)
        raise
    try:
        _remove(previous)
    except OSError:
        pass  # the new output is in place; recover() removes the old one next time


def unwritable_folders(folders: list[str | os.PathLike]) -> list[str]:
    """The existing ``folders`` that this process cannot write (a read-only file system, or
    no permission), each as a message with the fix; folders not there yet are fine."""
    problems = []
    for folder in map(Path, folders):
        if not folder.is_dir() or os.access(folder, os.W_OK):
            continue
        try:
            read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        if read_only:
            problems.append(f"{folder} is on a read-only file system, and jobs write their outputs there. Fix: "
                            "remount it writable or run in a writable working directory (--directory); nothing "
                            "was run")
        else:
            problems.append(f"{folder} is not writable for this user (ls -ld {folder}). Fix: make it writable or "
                            "run in a writable working directory (--directory); nothing was run")
    return problems
