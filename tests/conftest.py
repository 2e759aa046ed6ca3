"""Shared test helpers: the repository, running the real Snakefile in a directory, and small
filter stores written through the real writer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
# The measurement's Snakefile: the workflow as a module, the copy floor and the scale report.
PERF_SNAKEFILE = REPO / "dev" / "perf" / "Snakefile"


def run_snakemake(workdir: Path, *args: str, check: bool = True, snakefile: Path = REPO / "Snakefile"
                  ) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile (or ``snakefile``) with ``workdir`` as working directory."""
    command = [str(SNAKEMAKE), "--snakefile", str(snakefile), "--directory", str(workdir), *args]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the micro config (two tiny models, one epoch), shared by the tests.

    Under pytest-xdist every worker asks for it: the first one runs it, the others wait on the
    lock and reuse the finished directory (the tests only read it or copy it)."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # gw0, gw1, ... share the parent of their base directories
    workdir = shared / "micro-run"
    with FileLock(str(shared / "micro-run.lock")):
        if not (shared / "micro-run.finished").is_file():
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir()
            run_snakemake(workdir, "--configfile", str(REPO / "config" / "micro.yaml"), "--cores", "2")
            (shared / "micro-run.finished").touch()
    return workdir


def load_tool(name: str):
    """A script of dev/perf/ as a module (the benchmarks are not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "dev" / "perf" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_filter_store(path: Path, shapes, rows, chunk_rows: int, names=None, dataset="coloured_digits") -> Path:
    """A filter store at ``path`` (model id: its stem) of the layers ``shapes`` ((c_in, c_out,
    groups) each, at conv depth = position) holding ``rows`` (one (n, 9) array per layer)."""
    import numpy as np

    from filterlens.extract.layer_table import Layer
    from filterlens.extract.store import FilterStoreWriter

    names = names or [f"conv{index}" for index in range(len(shapes))]
    layers, start = [], 0
    for index, ((c_in, c_out, groups), weights) in enumerate(zip(shapes, rows)):
        layers.append(Layer(index, names[index], index, index / max(len(shapes) - 1, 1), c_in, c_out, groups,
                            start, start + len(weights), False))
        start += len(weights)
    attrs = {"model_id": Path(path).stem, "dataset": dataset, "depth_method": "fx", "max_conv_depth": len(shapes) - 1}
    with FilterStoreWriter(path, start, chunk_rows, attrs) as writer:
        for layer, weights in zip(layers, rows):
            writer.write_layer(layer, np.asarray(weights))
    return path


def mount_tmpfs(path: Path, size_kib: int) -> None:
    """Mount a tmpfs of ``size_kib`` at ``path`` (root only); pytest.skip naming why elsewhere."""
    if os.geteuid() != 0:
        pytest.skip("a full or read-only file system is emulated with a tmpfs mount, which needs root")
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or result.returncode})")


def remount_read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def unmount(path: Path) -> None:
    subprocess.run(["umount", "--lazy", str(path)], check=False)


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 256 KiB tmpfs (root only, skipped elsewhere), unmounted after the test."""
    mount = tmp_path / "tmpfs"
    mount_tmpfs(mount, 256)
    try:
        yield mount
    finally:
        unmount(mount)


def fill(path: Path, leave_bytes: int = 0) -> None:
    """Fill the file system of ``path`` up to ``leave_bytes`` free, with a file in ``path``."""
    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    with open(path / "filler", "wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))


class CodeRunningPayload:
    """A crafted object: unpickling it runs a shell command that creates ``marker``. The tests
    put it into checkpoints and databases and require that the marker never appears."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


FAKE_RUN_BINS = 8


def fake_run(root: Path) -> Path:
    """The files of a finished micro run that a bundle reads, with small made-up contents."""
    import json

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    analysis = root / "results" / "analysis"
    analysis.mkdir(parents=True)
    components = np.linalg.qr(rng.normal(size=(9, 9)))[0]
    np.savez(analysis / "basis_full.npz", n=np.asarray(100), mean=np.zeros(9), components=components,
             explained_variance=np.linspace(9, 1, 9), ratio=np.linspace(9, 1, 9) / 45)
    pd.DataFrame({"min": [-1.0], "max": [1.0]}).to_csv(analysis / "coefficient_range.tsv", sep="\t", index=False)
    pd.DataFrame({"set": ["full"], "ratio": [1.0]}).to_csv(analysis / "bases.tsv", sep="\t", index=False)
    for model in ("micro_normal", "micro_robust"):
        folder = root / "results" / "summaries" / model
        folder.mkdir(parents=True)
        pd.DataFrame({"model_id": model, "layer_id": [0, 1, 2], "name": ["0", "1", "2"],
                      "depth_group": ["first", "0.4-0.5", "0.9-1.0"]}).to_csv(folder / "layers.tsv", sep="\t",
                                                                               index=False)
        np.savez(folder / "histograms.npz", counts=rng.integers(0, 5, size=(3, 9, FAKE_RUN_BINS)), low=-1.0, high=1.0)
    provenance = root / "results" / "provenance"
    provenance.mkdir(parents=True)
    (provenance / "provenance.json").write_text(json.dumps({
        "config": {"analysis": {"depth_definition": "graph_level"}, "extraction": {"fold_batchnorm": True}},
        "packages": {"numpy": np.__version__}, "sheet": {"path": str(REPO / "config" / "models" / "micro.tsv")}}))
    return root


def bundle_members(archive: Path) -> dict[str, bytes]:
    """A bundle's members by name, unchecked."""
    import tarfile

    with tarfile.open(archive, "r:gz") as tar:
        return {info.name: tar.extractfile(info).read() for info in tar}


def rewrite_bundle(archive: Path, members: dict[str, bytes], fix_manifest: bool = True) -> None:
    """The archive with ``members`` and a matching sha256 file; ``fix_manifest``: the manifest's
    checksums made to match too (a careful forgery)."""
    import hashlib
    import io
    import json
    import tarfile

    from filterlens.analyse.bundle import checksum_path

    if fix_manifest:
        manifest = json.loads(members["manifest.json"])
        manifest["members"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n != "manifest.json"}
        members = {**members, "manifest.json": json.dumps(manifest).encode()}
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    checksum_path(archive).write_text(f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  x\n")
