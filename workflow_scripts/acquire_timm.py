"""Rule acquire_timm: timm's pretrained ImageNet weights into the checkpoint contract.

The weights come through the Hugging Face cache: HF_HOME (or HF_HUB_CACHE) says where it is,
HF_HUB_OFFLINE=1 uses it without network (both read from the environment of snakemake).
"""

from filterlens.acquire.checkpoint import save_checkpoint
from filterlens.acquire.timm_weights import load_timm, timm_base_name, timm_checkpoint
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    row, settings = snakemake.params.row, snakemake.params.acquisition
    name = row["arch_kwargs"]["name"]
    pretrained = row["source_key"] or name
    if timm_base_name(pretrained) != name:
        raise ValueError(f"{row['model_id']}: source_key {pretrained!r} is not a pretrained tag of "
                         f"arch_kwargs name {name!r}; fix the sheet")
    model = load_timm(pretrained, attempts=settings["attempts"], backoff_s=settings["backoff_s"],
                      max_backoff_s=settings["max_backoff_s"], log=log)
    checkpoint = timm_checkpoint(row["model_id"], name, model, pretrained)
    save_checkpoint(checkpoint, snakemake.output[0])
    log.info("%s: wrote %s (normalisation %s)", row["model_id"], snakemake.output[0], checkpoint.normalization)
