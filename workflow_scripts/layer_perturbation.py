"""Rule layer_perturbation: the perturbation-to-signal ratio ||f_l(x) - f_l(x')||_2 / ||f_l(x)||_2
of every 3x3 layer's output (docs/method.md §7) for a seeded subset of test images x and their L-inf PGD
versions x' against the model itself (the evaluation attack of the config), and, as a baseline,
for random sign noise of the same size eps (filterlens.probe.model_measures)."""

import torch

from filterlens.acquire.checkpoint import build_model, classifier, load_checkpoint
from filterlens.config.datasets import dataset_info
from filterlens.extract.weights import plan_extraction
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script, set_torch_threads
from filterlens.probe.model_measures import perturbation_ratios, perturbation_table
from filterlens.method.sampling import sample_indices
from filterlens.train.digits import load_split
from filterlens.train.settings import pgd_from_config

# The last line of a failed job's log: the model (its wildcard) and how to go on without the ratios.
FIX = ("leave the perturbation ratios out of the run with `analysis: {perturbation: {enabled: false}}` in a config "
       "file given last (--configfile ... yours.yaml); the other analyses do not need them")

with rule_script(snakemake, fix=FIX) as log:
    set_torch_threads(snakemake.threads)
    settings = snakemake.params.settings
    attack, seed = pgd_from_config(snakemake.params.attack), snakemake.params.attack["seed"]
    checkpoint = load_checkpoint(snakemake.input.model, model_id=snakemake.wildcards.model)
    network = build_model(checkpoint)
    size = dataset_info(checkpoint.dataset).image_size
    plan = plan_extraction(network, torch.empty(1, 3, size, size, device="meta"))
    depth_groups = read_tsv(snakemake.input.layers).set_index("name").depth_group
    x_test, y_test = load_split(snakemake.input.data, "test")
    index = torch.as_tensor(sample_indices(len(y_test), settings["n_images"], settings["seed"]))
    result = perturbation_ratios(classifier(network, checkpoint), network, [layer.name for layer in plan.layers],
                                 x_test[index], y_test[index], attack, seed, settings["batch_size"])
    log.info("%s: %d test images, accuracy clean %.1f%%, PGD %.1f%%, random sign noise %.1f%% (eps %g)",
             checkpoint.model_id, result.n_images, *(result.accuracy(k) for k in ("clean", "pgd", "random")),
             attack.eps)
    table = perturbation_table(result, plan.layers, depth_groups, checkpoint.model_id, attack)
    log.info("\n%s", table[["name", "depth_group", "perturbation_ratio", "perturbation_ratio_random"]].to_string())
    write_tsv(table, snakemake.output[0])
