"""Names of the architectures that a sheet may use (filterlens.models.architectures builds them).

Kept apart so that validating a sheet does not import torch: Snakemake parses the workflow,
and so validates the sheet, in every job and every dry run.
"""

ARCHITECTURE_NAMES = ("wide_resnet", "dm_wide_resnet", "preact_resnet", "robustbench", "timm", "torchvision",
                      "python")
