"""Rule layer_perturbation: the perturbation-to-signal ratio ||f_l(x) - f_l(x')||_2 / ||f_l(x)||_2
of every 3x3 layer's output (docs/method.md §7) for a seeded subset of test images x and their L-inf PGD
versions x' against the model itself (the evaluation attack of the config), and, as a baseline,
for random sign noise of the same size eps."""

import numpy as np
import pandas as pd
import torch

from filterlens.acquire.checkpoint import build_model, classifier, load_checkpoint
from filterlens.config.datasets import dataset_info
from filterlens.extract.weights import plan_extraction
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script, set_torch_threads
from filterlens.method.filter_measures import perturbation_ratio
from filterlens.method.sampling import sample_indices
from filterlens.train.attacks import pgd_linf
from filterlens.train.digits import load_split

with rule_script(snakemake) as log:
    set_torch_threads(snakemake.threads)
    attack, settings = snakemake.params.attack, snakemake.params.settings
    checkpoint = load_checkpoint(snakemake.input.model, model_id=snakemake.wildcards.model)
    network = build_model(checkpoint)
    model = classifier(network, checkpoint)
    size = dataset_info(checkpoint.dataset).image_size
    plan = plan_extraction(network, torch.empty(1, 3, size, size, device="meta"))
    layers = read_tsv(snakemake.input.layers).set_index("name")
    x_test, y_test = load_split(snakemake.input.data, "test")
    index = torch.as_tensor(sample_indices(len(y_test), settings["n_images"], settings["seed"]))
    x_all, y_all = x_test[index], y_test[index]
    captured: dict[str, torch.Tensor] = {}
    hooks = [network.get_submodule(layer.name).register_forward_hook(
        lambda module, inputs, output, name=layer.name: captured.__setitem__(name, output.detach()))
        for layer in plan.layers]
    ratios = {kind: {layer.name: [] for layer in plan.layers} for kind in ("pgd", "random")}
    correct = {"clean": 0, "pgd": 0, "random": 0}
    generator = torch.Generator().manual_seed(attack["seed"])
    for start in range(0, len(y_all), settings["batch_size"]):
        x, y = x_all[start:start + settings["batch_size"]], y_all[start:start + settings["batch_size"]]
        with torch.enable_grad():
            x_pgd = pgd_linf(model, x, y, eps=attack["eps"], step_size=attack["step_size"], steps=attack["steps"],
                             random_start=attack["random_start"], generator=generator)
        noise = torch.rand(x.shape, generator=generator) < 0.5
        x_random = (x + attack["eps"] * (2 * noise.to(x.dtype) - 1)).clamp(0, 1)
        with torch.no_grad():
            correct["clean"] += int((model(x).argmax(1) == y).sum())
            clean = dict(captured)
            for kind, x_other in (("pgd", x_pgd), ("random", x_random)):
                correct[kind] += int((model(x_other).argmax(1) == y).sum())
                for name in ratios[kind]:
                    ratios[kind][name].append(perturbation_ratio(clean[name].numpy(), captured[name].numpy()))
    for hook in hooks:
        hook.remove()
    n = len(y_all)
    log.info("%s: %d test images, accuracy clean %.1f%%, PGD %.1f%%, random sign noise %.1f%% (eps %g)",
             checkpoint.model_id, n, *(100 * correct[k] / n for k in ("clean", "pgd", "random")), attack["eps"])
    rows = []
    for layer in plan.layers:
        pgd = np.concatenate(ratios["pgd"][layer.name])
        random = np.concatenate(ratios["random"][layer.name])
        rows.append({"model_id": checkpoint.model_id, "layer_id": layer.layer_id, "name": layer.name,
                     "depth_group": layers.depth_group[layer.name], "n_images": n,
                     "perturbation_ratio": float(np.nanmean(pgd)), "perturbation_ratio_std": float(np.nanstd(pgd)),
                     "perturbation_ratio_random": float(np.nanmean(random)), "eps": attack["eps"],
                     "steps": attack["steps"], "step_size": attack["step_size"],
                     "accuracy_clean": 100 * correct["clean"] / n, "accuracy_pgd": 100 * correct["pgd"] / n})
    table = pd.DataFrame(rows)
    log.info("\n%s", table[["name", "depth_group", "perturbation_ratio", "perturbation_ratio_random"]].to_string())
    write_tsv(table, snakemake.output[0])
