"""Rule coloured_digits: the mini zoo's dataset, fixed by its seed."""

import numpy as np

from filterlens.io.atomic import atomic_output
from filterlens.io.scripting import rule_script
from filterlens.train.digits import coloured_digits

with rule_script(snakemake) as log:
    settings = snakemake.params.dataset
    split = coloured_digits(seed=settings["seed"], image_size=settings["image_size"],
                            test_fraction=settings["test_fraction"], limit=settings["limit"])
    log.info("coloured digits: %d train and %d test images of shape %s",
             len(split.y_train), len(split.y_test), split.x_train.shape[1:])
    with atomic_output(snakemake.output[0]) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, x_train=split.x_train, y_train=split.y_train,
                            x_test=split.x_test, y_test=split.y_test)
