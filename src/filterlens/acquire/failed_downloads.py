"""What a failed download leaves in place of a weight or data file: nothing, a saved web page, a cut-off file.

Google Drive (RobustBench's downloads) answers a quota or virus-scan check with an HTML page,
and an interrupted download can leave an empty file. Both the acquisition
(:func:`filterlens.acquire.robustbench_weights.file_problem`) and :func:`filterlens.acquire.checkpoint.load_checkpoint`
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


# --- integrity and checksums of downloaded data files ------------------------------------------

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def hdf5_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a complete HDF5 file, or None. Reads the superblock only (no HDF5
    library): its signature, and its end-of-file address against the file's size, which an
    interrupted download leaves short."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        offset = 0
        while True:  # the superblock sits at 0, 512, 1024, 2048, ... (after a user block)
            handle.seek(offset)
            if handle.read(8) == HDF5_SIGNATURE:
                break
            offset = 512 if offset == 0 else offset * 2
            if offset + 8 > size:
                return f"is not an HDF5 file ({size} bytes, no HDF5 signature)"
        head = handle.read(64)
    if len(head) < 8:
        return f"is truncated ({size} bytes: the HDF5 superblock is cut off)"
    version = head[0]
    if version in (0, 1):
        width = head[5]
        start = 16 + (4 if version == 1 else 0)
        fields = [head[start + i * width:start + (i + 1) * width] for i in range(3)]  # base, free space, eof
        base, eof = fields[0], fields[2]
    elif version in (2, 3):
        width = head[1]
        base, eof = head[4:4 + width], head[4 + 2 * width:4 + 3 * width]
    else:
        return f"has an unknown HDF5 superblock version {version}"
    if width not in (2, 4, 8) or len(eof) != width:
        return f"is truncated ({size} bytes: the HDF5 superblock is cut off)"
    end = int.from_bytes(base, "little") + int.from_bytes(eof, "little")
    if end > size:
        return (f"is truncated: {size} bytes of the {end} its HDF5 superblock announces (an interrupted "
                "download)")
    return None


def npy_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a complete .npy array of numbers, or None (header only; no pickle)."""
    import numpy as np

    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
    except (ValueError, OSError, EOFError) as error:
        return f"is not a .npy array ({size} bytes: {error})"
    if dtype.hasobject:
        return "holds Python objects (a pickle), not numbers"
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        return f"is truncated: {size} bytes of the {expected} its header announces (an interrupted download)"
    return None


def parse_checksum(text: str) -> tuple[str, str]:
    """``"md5:<32 hex>"`` or ``"sha256:<64 hex>"`` (Zenodo's notation) as (algorithm, lower-case hex)."""
    algorithm, _, digest = str(text).partition(":")
    algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
    length = {"md5": 32, "sha256": 64}.get(algorithm)
    if length is None or len(digest) != length or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"checksum {text!r} is not 'md5:<32 hex digits>' or 'sha256:<64 hex digits>'")
    return algorithm, digest


def checksum_problem(path: str | os.PathLike, checksum: str) -> str | None:
    """``"has md5 ..., expected ..."`` if the file's digest differs from ``checksum``, else None."""
    import hashlib

    algorithm, expected = parse_checksum(checksum)
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != expected:
        return (f"has {algorithm} {actual} ({Path(path).stat().st_size} bytes), expected {expected} (an "
                "interrupted or altered download)")
    return None


def data_file_problem(path: str | os.PathLike, checksum: str | None = None) -> str | None:
    """What is wrong with a downloaded or given data file, before any parser opens it: a failed
    download (empty, an HTML page), a checksum that differs, or (without a checksum) an HDF5 or
    .npy file that is cut short. None if none of these."""
    path = Path(path)
    if path.is_dir():  # a Zarr store: its reader checks every chunk
        return None
    if problem := failed_download_problem(path):
        return problem
    if checksum:
        return checksum_problem(path, checksum)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5", ".hdf"):
        return hdf5_problem(path)
    if suffix == ".npy":
        return npy_problem(path)
    return None
