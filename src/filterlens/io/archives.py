"""Archives read within what they hold: a torch.save file's zip entries stored, not compressed."""

from __future__ import annotations

import os
import zipfile


def stored_zip_problem(path: str | os.PathLike) -> str | None:
    """torch.save's zip archive stores every entry uncompressed, so what torch.load reads is
    bounded by the file's size; a compressed entry could inflate far beyond it (a zip bomb)."""
    try:
        if not zipfile.is_zipfile(path):  # raises on some damaged end records
            return None  # safetensors, or torch's legacy format: read within the file's size
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as error:  # ValueError: a name not UTF-8
        return f"is a damaged zip archive ({error})"
    if packed := [entry.filename for entry in entries if entry.compress_type != zipfile.ZIP_STORED]:
        return (f"holds compressed zip entries ({', '.join(packed[:3])}), which torch.save never writes and which "
                "could inflate beyond the file's size; save it again with torch.save")
    return None
