"""Images per second of training the normal CIFAR counterparts (rule train_cifar) with each option of
cifar_training, their FLOPs per image, and the FLOPs-based cost of every counterpart of a sheet.

    python dev/perf/benchmark_training.py [--models LABEL=MODEL_ID ...] [--options fp32 bf16+channels_last ...]
                                       [--batch N] [--steps N] [--warmup N] [--output results/benchmarks/training.tsv]
    python dev/perf/benchmark_training.py --counterparts [--throughput results/benchmarks/training.tsv --hours-at fp32]

Throughput: each model (a row of --sheet, built as the sheet builds it: filterlens.models.architectures)
is prepared as train_cifar prepares it (filterlens.train.cifar.prepare_model: the device, channels-last
layout, torch.compile) and runs the recipe's training step (filterlens.train.batches.sgd_step: forward,
cross-entropy, backward and the SGD Nesterov step, under bf16 autocast with precision bf16) on random
images already on the device, which is how train_cifar keeps its data; the crop and flip are not timed.
--warmup steps first (they include torch.compile's compilation), then --steps timed steps, synchronised
on CUDA. On CUDA cuDNN's autotuner is on and the batch is the recipe's 256. On the CPU, as train_cifar
there, deterministic algorithms are enforced, and the run is kept to a minute or two: batch 8 (2 for a
model of more than 10 GFLOPs per training image), 1 warm-up and 2 timed steps, and no compile by default
(Inductor compiles C++ kernels for minutes there; name an option set with +compile to measure it).

FLOPs per image: forward and backward, counted on the meta device by torch's FlopCounterMode
(filterlens.train.cost.image_flops); achieved TFLOP/s = images/s x FLOPs per image. Writes --output
(device, architecture, model_id, options, batch, steps, seconds, images_per_s, flops_per_image,
achieved_tflops) and prints a Markdown table. Results: docs/benchmarks.md, "Training the counterparts".

--counterparts prints, for every sheet row with source train_cifar, the training FLOPs of the recipe
(filterlens.train.cost.training_flops: --epochs x --train-images forward and backward plus the forward
pass of --validation-images per epoch) and, with --throughput, the hours at the achieved FLOP/s of
that table's row for the same model and --hours-at option set, else of the row with that option set
whose FLOPs per image are nearest.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402

from filterlens.config.sheet import read_sheet  # noqa: E402
from filterlens.models.architectures import build_architecture  # noqa: E402
from filterlens.train.batches import sgd_step  # noqa: E402
from filterlens.train.cifar import PRECISIONS, CifarRecipe, make_optimizer, prepare_model  # noqa: E402
from filterlens.train.cost import hours, image_flops, read_throughputs, training_flops  # noqa: E402

PAPER_SHEET = REPO / "config" / "models" / "paper.tsv"
# PreActResNet-18, WRN-28-10 and WRN-70-16 as the paper's sheet builds its counterparts (RobustBench's
# DMPreActResNet and DMWideResNet of these leaderboard entries).
DEFAULT_MODELS = {
    "PreActResNet-18": "normal_cifar10_Rebuffi2021Fixing_R18_ddpm",
    "WRN-28-10": "normal_cifar10_Gowal2020Uncovering_28_10_extra",
    "WRN-70-16": "normal_cifar10_Gowal2020Uncovering_70_16",
}
CUDA_OPTIONS = ["fp32", "fp32+channels_last", "bf16", "bf16+channels_last", "bf16+channels_last+compile"]
CPU_OPTIONS = ["fp32", "fp32+channels_last", "bf16"]
COLUMNS = ["device", "architecture", "model_id", "options", "batch", "steps", "seconds", "images_per_s",
           "flops_per_image", "achieved_tflops"]


def recipe_of(options: str) -> CifarRecipe:
    """``fp32``, ``bf16``, optionally followed by ``+channels_last`` and ``+compile``, as a recipe."""
    precision, *flags = options.split("+")
    unknown = [f for f in flags if f not in ("channels_last", "compile")]
    if precision not in PRECISIONS or unknown:
        raise SystemExit(f"--options {options!r}: a precision ({', '.join(PRECISIONS)}) optionally followed by "
                         f"+channels_last and +compile, e.g. bf16+channels_last")
    return CifarRecipe(precision=precision, channels_last="channels_last" in flags, compile="compile" in flags)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def throughput(row, recipe: CifarRecipe, device: torch.device, batch: int, steps: int, warmup: int) -> tuple[float, float]:
    """Seconds of ``steps`` training steps after ``warmup`` ones, and images per second."""
    model = build_architecture(row["architecture"], row["arch_kwargs"], 10 if row["dataset"] == "cifar10" else 100,
                               seed=0)
    step_model = prepare_model(model, recipe, device)
    optimizer, _ = make_optimizer(model, recipe)
    num_classes = 10 if row["dataset"] == "cifar10" else 100
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, 3, 32, 32), generator=generator, dtype=torch.uint8).to(device)
    y = torch.randint(0, num_classes, (batch,), generator=generator).to(device)
    xb = x.float().div_(255)
    if recipe.channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    model.train()
    autocast = PRECISIONS[recipe.precision]
    for _ in range(warmup):
        sgd_step(step_model, optimizer, xb, y, autocast)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    began = time.perf_counter()
    for _ in range(steps):
        sgd_step(step_model, optimizer, xb, y, autocast)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - began
    del model, step_model, optimizer
    if recipe.compile:
        torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds, batch * steps / seconds


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def sheet_rows(sheet: Path) -> dict:
    table = read_sheet(sheet)
    return {r["model_id"]: r for r in table.to_dict("records")}


def benchmark(args: argparse.Namespace) -> None:
    rows = sheet_rows(args.sheet)
    models = dict(m.split("=", 1) if "=" in m else (m, m) for m in args.models) if args.models else DEFAULT_MODELS
    for model_id in models.values():
        if model_id not in rows:
            raise SystemExit(f"--models: {model_id} is not a model_id of {args.sheet}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)  # as train_cifar on the CPU
    else:
        torch.backends.cudnn.benchmark = True  # as train_cifar on a GPU
    option_sets = args.options or (CUDA_OPTIONS if device.type == "cuda" else CPU_OPTIONS)
    steps = args.steps or (20 if device.type == "cuda" else 2)
    warmup = args.warmup if args.warmup is not None else (5 if device.type == "cuda" else 1)
    name = device_name(device)
    out = []
    for label, model_id in models.items():
        row = rows[model_id]
        num_classes = 10 if row["dataset"] == "cifar10" else 100
        flops = image_flops(row["architecture"], row["arch_kwargs"], num_classes).training
        batch = args.batch or (256 if device.type == "cuda" else 8 if flops < 10e9 else 2)
        for options in option_sets:
            seconds, rate = throughput(row, recipe_of(options), device, batch, steps, warmup)
            out.append([name, label, model_id, options, batch, steps, f"{seconds:.6g}", f"{rate:.6g}", f"{flops:.6g}",
                        f"{rate * flops / 1e12:.6g}"])
            print(f"{label} {options}: {rate:.3g} images/s", file=sys.stderr, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join("\t".join(map(str, r)) for r in [COLUMNS, *out]) + "\n")
    print(markdown(["device", "architecture", "options", "batch", "images/s", "GFLOPs/image", "TFLOP/s"],
                   [[r[0], r[1], r[3], r[4], f"{float(r[7]):.3g}", f"{float(r[8]) / 1e9:.2f}", f"{float(r[9]):.3g}"]
                    for r in out]))


def nearest_row(measured: list[dict], model_id: str, flops: float, options: str) -> dict | None:
    same = [r for r in measured if r["options"] == options]
    exact = [r for r in same if r["model_id"] == model_id]
    if exact or not same:
        return exact[0] if exact else None
    return min(same, key=lambda r: abs(math.log(float(r["flops_per_image"]) / flops)))


def counterparts(args: argparse.Namespace) -> None:
    measured = read_throughputs(args.throughput) if args.throughput else []
    table, total, total_hours = [], 0.0, 0.0
    for model_id, row in sheet_rows(args.sheet).items():
        if row["source"] != "train_cifar":
            continue
        num_classes = 10 if row["dataset"] == "cifar10" else 100
        model = build_architecture(row["architecture"], row["arch_kwargs"], num_classes, device="meta")
        params = sum(p.numel() for p in model.parameters())
        per_image = image_flops(row["architecture"], row["arch_kwargs"], num_classes).training
        flops = training_flops(row["architecture"], row["arch_kwargs"], num_classes, 32, args.train_images,
                               args.epochs, args.validation_images)
        total += flops
        cells = [model_id, type(model).__name__, f"{params / 1e6:.1f}", f"{per_image / 1e9:.2f}", f"{flops / 1e15:.1f}"]
        if measured:
            speed = nearest_row(measured, model_id, per_image, args.hours_at)
            hour = hours(flops, speed) if speed else float("nan")
            total_hours += hour
            cells += [f"{hour:.1f}", f"{speed['architecture']} ({speed['device']})" if speed else ""]
        table.append(cells)
    header = ["model_id", "class", "parameters (M)", "GFLOPs/training image", "PFLOPs"]
    if measured:
        header += [f"hours ({args.hours_at})", "speed of"]
    table.append(["**total**", "", "", "", f"**{total / 1e15:.0f}**"] + ([f"**{total_hours:.0f}**", ""] if measured else []))
    print(markdown(header, table))
    print(f"\n{len(table) - 1} counterparts, {args.epochs} epochs of {args.train_images} training images and the "
          f"forward pass of {args.validation_images} validation images each: {total / 1e15:.0f} PFLOPs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", type=Path, default=PAPER_SHEET)
    parser.add_argument("--models", nargs="+", help="LABEL=MODEL_ID or MODEL_ID (default: %(default)s)")
    parser.add_argument("--options", nargs="+", help=f"option sets (default on CUDA: {' '.join(CUDA_OPTIONS)}; "
                                                     f"on the CPU: {' '.join(CPU_OPTIONS)})")
    parser.add_argument("--batch", type=int, help="default: 256 on CUDA; on the CPU 8, or 2 above 10 GFLOPs/image")
    parser.add_argument("--steps", type=int, help="timed steps (default: 20 on CUDA, 2 on the CPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 5 on CUDA, 1 on the CPU)")
    parser.add_argument("--output", type=Path, default=REPO / "results" / "benchmarks" / "training.tsv")
    parser.add_argument("--counterparts", action="store_true", help="the cost table of the sheet's train_cifar rows")
    parser.add_argument("--epochs", type=int, default=CifarRecipe().epochs)
    parser.add_argument("--train-images", type=int, default=50_000)
    parser.add_argument("--validation-images", type=int, default=10_000)
    parser.add_argument("--throughput", type=Path, help="a table this tool wrote, for hours (--counterparts)")
    parser.add_argument("--hours-at", default="fp32", help="the option set whose speed gives the hours")
    args = parser.parse_args()
    counterparts(args) if args.counterparts else benchmark(args)


if __name__ == "__main__":
    main()
