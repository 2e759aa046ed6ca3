"""Rule train_minizoo: train one mini-zoo model, normally or adversarially, into a checkpoint."""

import json

from filterlens.acquire.checkpoint import Checkpoint, save_checkpoint
from filterlens.config.datasets import dataset_info
from filterlens.io.scripting import rule_script, set_torch_threads
from filterlens.models.architectures import build_architecture
from filterlens.train.digits import load_split
from filterlens.train.minizoo import train
from filterlens.train.settings import settings_from_config

with rule_script(snakemake) as log:
    set_torch_threads(snakemake.threads)
    row = snakemake.params.row
    settings = settings_from_config(snakemake.params.training, adversarial=row["robust"])
    log.info("training %s (%s, robust=%s): %s", row["model_id"], row["architecture"], row["robust"], settings)
    info = dataset_info(row["dataset"])
    x, y = load_split(snakemake.input[0], "train")
    model = build_architecture(row["architecture"], row["arch_kwargs"], info.num_classes, seed=settings.seed)
    history = train(model, x, y, settings, log=log.info)
    checkpoint = Checkpoint(
        model_id=row["model_id"], dataset=row["dataset"], num_classes=info.num_classes,
        architecture=row["architecture"], arch_kwargs=row["arch_kwargs"], normalization=None,
        source="minizoo", state_dict=model.state_dict(),
        extra={"training": json.loads(json.dumps(snakemake.params.training)), "history": history},
    )
    save_checkpoint(checkpoint, snakemake.output[0])
