"""Byte-level fuzzing of every reader of an outside file, in a process of bounded memory.

    python tests/fuzz_readers.py READER EXAMPLES SEED FOLDER

makes a valid input for READER in FOLDER, then EXAMPLES damaged copies of it (bytes overwritten,
the file cut short, a slice repeated, a metadata value replaced), feeds each to the reader and
prints one JSON line: the examples whose reader raised anything but the project's own error,
and the process's peak memory above what it held before the first example. The address space
is capped (RLIMIT_AS) so that an allocation a file cannot justify fails here as a MemoryError,
which counts as a failure, instead of taking the machine's memory. tests/unit/test_fuzz_readers.py
runs it for each reader.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import traceback
from pathlib import Path

import numpy as np

ADDRESS_SPACE = 6 * 2**30  # torch's CUDA build maps a few GB of address space at import


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """``data`` with bytes overwritten, cut short or a slice repeated."""
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0 and data:  # a few bytes overwritten
        for position in rng.integers(0, len(data), size=rng.integers(1, 9)):
            data[position] = int(rng.integers(256))
    elif kind == 1 and data:  # cut short
        del data[int(rng.integers(len(data))):]
    elif kind == 2 and data:  # a slice repeated in place
        start = int(rng.integers(len(data)))
        stop = min(len(data), start + int(rng.integers(1, 64)))
        data[start:start] = data[start:stop] * int(rng.integers(1, 4))
    elif data:  # 32-bit little-endian integers set to large values (sizes, offsets, counts)
        for position in rng.integers(0, max(1, len(data) - 4), size=rng.integers(1, 4)):
            data[position:position + 4] = int(rng.choice([2**31 - 1, 2**32 - 1, 2**24, 0])).to_bytes(4, "little")
    return bytes(data)


# --- the readers: a valid input, the damage, the read, the project's own errors --------------

def store_input(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import write_filter_store

    rows = np.random.default_rng(0).standard_normal((32, 9)).astype(np.float32)
    return write_filter_store(folder / "valid.zarr", [(3, 4, 1), (4, 5, 1)], [rows[:12], rows[12:]], 8, ["a", "b"])


def store_damage(valid: Path, target: Path, rng: np.random.Generator) -> None:
    shutil.copytree(valid, target)
    files = sorted(p for p in target.rglob("*") if p.is_file() and not p.name.startswith("."))
    victim = files[int(rng.integers(len(files)))]
    victim.write_bytes(mutate(victim.read_bytes(), rng))


def store_read(path: Path) -> None:
    from filterlens.extract.store import open_filter_store
    from filterlens.reduce.passes import summarize
    from filterlens.reduce.streaming import rows_per_segment

    summarize(open_filter_store(path), 1, rows_per_segment(200, 1))


def filterdb_input(folder: Path) -> Path:
    import h5py
    import pandas as pd

    meta = pd.DataFrame({"model_id": ["m", "m"], "conv_depth": [0, 1], "conv_depth_norm": [0.0, 1.0],
                         "layer_id": [0, 1], "filter_ids": ["0:11", "12:31"], "Name": ["m_13", "m_13"]})
    path = folder / "valid.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("filters", data=np.random.default_rng(0).standard_normal((32, 9)).astype(np.float32),
                              chunks=(8, 9), compression="gzip")
    meta.set_index(["model_id", "conv_depth", "conv_depth_norm", "layer_id"]).to_hdf(path, key="meta")
    return path


def file_damage(valid: Path, target: Path, rng: np.random.Generator) -> None:
    target.write_bytes(mutate(valid.read_bytes(), rng))


def filterdb_read(path: Path) -> None:
    from filterlens.extract.filterdb import check_file, import_model, read_meta

    check_file(path, None, downloaded=False)
    meta = read_meta(path)
    import_model(path, meta, path.with_suffix(".zarr"), "m", "cifar10", database_name="m_13", chunk_rows=8)


def weights_input(folder: Path) -> Path:
    import torch

    path = folder / "valid.pt"
    torch.manual_seed(0)
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).state_dict(), path)
    return path


def weights_read(path: Path) -> None:
    from filterlens.acquire.checkpoint import usable_tensors
    from filterlens.acquire.local import read_state_dict

    state = read_state_dict(path)
    usable_tensors(state, state, str(path))


def checkpoint_input(folder: Path) -> Path:
    import torch

    from filterlens.acquire.checkpoint import Checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    path = folder / "valid.pt"
    save_checkpoint(Checkpoint(model_id="m", dataset="cifar10", num_classes=10, architecture="python",
                               arch_kwargs={}, normalization=None, source="local", state_dict=model.state_dict()),
                    path)
    return path


def checkpoint_read(path: Path) -> None:
    from filterlens.acquire.checkpoint import load_checkpoint

    load_checkpoint(path, "m", "cifar10")


def config_input(folder: Path) -> Path:
    path = folder / "valid.yaml"
    shutil.copy(Path(__file__).parents[1] / "config" / "config.yaml", path)
    return path


def config_read(path: Path) -> None:
    """As the workflow: Snakemake parses the YAML (its errors name the file and line), then the
    config is checked against the schema."""
    import yaml

    from filterlens.config.validation import CONFIG_SCHEMA, check_config

    try:
        config = yaml.safe_load(path.read_text(errors="strict"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return  # Snakemake's own refusal, before any of the project's code
    check_config(config if isinstance(config, dict) else {"(not a mapping)": config}, CONFIG_SCHEMA)


def bundle_input(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import REPO, fake_run

    from filterlens.analyse.bundle import export_bundle

    archive = folder / "valid.tar.gz"
    export_bundle(fake_run(folder / "run"), archive, REPO / "config" / "models" / "micro.tsv")
    return archive


def bundle_damage(valid: Path, target: Path, rng: np.random.Generator) -> None:
    """One member damaged in a careful forgery: the manifest's and the archive's checksums made
    to match, so that the damage reaches the member's parser."""
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import bundle_members, rewrite_bundle

    members = bundle_members(valid)
    names = sorted(members)
    victim = names[int(rng.integers(len(names)))]
    members[victim] = mutate(members[victim], rng)
    rewrite_bundle(target, members, fix_manifest=victim != "manifest.json")


