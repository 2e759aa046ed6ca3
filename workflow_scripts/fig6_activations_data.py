"""Rule fig6_activations_data: Fig. 6's data, the first-layer activations ReLU(conv1(x)) of the
pair's robust model for one clean test image (the mini zoo's test split, or the CIFAR-10/100
test set of cifar_training.data_dir) and its L-inf PGD version (docs/method.md §6). The attack and the
activations go through the model's own input normalisation (filterlens.acquire.checkpoint.classifier:
the checkpoint's, e.g. CIFAR mean/std, none for RobustBench models, which normalise inside)."""

from pathlib import Path

import torch

from filterlens.acquire.checkpoint import build_model, classifier, load_checkpoint
from filterlens.config.datasets import CIFAR_TEST_FILES, dataset_info
from filterlens.extract.weights import plan_extraction
from filterlens.io.files import write_npz
from filterlens.io.scripting import rule_script, set_torch_threads
from filterlens.train.attacks import pgd_linf
from filterlens.train.batches import to_float
from filterlens.train.cifar import load_test_split
from filterlens.train.digits import load_split

with rule_script(snakemake) as log:
    set_torch_threads(snakemake.threads)
    settings = snakemake.params.activations
    # data/models/<model id>.pt: the file must hold that model
    checkpoint = load_checkpoint(snakemake.input.model, model_id=Path(snakemake.input.model).stem)
    network = build_model(checkpoint)
    model = classifier(network, checkpoint)
    if checkpoint.dataset in CIFAR_TEST_FILES:
        x_test, y_test = load_test_split(snakemake.input.data, checkpoint.dataset, snakemake.params.verify_checksums)
    else:
        x_test, y_test = load_split(snakemake.input.data, "test")
    index = settings["image_index"]
    if not 0 <= index < len(y_test):
        raise ValueError(f"config key figures.activations.image_index: {index} is outside the test split "
                         f"(0 to {len(y_test) - 1})")
    x, y = x_test[index:index + 1], y_test[index:index + 1]
    if x.dtype == torch.uint8:  # CIFAR: uint8 pixels to [0, 1]
        x = to_float(x)
    size = dataset_info(checkpoint.dataset).image_size
    first = plan_extraction(network, torch.empty(1, 3, size, size, device="meta")).layers[0]  # layer_id 0
    conv = network.get_submodule(first.name)
    captured = []
    hook = conv.register_forward_hook(lambda module, inputs, output: captured.append(torch.relu(output).detach()))
    generator = torch.Generator().manual_seed(settings["seed"])
    with torch.enable_grad():
        x_adv = pgd_linf(model, x, y, eps=settings["eps"], step_size=settings["step_size"], steps=settings["steps"],
                         random_start=settings["random_start"], generator=generator)
    captured.clear()
    with torch.no_grad():
        logits_clean = model(x)
        act_clean = captured.pop()
        logits_adv = model(x_adv)
        act_adv = captured.pop()
    hook.remove()
    pred_clean, pred_adv = int(logits_clean.argmax(1)), int(logits_adv.argmax(1))
    log.info("%s, test image %d (label %d): first 3x3 layer %s (depth %d); prediction clean %d, adversarial %d; "
             "max |x_adv - x| = %.4f; activations %s", checkpoint.model_id, index, int(y), first.name,
             first.conv_depth, pred_clean, pred_adv, float((x_adv - x).abs().max()), tuple(act_clean.shape[1:]))
    write_npz(snakemake.output[0], image_clean=x[0].numpy(), image_adv=x_adv[0].numpy(),
              act_clean=act_clean[0].numpy(), act_adv=act_adv[0].numpy(), label=int(y), pred_clean=pred_clean,
              pred_adv=pred_adv, layer_name=first.name, layer_depth=first.conv_depth, model_id=checkpoint.model_id,
              image_index=index)
