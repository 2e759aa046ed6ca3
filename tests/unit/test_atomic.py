"""Outputs are replaced without ever losing the old one: a failure at any step leaves the old
output or the new one whole, and a full or read-only file system is one clear error."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from conftest import fill, remount_read_only, write_filter_store

from filterlens.extract.store import open_filter_store
from filterlens.io import atomic
from filterlens.io.atomic import OutputWriteError, atomic_output, partial_path, previous_path, recover
from filterlens.io.files import write_npz, write_tsv


def _write_dir(path, text):
    path.mkdir()
    (path / "a").write_text(text)
    (path / "sub").mkdir()
    (path / "sub" / "b").write_text(text * 2)


def _read_dir(path):
    return {p.relative_to(path).as_posix(): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_a_successful_write_replaces_the_old_output_and_leaves_nothing_beside(tmp_path, kind):
    final = tmp_path / "out"
    for text in ("old", "new"):
        with atomic_output(final) as temporary:
            temporary.write_text(text) if kind == "file" else _write_dir(temporary, text)
    assert (final.read_text() if kind == "file" else _read_dir(final)) == (
        "new" if kind == "file" else {"a": "new", "sub/b": "newnew"})
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_a_failure_while_writing_keeps_the_old_output(tmp_path, kind):
    final = tmp_path / "out"
    final.write_text("old") if kind == "file" else _write_dir(final, "old")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_output(final) as temporary:
            temporary.write_text("half") if kind == "file" else _write_dir(temporary, "half")
            raise RuntimeError("midway")
    assert (final.read_text() if kind == "file" else _read_dir(final)) == (
        "old" if kind == "file" else {"a": "old", "sub/b": "oldold"})
    assert _leftovers(tmp_path) == []


class _FailingReplace:
    """os.replace that raises at its ``n``-th call (an injected failure of one rename)."""

    def __init__(self, n):
        self.n, self.calls, self.real = n, 0, os.replace

    def __call__(self, src, dst):
        self.calls += 1
        if self.calls == self.n:
            raise OSError(5, "injected I/O error", str(dst))
        return self.real(src, dst)


@pytest.mark.parametrize("failing_call", [1, 2])
@pytest.mark.parametrize("old_kind", ["directory", "file"])
def test_a_failed_rename_of_a_directory_leaves_the_old_output_whole(tmp_path, monkeypatch, failing_call, old_kind):
    """A directory replaces an old one in two renames (old aside, new in): whichever fails,
    the old output is back in place and nothing else is left."""
    final = tmp_path / "out.zarr"
    final.write_text("old file") if old_kind == "file" else _write_dir(final, "old")
    before = final.read_text() if old_kind == "file" else _read_dir(final)
    replace = _FailingReplace(failing_call)
    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="injected"):
        with atomic_output(final) as temporary:
            _write_dir(temporary, "new")
    assert replace.calls >= failing_call
    assert (final.read_text() if old_kind == "file" else _read_dir(final)) == before
    assert _leftovers(tmp_path) == []


def test_a_failure_to_remove_the_old_directory_keeps_the_new_one(tmp_path, monkeypatch):
    final = tmp_path / "out.zarr"
    _write_dir(final, "old")
    real_remove = atomic._remove

    def remove(path):
        if path == previous_path(final) and path.exists():
            raise OSError(16, "injected: busy", str(path))
        real_remove(path)

    monkeypatch.setattr(atomic, "_remove", remove)
    with atomic_output(final) as temporary:
        _write_dir(temporary, "new")
    assert _read_dir(final) == {"a": "new", "sub/b": "newnew"}
    monkeypatch.setattr(atomic, "_remove", real_remove)
    recover(final)  # the next write does this first
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("next_write_fails", [False, True])
def test_a_process_killed_between_the_two_renames_loses_nothing(tmp_path, next_write_fails):
    """Killed after the old directory was moved aside and before the new one was renamed in:
    the old one is whole beside it, and the next write of that output puts it back first."""
    final = tmp_path / "out.zarr"
    _write_dir(previous_path(final), "old")  # the state such a kill leaves
    _write_dir(partial_path(final), "new, complete or not")
    if next_write_fails:
        with pytest.raises(RuntimeError):
            with atomic_output(final):
                raise RuntimeError("fails again")
        assert _read_dir(final) == {"a": "old", "sub/b": "oldold"}
    else:
        with atomic_output(final) as temporary:
            _write_dir(temporary, "new")
        assert _read_dir(final) == {"a": "new", "sub/b": "newnew"}
    assert _leftovers(tmp_path) == []


def test_a_process_killed_after_the_second_rename_keeps_the_new_output(tmp_path):
    final = tmp_path / "out.zarr"
    _write_dir(final, "new")
    _write_dir(previous_path(final), "old")
    recover(final)
    assert _read_dir(final) == {"a": "new", "sub/b": "newnew"} and _leftovers(tmp_path) == []


# --- real full and read-only file systems (a tmpfs mounted for the test; root only) ---------

def _table(rows):
    return pd.DataFrame({"x": np.arange(rows, dtype=float) / 7})


def test_a_full_disk_while_writing_a_table_is_one_message_and_keeps_the_old_table(small_tmpfs):
    path = small_tmpfs / "summaries" / "layers.tsv"
    write_tsv(_table(10), path)
    old = path.read_bytes()
    fill(small_tmpfs, leave_bytes=0)
    with pytest.raises(OutputWriteError) as raised:
        write_tsv(_table(20000), path)
    message = str(raised.value)
    assert message.startswith(f"cannot write {path}: no space left on the file system of {path.parent}"), message
    assert "the old output is kept as it was" in message and "Fix: free space there" in message, message
    assert path.read_bytes() == old
    assert _leftovers(path.parent) == []


def test_a_full_disk_while_writing_arrays_leaves_no_partial_file(small_tmpfs):
    path = small_tmpfs / "moments.npz"
    fill(small_tmpfs, leave_bytes=4096)
    with pytest.raises(OutputWriteError, match=r"no space left.*nothing was written\. Fix: free space"):
        write_npz(path, big=np.random.default_rng(0).standard_normal(100000))
    assert not path.exists() and _leftovers(small_tmpfs) == []


@pytest.mark.parametrize("free_bytes", [0, 16384], ids=["no room for the store's metadata", "room for a few chunks"])
def test_a_full_disk_while_extracting_a_store_keeps_the_old_store(small_tmpfs, free_bytes):
    rng = np.random.default_rng(0)
    path = small_tmpfs / "filters" / "toy.zarr"
    small = rng.standard_normal((16, 9)).astype(np.float32)
    write_filter_store(path, [(2, 8, 1)], [small], 8)
    fill(small_tmpfs, leave_bytes=free_bytes)
    big = rng.standard_normal((60000, 9)).astype(np.float32)  # 2 MB of incompressible rows
    with pytest.raises(OutputWriteError, match=r"cannot write .*toy.zarr: no space left.*old output is kept"):
        write_filter_store(path, [(300, 200, 1)], [big], 4096)
    np.testing.assert_array_equal(open_filter_store(path).filters[:], small)
    assert _leftovers(path.parent) == []


def test_a_read_only_file_system_is_one_message_and_keeps_the_old_output(small_tmpfs):
    path = small_tmpfs / "layers.tsv"
    write_tsv(_table(3), path)
    old = path.read_bytes()
    remount_read_only(small_tmpfs)
    with pytest.raises(OutputWriteError) as raised:
        write_tsv(_table(5), path)
    assert "is on a read-only file system" in str(raised.value) and "Fix: remount it writable" in str(raised.value)
    with pytest.raises(OutputWriteError, match="read-only file system"):
        write_tsv(_table(5), small_tmpfs / "new" / "table.tsv")  # even the folder cannot be made
    assert path.read_bytes() == old


def test_a_store_on_a_read_only_file_system_is_one_message_and_keeps_the_old_store(small_tmpfs):
    path = small_tmpfs / "toy.zarr"
    rows = np.random.default_rng(0).standard_normal((16, 9)).astype(np.float32)
    write_filter_store(path, [(2, 8, 1)], [rows], 8)
    remount_read_only(small_tmpfs)
    with pytest.raises(OutputWriteError, match=r"toy.zarr: .* is on a read-only file system.*old output is kept"):
        write_filter_store(path, [(2, 8, 1)], [rows * 2], 8)
    np.testing.assert_array_equal(open_filter_store(path).filters[:], rows)


def test_a_read_only_folder_is_named_before_any_job_and_a_missing_one_is_fine(small_tmpfs, tmp_path):
    from filterlens.io.atomic import unwritable_folders

    (small_tmpfs / "results").mkdir()
    assert unwritable_folders([small_tmpfs / "results", tmp_path / "absent"]) == []
    remount_read_only(small_tmpfs)
    (problem,) = unwritable_folders([small_tmpfs / "results", tmp_path / "absent"])
    assert problem.startswith(f"{small_tmpfs / 'results'} is on a read-only file system"), problem
    assert "Fix: remount it writable" in problem, problem
