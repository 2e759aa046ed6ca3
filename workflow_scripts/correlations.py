"""Rule correlations: Spearman's rho of every per-model measure (the 'all' depth group of the
layer quality and the filter measures) with clean and robust accuracy, with p-values and
bootstrap intervals over models, per dataset and over all; Holm over the table."""

from filterlens.analyse.statistics import correlations
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    settings = snakemake.params.settings
    quality = read_tsv(snakemake.input.quality)
    measures = read_tsv(snakemake.input.filter_measures)
    per_model = quality[quality.depth_group == "all"].merge(
        measures[measures.depth_group == "all"].drop(columns=["dataset", "robust", "depth_group", "n_layers"]),
        on="model_id", how="outer")
    columns = [c for c in snakemake.params.measures if c in per_model.columns]
    models = read_tsv(snakemake.input.models)
    result = correlations(per_model.drop(columns=["dataset"]), models, columns, n_bootstrap=settings["n_bootstrap"],
                          seed=settings["seed"], level=settings["level"], alpha=settings["alpha"])
    log.info("\n%s", result.to_string(index=False))
    write_tsv(result, snakemake.output[0])
