"""Rule train_cifar: train a normal CIFAR counterpart with the paper's recipe (docs/method.md §1).

The output is the best-validation checkpoint. The training state of every finished epoch
is kept in data/models/.{model}.train_state.pt (not a declared output, so Snakemake leaves
it alone when the job fails or is killed); a rerun resumes from it, and it is deleted once
the output is written.
"""

import json
import platform

import torch

from filterlens.acquire.checkpoint import Checkpoint, save_checkpoint
from filterlens.io.scripting import rule_script, set_torch_threads
from filterlens.models.architectures import build_architecture
from filterlens.train.cifar import load_cifar, recipe_from_config, resume_path, train_cifar

with rule_script(snakemake) as log:
    set_torch_threads(snakemake.threads)
    row = snakemake.params.row
    section = snakemake.params.cifar_training
    recipe = recipe_from_config(section)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log.info("training %s (%s %s on %s) on %s: %s", row["model_id"], row["architecture"], row["arch_kwargs"],
             row["dataset"], torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", recipe)
    data = load_cifar(section["data_dir"], row["dataset"], recipe, download=section["download"],
                      verify_checksums=section["verify_checksums"])
    log.info("%d training images, validation: %s (%d images)", len(data.x_train), data.validation, len(data.x_val))
    model = build_architecture(row["architecture"], row["arch_kwargs"], data.num_classes, seed=recipe.seed)
    log.info("%s parameters", f"{sum(p.numel() for p in model.parameters()):,}")
    state_file = resume_path(snakemake.output[0])
    identity = {k: row[k] for k in ("model_id", "dataset", "architecture", "arch_kwargs")}
    result = train_cifar(model, data, recipe, state_file, device, fingerprint_extra=identity, log=log.info)
    log.info("best validation accuracy %.2f%% at epoch %d of %d", result.best_val_acc, result.best_epoch,
             recipe.epochs)
    save_checkpoint(
        Checkpoint(
            model_id=row["model_id"], dataset=row["dataset"], num_classes=data.num_classes,
            architecture=row["architecture"], arch_kwargs=row["arch_kwargs"], normalization=None,
            source="train_cifar", state_dict=result.best_state,
            extra={
                "recipe": json.loads(json.dumps(section)),
                "training_options": recipe.options(),  # precision, channels_last, compile
                "validation": data.validation,
                "best_epoch": result.best_epoch,
                "best_val_acc": result.best_val_acc,
                "history": result.history,
                "device": device.type,
                "torch": str(torch.__version__),
                "python": platform.python_version(),
            },
        ),
        snakemake.output[0],
    )
    state_file.unlink(missing_ok=True)
