# filterlens: "Adversarial Robustness through the Lens of Convolutional Filters"
# (Gavrikov & Keuper, CVPR-W 2022), reproduced from the model zoo to every figure.
#
#   snakemake --cores all                                  the mini zoo (config/config.yaml)
#   snakemake --cores all --configfile config/paper.yaml   the paper's 71 + 43 models
#   snakemake --profile profiles/slurm --workflow-profile none ...   on a SLURM cluster
#                                                          (docs/cluster.md)
#   snakemake --cores all --directory runs/my-zoo --configfile my.yaml   a run of its own (docs/runs.md)
import os

from snakemake.utils import min_version

min_version("9.0")


# The config every run starts from, whatever the working directory (docs/runs.md).
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/checkpoints.smk"  # every rule that makes data/models/{model}.pt, by sheet source
include: "rules/filterdb.smk"
include: "rules/extract.smk"
include: "rules/evaluate.smk"
include: "rules/summarize.smk"
include: "rules/statistics.smk"
include: "rules/sensitivity.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"
include: "rules/provenance.smk"
include: "rules/placement.smk"


rule all:
    input:
        "results/tables/models.tsv",
        COMPARISON_TARGETS,  # rules/common.smk: none on a sheet without a robust/normal pair
        "results/provenance/provenance.json",
        PLACEMENT_TARGETS,
