"""What a path names, in words a message can use: a file that the workflow reads must be a
regular file (or a symlink to one), never a folder, a named pipe (which would block the reader),
a device (``/dev/zero`` never ends) or a symlink that loops or leads nowhere."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def regular_file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a regular file to read, as a phrase ("does not exist", "is a folder,
    not a regular file", ...), or None."""
    path = Path(path)
    try:
        mode = path.stat().st_mode  # follows a symlink to what it names
    except FileNotFoundError:
        return "is a symlink to a file that does not exist" if path.is_symlink() else "does not exist"
    except OSError as error:  # a symlink loop, a folder without permission
        return f"cannot be reached ({error.strerror})"
    if stat.S_ISREG(mode):
        return None
    kind = "a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode) else "a device or socket"
    return f"is {kind}, not a regular file"
