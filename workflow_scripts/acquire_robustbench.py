"""Rule acquire_robustbench: a RobustBench model zoo entry into the checkpoint contract."""

from filterlens.acquire.checkpoint import save_checkpoint
from filterlens.acquire.robustbench_weights import RobustBenchEntry, load_robustbench, robustbench_checkpoint
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    row, settings = snakemake.params.row, snakemake.params.acquisition
    kwargs = row["arch_kwargs"]
    entry = RobustBenchEntry(dataset=kwargs["dataset"], key=row["source_key"] or kwargs["key"],
                             threat_model=kwargs.get("threat_model", "Linf"))
    if entry.key != kwargs["key"]:
        raise ValueError(f"{row['model_id']}: source_key {entry.key!r} differs from arch_kwargs key "
                         f"{kwargs['key']!r}; fix the sheet")
    log.info("%s: RobustBench %s/%s/%s, model directory %s", row["model_id"], entry.dataset, entry.threat_model,
             entry.key, settings["model_dir"])
    model, facts = load_robustbench(
        entry, settings["model_dir"], settings["lock_file"], attempts=settings["attempts"],
        backoff_s=settings["backoff_s"], max_backoff_s=settings["max_backoff_s"],
        trust_pickles=settings["trust_pickles"], log=log,
    )
    checkpoint = robustbench_checkpoint(row["model_id"], entry, model, facts)
    save_checkpoint(checkpoint, snakemake.output[0])
    log.info("%s: wrote %s (%d tensors)", row["model_id"], snakemake.output[0], len(checkpoint.state_dict))
