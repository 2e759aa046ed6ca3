"""HDF5 nodes read from their own file alone, and only as large as the file holds them.

HDF5 can make a dataset read bytes that are not in the file at hand: an *external link* names a
node of another file, a dataset with *external storage* keeps its raw bytes in other files
(any file of the machine), and a *virtual dataset* maps other files' datasets. A soft link can
loop. And a dataset's declared shape says nothing of what is stored: chunks that were never
written read as the fill value, so a 3 MB file can declare 2^40 rows. A database file that the
workflow imports (``dataset.h5`` of the authors' filter database, docs/faults.md) is therefore
opened node by node through :func:`plain_node`, which accepts hard links to plain datasets and
groups only, and :func:`check_dataset`, which requires that every declared row is stored in the
file and that no chunk decodes to more than a bound.
"""

from __future__ import annotations

from typing import Any

# A chunk decodes into a buffer of its declared shape: the bound on one chunk's memory. The
# authors' files use chunks of a few MB; h5py's own heuristic targets at most 1 MB.
MAX_CHUNK_BYTES = 256 * 2**20


class UnsafeHDF5Error(ValueError):
    """An HDF5 node that would be read from another file, or declares more than its file holds."""


def plain_node(group: Any, name: str, where: str) -> Any:
    """``group[name]`` if it is a hard link to a group or a plain dataset (:func:`check_dataset`);
    raises KeyError if there is no such node and :class:`UnsafeHDF5Error` for anything else."""
    import h5py

    link = group.get(name, getlink=True)
    if link is None:
        raise KeyError(name)
    if isinstance(link, h5py.ExternalLink):
        raise UnsafeHDF5Error(f"{where}: node {name!r} is an external link to {link.filename}:{link.path}; "
                              "a database file is read from itself alone")
    if isinstance(link, h5py.SoftLink):
        raise UnsafeHDF5Error(f"{where}: node {name!r} is a soft link to {link.path}; only the node itself is read")
    if not isinstance(link, h5py.HardLink):
        raise UnsafeHDF5Error(f"{where}: node {name!r} is a link of an unknown kind ({type(link).__name__})")
    node = group[name]
    if isinstance(node, h5py.Dataset):
        check_dataset(node, f"{where}, node {name!r}")
    elif not isinstance(node, h5py.Group):
        raise UnsafeHDF5Error(f"{where}: node {name!r} is neither a group nor a dataset")
    return node


def check_dataset(dataset: Any, where: str, max_chunk_bytes: int = MAX_CHUNK_BYTES) -> None:
    """Raise :class:`UnsafeHDF5Error` unless ``dataset`` keeps every declared element in its own
    file: not virtual, no external storage, every chunk (or the contiguous block) allocated, and
    no chunk above ``max_chunk_bytes`` once decoded."""
    import h5py

    if dataset.is_virtual:
        raise UnsafeHDF5Error(f"{where} is a virtual dataset (it maps datasets of other files); "
                              "a database file is read from itself alone")
    if dataset.external:
        files = ", ".join(str(entry[0]) for entry in dataset.external)
        raise UnsafeHDF5Error(f"{where} keeps its values in external files ({files}); "
                              "a database file is read from itself alone")
    layout = dataset.id.get_create_plist().get_layout()
    if layout == h5py.h5d.COMPACT:
        return  # held in the node's header (at most 64 KB)
    if layout == h5py.h5d.CONTIGUOUS:
        stored = dataset.id.get_storage_size()
        if dataset.size and stored < dataset.size * dataset.dtype.itemsize:
            raise UnsafeHDF5Error(f"{where} declares shape {dataset.shape} ({dataset.size * dataset.dtype.itemsize} "
                                  f"bytes) but the file stores {stored} bytes of it")
        return
    if layout != h5py.h5d.CHUNKED:
        raise UnsafeHDF5Error(f"{where} has a storage layout HDF5 calls {layout}; only contiguous, chunked and "
                              "compact datasets are read")
    chunk_bytes = dataset.dtype.itemsize
    for extent in dataset.chunks:
        chunk_bytes *= extent
    if chunk_bytes > max_chunk_bytes:
        raise UnsafeHDF5Error(f"{where} has chunks of {dataset.chunks} ({chunk_bytes} bytes decoded), above the "
                              f"{max_chunk_bytes} bytes a reader decodes at once")
    expected = 1
    for extent, chunk in zip(dataset.shape, dataset.chunks):
        expected *= -(-extent // chunk)
    stored = dataset.id.get_num_chunks()
    if stored < expected:
        raise UnsafeHDF5Error(f"{where} declares shape {dataset.shape} in {expected} chunks of {dataset.chunks} but "
                              f"the file stores {stored} of them")
