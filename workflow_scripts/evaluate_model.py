"""Rule evaluate_model: clean and PGD accuracy of one model on the test split."""

import pandas as pd

from filterlens.acquire.checkpoint import build_model, classifier, load_checkpoint
from filterlens.io.files import write_tsv
from filterlens.io.scripting import rule_script, set_torch_threads
from filterlens.train.digits import load_split
from filterlens.train.minizoo import accuracy
from filterlens.train.settings import pgd_from_config

with rule_script(snakemake) as log:
    set_torch_threads(snakemake.threads)
    checkpoint = load_checkpoint(snakemake.input.model, model_id=snakemake.wildcards.model)
    model = classifier(build_model(checkpoint), checkpoint)
    x, y = load_split(snakemake.input.data, "test")
    settings = snakemake.params.evaluation
    attack = pgd_from_config(settings)
    clean = accuracy(model, x, y)
    robust = accuracy(model, x, y, attack, seed=settings["seed"])
    log.info("%s: clean %.2f%%, PGD %.2f%% (%s)", checkpoint.model_id, clean, robust, attack)
    table = pd.DataFrame([{
        "model_id": checkpoint.model_id, "clean_acc": clean, "robust_acc": robust, "n_test": len(y),
        "attack": "pgd_linf", "eps": attack.eps, "steps": attack.steps, "step_size": attack.step_size,
        "random_start": attack.random_start,
    }])
    write_tsv(table, snakemake.output[0])
