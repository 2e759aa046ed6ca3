"""Rule random_init: a model's real architecture with seeded random weights (scale runs)."""

from filterlens.acquire.checkpoint import Checkpoint, save_checkpoint
from filterlens.config.datasets import dataset_info
from filterlens.io.scripting import rule_script
from filterlens.models.architectures import build_architecture, random_init_seed

with rule_script(snakemake) as log:
    row = snakemake.params.row
    info = dataset_info(row["dataset"])
    seed = random_init_seed(row["model_id"], snakemake.params.seed)
    model = build_architecture(row["architecture"], row["arch_kwargs"], info.num_classes, seed=seed)
    log.info("%s: %s with %d parameters, seed %d", row["model_id"], row["architecture"],
             sum(p.numel() for p in model.parameters()), seed)
    normalization = None if info.mean is None else {"mean": list(info.mean), "std": list(info.std)}
    save_checkpoint(
        Checkpoint(model_id=row["model_id"], dataset=row["dataset"], num_classes=info.num_classes,
                   architecture=row["architecture"], arch_kwargs=row["arch_kwargs"],
                   normalization=normalization, source="random", state_dict=model.state_dict(),
                   extra={"seed": seed}),
        snakemake.output[0],
    )
