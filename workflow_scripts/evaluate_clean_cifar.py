"""Rule evaluate_clean_cifar: the clean accuracy of a normal CIFAR model on the CIFAR test set
of cifar_training.data_dir (Table 1), through the model's own input normalisation."""

import numpy as np
import pandas as pd
import torch

from filterlens.acquire.checkpoint import build_model, classifier, load_checkpoint
from filterlens.io.files import write_tsv
from filterlens.io.scripting import rule_script, set_torch_threads
from filterlens.train.cifar import evaluate_accuracy, load_test_split

with rule_script(snakemake) as log:
    set_torch_threads(snakemake.threads)
    checkpoint = load_checkpoint(snakemake.input.model)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = classifier(build_model(checkpoint), checkpoint).to(device)
    x, y = load_test_split(snakemake.input.data, checkpoint.dataset, snakemake.params.verify_checksums)
    clean = evaluate_accuracy(model, x.to(device), y.to(device))
    log.info("%s: clean accuracy %.2f%% on %d %s test images (%s)", checkpoint.model_id, clean, len(y),
             checkpoint.dataset, device.type)
    write_tsv(pd.DataFrame([{
        "model_id": checkpoint.model_id, "clean_acc": clean, "robust_acc": np.nan, "n_test": len(y),
        "attack": "none", "eps": np.nan, "steps": np.nan, "step_size": np.nan, "random_start": np.nan,
    }]), snakemake.output[0])
