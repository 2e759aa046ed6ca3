"""Where an extraction job's time goes, against the copy floor.

    python dev/perf/profile_extraction.py [--models Chen2021LTD_WRN34_10 ...] [--dataset cifar10] [--out DIR]

For each RobustBench CIFAR architecture named (seeded random weights, as rule random_init
makes them), in this process and on one thread: building the model with random weights and
saving its checkpoint (rule random_init's work), then each phase of rule extract_filters'
work (load the checkpoint memory-mapped, build the model from it, plan the 3x3 layers, fold
BatchNorm into rows, write the filter store, hash the checkpoint), and the **copy floor**:
load the same checkpoint memory-mapped and write its 3x3 weights unprocessed into a Zarr array
with the store's codec and chunks (dev/perf/floors.py, rule copy_floor's
work). Start-up (imports) is measured apart, with
``dev/perf/import_times.py workflow_scripts/extract_filters.py``; the scale run times the jobs of
both (dev/perf/scale_report.py, x_copy_floor). Prints a Markdown table; the
checkpoints and stores go to ``--out`` (a temporary folder by default) and are deleted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from filterlens.acquire.checkpoint import Checkpoint, build_model, load_checkpoint, save_checkpoint  # noqa: E402
from floors import write_copy_floor  # noqa: E402  (dev/perf/floors.py)
from filterlens.extract.weights import layer_rows, plan_extraction, write_filter_store  # noqa: E402
from filterlens.io.hashing import sha256_of  # noqa: E402
from filterlens.models.architectures import build_architecture  # noqa: E402
from filterlens.models.robustbench_zoo import zoo  # noqa: E402

PHASES = ["random init", "save checkpoint", "load (mmap)", "build model", "plan", "fold + rows", "write store",
          "sha256", "extraction", "copy floor"]


def profile(key: str, dataset: str, folder: Path, chunk_rows: int) -> dict[str, float]:
    times: dict[str, float] = {}

    def timed(name, function, *args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        times[name] = time.perf_counter() - start
        return result

    kwargs = {"dataset": dataset, "key": key, "threat_model": "Linf"}
    classes = 100 if dataset == "cifar100" else 10
    model = timed("random init", build_architecture, "robustbench", kwargs, classes, seed=0)
    checkpoint_path = folder / f"{key}.pt"
    timed("save checkpoint", save_checkpoint,
          Checkpoint(model_id=key, dataset=dataset, num_classes=classes, architecture="robustbench",
                     arch_kwargs=kwargs, normalization=None, source="random", state_dict=model.state_dict(),
                     extra={}), checkpoint_path)
    del model

    checkpoint = timed("load (mmap)", load_checkpoint, checkpoint_path, model_id=key, dataset=dataset)
    model = timed("build model", build_model, checkpoint)
    plan = timed("plan", plan_extraction, model, torch.empty(1, 3, 32, 32, device="meta"), fold_batchnorm=True)
    rows = timed("fold + rows", lambda: [layer_rows(model, plan, layer) for layer in plan.layers])

    timed("write store", write_filter_store, folder / f"{key}.zarr", plan, zip(plan.layers, rows), chunk_rows,
          model_id=key, dataset=dataset)
    timed("sha256", sha256_of, checkpoint_path)
    times["extraction"] = sum(times[p] for p in PHASES[2:8])

    timed("copy floor", write_copy_floor, checkpoint_path, folder / f"{key}.floor.zarr", chunk_rows)
    times["n_filters"] = plan.n_filters
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["Standard", "Chen2021LTD_WRN34_10"])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--chunk-rows", type=int, default=65536)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    zoo(args.dataset)  # the registry's import (timm and the zoo's modules) is start-up, not random init
    folder = Path(tempfile.mkdtemp(dir=args.out))
    try:
        print("| model | M filters | " + " | ".join(f"{p} s" for p in PHASES) + " | extraction / copy floor |")
        print("|---|---|" + "---|" * (len(PHASES) + 1))
        for key in args.models:
            t = profile(key, args.dataset, folder, args.chunk_rows)
            cells = " | ".join(f"{t[p]:.2f}" for p in PHASES)
            print(f"| {key} | {t['n_filters'] / 1e6:.2f} | {cells} | {t['extraction'] / t['copy floor']:.2f} |",
                  flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