def bundle_read(path: Path) -> None:
    from filterlens.analyse.bundle import read_bundle

    read_bundle(path)


def sheet_input(folder: Path) -> Path:
    path = folder / "valid.tsv"
    header = "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc"
    rows = ['a\tcoloured_digits\twide_resnet\t{"depth": 10, "widen_factor": 1}\tfalse\tminizoo\t\t\t\t',
            'b\tcoloured_digits\twide_resnet\t{"depth": 10, "widen_factor": 1}\ttrue\tminizoo\t\ta\t91.5\t']
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def sheet_read(path: Path) -> None:
    from filterlens.config.sheet import read_sheet

    read_sheet(path)


def _errors(reader: str) -> tuple[type[BaseException], ...]:
    from filterlens.acquire.checkpoint import CheckpointError
    from filterlens.analyse.bundle import BundleError
    from filterlens.config.sheet import SheetError
    from filterlens.config.validation import ConfigError
    from filterlens.extract.filterdb import FilterDBError
    from filterlens.extract.store import FilterStoreError

    return {"store": (FilterStoreError,), "filterdb": (FilterDBError, FilterStoreError),
            "weights": (CheckpointError,), "checkpoint": (CheckpointError,), "sheet": (SheetError,),
            "config": (ConfigError,), "bundle": (BundleError,)}[reader]


READERS = {
    "store": (store_input, store_damage, store_read),
    "filterdb": (filterdb_input, file_damage, filterdb_read),
    "weights": (weights_input, file_damage, weights_read),
    "checkpoint": (checkpoint_input, file_damage, checkpoint_read),
    "sheet": (sheet_input, file_damage, sheet_read),
    "config": (config_input, file_damage, config_read),
    "bundle": (bundle_input, bundle_damage, bundle_read),
}


def main(reader: str, examples: int, seed: int, folder: Path) -> dict:
    make, damage, read = READERS[reader]
    valid = make(folder)
    read(valid)  # the valid input reads, and every import is paid before the baseline
    own = _errors(reader)
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rng = np.random.default_rng(seed)
    failures, refused = [], 0
    for example in range(examples):
        target = folder / f"example{example}{valid.suffix}"
        damage(valid, target, rng)
        try:
            read(target)
        except own:
            refused += 1
        except BaseException:  # noqa: BLE001 - anything else is what the fuzzing looks for
            failures.append({"example": example, "error": traceback.format_exc(limit=-3)[-1500:]})
        finally:
            for leftover in (target, target.with_suffix(".zarr"), Path(f"{target}.sha256")):
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"reader": reader, "examples": examples, "refused": refused, "failures": failures,
            "extra_peak_kb": peak - before}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))))
