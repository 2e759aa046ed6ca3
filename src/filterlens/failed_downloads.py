"""What a failed download leaves in place of a weight file: nothing, or a saved web page.

Google Drive (RobustBench's downloads) answers a quota or virus-scan check with an HTML page,
and an interrupted download can leave an empty file. Both the acquisition
(:func:`filterlens.acquire.file_problem`) and :func:`filterlens.checkpoint.load_checkpoint`
ask :func:`failed_download_problem` before they try to read weights. No torch here.
"""

from __future__ import annotations

import os
from pathlib import Path

HEAD_BYTES = 512
HTML_PREFIXES = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<meta")


def failed_download_problem(path: str | os.PathLike) -> str | None:
    """``"is empty (...)"`` or ``"is an HTML/XML page, not weights (...)"`` for a file that a
    failed download left, else None (the file may still be truncated or corrupt: the caller's
    reader decides that). Raises OSError if the file cannot be read."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES).lstrip().lower()
    if not head and size <= HEAD_BYTES:
        return "is empty (0 bytes)" if size == 0 else f"is empty ({size} bytes of white space)"
    if head.startswith(HTML_PREFIXES):
        return ("is an HTML/XML page, not weights (a failed download: an HTML page such as Google Drive's "
                "quota or confirmation page)")
    return None
