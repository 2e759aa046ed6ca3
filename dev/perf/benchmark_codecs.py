"""Benchmark of the filter store's codec: disk, write and read time per filter, by codec.

    python dev/perf/benchmark_codecs.py [--stores 'results/filters/*.zarr'] [--scale-models KEY ...]
                                     [--max-filters 2000000] [--chunk-rows 65536] [--repeat 3]

The same (n, 9) float32 filters are written into a Zarr array with each candidate codec
(:func:`codecs`; CRC32C always last, as in the stores) and read back. Two kinds of filters:

    trained   the filters of the filter stores given with --stores (all of them together),
              e.g. a run's results/filters/*.zarr
    random    real architectures of config/models/scale.tsv (--scale-models, by source_key)
              with the seeded random initial weights of rule random_init, BatchNorm folded as
              dev/perf/config/scale.yaml extracts them

Each set is cut to at most --max-filters rows (every k-th row, so every layer keeps its
share; whole chunks where it fills more than one). Per codec and set:

    bytes_per_filter  on disk (chunk files: payload and CRC32C), and disk_vs_none
    write_ns          writing the array through Zarr, per filter
    decode_ns_1t      the codec alone: CRC32C check, decompress and sum every chunk's bytes
                      (already in memory) on one thread
    read_ns_1t/_2t    decompress and sum through Zarr with Dask on 1 and 2 threads, as the
                      read floor of docs/benchmarks.md

each the best of --repeat, the reads from the page cache (one untimed read first). Arrays go
in a temporary folder under data/benchmark/codecs/ (removed at the end). Writes results/benchmarks/codecs.tsv and
prints each row. With the defaults (2 random sets and a run's stores) it takes under a minute
on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import glob
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

DEFAULT_SCALE_MODELS = ["Addepalli2021Towards_PARN18", "Gowal2020Uncovering_28_10_extra"]


def codecs() -> dict[str, tuple]:
    """Candidate codec chains by name: a Blosc compressor (or none), then CRC32C."""
    from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec

    def blosc(cname: str, clevel: int, shuffle: BloscShuffle) -> tuple:
        return (BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle), Crc32cCodec())

    return {
        "zstd-3 byte shuffle": blosc("zstd", 3, BloscShuffle.shuffle),
        "zstd-1 byte shuffle": blosc("zstd", 1, BloscShuffle.shuffle),
        "zstd-3 bit shuffle": blosc("zstd", 3, BloscShuffle.bitshuffle),
        "lz4 byte shuffle": blosc("lz4", 5, BloscShuffle.shuffle),
        "lz4 bit shuffle": blosc("lz4", 5, BloscShuffle.bitshuffle),
        "none": (Crc32cCodec(),),
    }


def thinned(rows: np.ndarray, max_filters: int, chunk_rows: int) -> np.ndarray:
    """Every k-th row, at most ``max_filters``, in whole chunks where there is more than one (a
    partial last chunk is stored at full size and would count its padding)."""
    rows = rows[::max(1, math.ceil(len(rows) / max_filters))]
    if len(rows) > chunk_rows:
        rows = rows[:len(rows) // chunk_rows * chunk_rows]
    return np.ascontiguousarray(rows)


def trained_filters(patterns: list[str]) -> tuple[str, np.ndarray]:
    from filterlens.extract.store import open_filter_store

    paths = sorted(p for pattern in patterns for p in glob.glob(pattern))
    if not paths:
        raise SystemExit(f"no filter store matches {' '.join(patterns)}; give a run's stores, e.g. "
                         "--stores 'results/filters/*.zarr'")
    rows = np.concatenate([open_filter_store(p).filters[:] for p in paths])
    names = ", ".join(Path(p).stem for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
    return f"{len(paths)} stores ({names})", rows


def random_filters(key: str, seed: int) -> tuple[str, np.ndarray]:
    """The filters of the scale sheet's first row with ``key``, initialised as rule random_init does."""
    import torch

    from filterlens.config.datasets import dataset_info
    from filterlens.config.sheet import read_sheet
    from filterlens.extract.weights import iter_layer_rows, plan_extraction
    from filterlens.models.architectures import build_architecture, random_init_seed

    sheet = read_sheet(REPO / "config" / "models" / "scale.tsv")
    matches = sheet[sheet.source_key.astype(str).str.endswith(key) | (sheet.model_id == key)]
    if matches.empty:
        raise SystemExit(f"{key!r} is not a model_id or source_key of config/models/scale.tsv")
    row = matches.iloc[0]
    info = dataset_info(row.dataset)
    model = build_architecture(row.architecture, row.arch_kwargs, info.num_classes,
                               seed=random_init_seed(row.model_id, seed))
    example = torch.empty(1, 3, info.image_size, info.image_size, device="meta")
    plan = plan_extraction(model, example, fold_batchnorm=True)
    rows = np.concatenate([r for _, r in iter_layer_rows(model, plan)])
    return f"{row.model_id} ({row.architecture} {row.arch_kwargs.get('key', '')})".strip(), rows


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.name != "zarr.json")


