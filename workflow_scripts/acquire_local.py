"""Rule acquire_local: the user's own state dict file into the checkpoint contract (filterlens.acquire.local)."""

from filterlens.acquire.checkpoint import save_checkpoint
from filterlens.acquire.local import local_checkpoint
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    row = snakemake.params.row
    log.info("%s: weights %s, architecture %s %s", row["model_id"], snakemake.input.weights, row["architecture"],
             row["arch_kwargs"])
    checkpoint = local_checkpoint(row, snakemake.input.weights)
    save_checkpoint(checkpoint, snakemake.output[0])
    log.info("%s: wrote %s (%d tensors; weights sha256 %s; normalisation %s)", row["model_id"], snakemake.output[0],
             len(checkpoint.state_dict), checkpoint.extra["sha256"], checkpoint.normalization)
