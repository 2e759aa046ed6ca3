"""Rule provenance: what produced this run, as JSON, TSV and HTML (filterlens.report.provenance)."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import zarr

from filterlens.io.hashing import sha256_of
from filterlens.io.scripting import rule_script
from filterlens.report.provenance import FORMAT, FORMAT_VERSION, git_state, model_facts, write_provenance


def store_attrs(path):
    """A store's attributes only: provenance records, the reductions validate the data."""
    try:
        return dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception as error:  # recorded, not fatal: the store's own jobs report it
        log.warning("%s: attributes unreadable (%s)", path, error)
        return None


with rule_script(snakemake) as log:
    models = snakemake.params.models
    # hashlib releases the GIL on large blocks: checkpoints are hashed side by side
    with ThreadPoolExecutor(max(1, snakemake.threads)) as pool:
        digests = list(pool.map(sha256_of, snakemake.input.checkpoints))
    own = {model: {role: {"file": path, "sha256": sha256_of(path)} for role, path in files.items()}
           for model, files in snakemake.params.own_files.items()}
    records = []
    for model, digest, store in zip(models, digests, snakemake.input.stores):
        facts = model_facts(model, digest, store_attrs(store), own.get(model))
        if facts["store_matches_checkpoint"] is False:
            log.warning("%s: the filter store was extracted from a checkpoint with sha256 %s, not the current %s; "
                        "Fix: snakemake --forcerun extract_filters %s", model, facts["store_checkpoint_sha256"],
                        digest, store)
        records.append(facts)
    record = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              **snakemake.params.facts, "models": records}
    workflow = record["workflow"]
    workflow.update(git_state(workflow["directory"]))
    log.info("workflow %s at commit %s%s; %d models; sheet sha256 %s", workflow["directory"], workflow["commit"],
             " (dirty tree)" if workflow["dirty"] else "", len(records), record["sheet"]["sha256"])
    write_provenance(record, snakemake.output.json, snakemake.output.tsv, snakemake.output.html)