def best_of(repeat: int, function) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def decoder(path: Path, compressed: bool):
    """A function that decodes every chunk of the array at ``path`` (its bytes already in
    memory) and sums it, on this thread: the codec's own cost, without Zarr's."""
    import google_crc32c
    from numcodecs import blosc

    chunks = [f.read_bytes() for f in sorted((path / "c").rglob("*")) if f.is_file()]

    def decode():
        for data in chunks:
            payload = np.frombuffer(data, dtype=np.uint8)[:-4]
            if np.uint32(google_crc32c.value(payload)).tobytes() != data[-4:]:
                raise AssertionError(f"{path}: a chunk's CRC32C does not match")
            np.frombuffer(blosc.decompress(payload) if compressed else payload, dtype=np.float32).sum()
    return decode


def measure(rows: np.ndarray, chain: tuple, path: Path, chunk_rows: int, repeat: int) -> dict:
    import dask.array as da
    import zarr

    def write():
        array = zarr.create_array(str(path), shape=rows.shape, chunks=(min(chunk_rows, len(rows)), 9),
                                  dtype="float32", compressors=chain, fill_value=np.nan, overwrite=True)
        array[:] = rows

    write_s = best_of(repeat, write)
    array = zarr.open_array(str(path), mode="r")
    total = float(rows.sum(dtype=np.float64))
    result = {"bytes_per_filter": disk_bytes(path) / len(rows), "write_ns": write_s / len(rows) * 1e9,
              "decode_ns_1t": best_of(repeat, decoder(path, compressed=len(chain) > 1)) / len(rows) * 1e9}
    for threads in (1, 2):
        def read(threads=threads):
            value = da.from_zarr(array).sum(dtype=np.float64).compute(scheduler="threads", num_workers=threads)
            if not math.isclose(value, total, rel_tol=1e-9, abs_tol=1e-6):
                raise AssertionError(f"read back a different sum ({value} != {total})")
        read()  # page cache and zarr's pools warm
        result[f"read_ns_{threads}t"] = best_of(repeat, read) / len(rows) * 1e9
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", nargs="*", default=[], help="filter stores of trained models (globs)")
    parser.add_argument("--scale-models", nargs="*", default=DEFAULT_SCALE_MODELS,
                        help="source_key or model_id of config/models/scale.tsv rows, initialised at random")
    parser.add_argument("--seed", type=int, default=0, help="training.seed of dev/perf/config/scale.yaml")
    parser.add_argument("--max-filters", type=int, default=2_000_000, help="filters per set at most")
    parser.add_argument("--chunk-rows", type=int, default=65536, help="rows per chunk (dev/perf/config/scale.yaml's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=REPO / "data" / "benchmark" / "codecs")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "codecs.tsv")
    args = parser.parse_args()

    sets = []
    if args.stores:
        sets.append(("trained", *trained_filters(args.stores)))
    for key in args.scale_models:
        sets.append(("random", *random_filters(key, args.seed)))
    if not sets:
        raise SystemExit("nothing to measure: give --stores or --scale-models")
    chains = codecs()
    args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="codecs-", dir=args.work))  # removed at the end, nothing else
    records = []
    try:
        for kind, source, rows in sets:
            rows = thinned(rows, args.max_filters, args.chunk_rows)
            print(f"{kind}: {source}, {len(rows):,} filters", flush=True)
            for name, chain in chains.items():
                path = work / "filters.zarr"
                result = measure(rows, chain, path, args.chunk_rows, args.repeat)
                records.append({"kind": kind, "source": source, "n_filters": len(rows), "codec": name, **result})
                shutil.rmtree(path)
                print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in records[-1].items() if k not in ("kind", "source", "n_filters")),
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for record in records:
        none = next(r for r in records if r["source"] == record["source"] and r["codec"] == "none")
        record["disk_vs_none"] = record["bytes_per_filter"] / none["bytes_per_filter"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in r.items()} for r in records)
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
