"""Rule sensitivity_analysis: every finding and headline number under the configured choices and
under each variant (one choice changed alone), from the passes' results of each
(filterlens.analyse.sensitivity)."""

import numpy as np
import pandas as pd

from filterlens.analyse.sensitivity import COLUMNS, DEFAULT, MergeInputs, headline, scaled_moments_of
from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.choices import Settings, pass_variants


def arrays_of(paths):
    out = []
    for path in paths:
        with np.load(path) as data:
            out.append({key: data[key] for key in data.files})
    return out


with rule_script(snakemake) as log:
    settings = Settings.of(snakemake.params.settings)
    sheet = read_sheet(snakemake.input.sheet)
    sheet_pairs = pairs(sheet)
    models, paired = list(sheet.model_id), [m for m in sheet.model_id if m in {*sheet_pairs.robust, *sheet_pairs.normal}]
    histograms = dict(zip(paired, arrays_of(snakemake.input.histograms), strict=True))
    some = next(iter(histograms.values()))
    inputs = MergeInputs(dict(zip(models, map(read_tsv, snakemake.input.layers), strict=True)),
                         {m: scaled_moments_of(a) for m, a in zip(models, arrays_of(snakemake.input.moments))},
                         {m: a["counts"] for m, a in histograms.items()}, float(some["low"]), float(some["high"]))
    variant_layers = dict(zip(models, map(read_tsv, snakemake.input.variant_layers), strict=True))
    variant_moments = dict(zip(models, arrays_of(snakemake.input.variant_moments), strict=True))
    variant_histograms = dict(zip(paired, arrays_of(snakemake.input.variant_histograms), strict=True))
    model_table = read_tsv(snakemake.input.models)

    def of(variant_settings, variant_inputs, name):
        table = headline(variant_settings, variant_inputs, sheet, sheet_pairs, model_table, snakemake.params.bins,
                         snakemake.params.statistics)
        shown = table[table.kind == "finding"].holds
        log.info("%s: %d of %d findings hold", name, int((shown == 1).sum()), len(shown))
        return table.assign(variant=name)

    tables = [of(settings, inputs, DEFAULT)]
    relabelled = pass_variants(settings, "summarize")  # pass 1 wrote a layer table of each, where the store allowed
    for name, variant in settings.variants().items():
        if name in relabelled and not all((t.variant == name).any() for t in variant_layers.values()):
            # a store imported from the filter database records one depth definition only (logs/summarize)
            log.warning("%s: not computed, a model's pass 1 could not make its layer table", name)
            tables.append(tables[0].assign(variant=name, value=np.nan, text="", holds=np.nan))
            continue
        tables.append(of(variant, inputs.for_variant(name, variant_layers, variant_moments, variant_histograms), name))
    write_tsv(pd.concat(tables, ignore_index=True)[COLUMNS], snakemake.output[0])
