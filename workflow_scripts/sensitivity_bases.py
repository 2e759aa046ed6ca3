"""Rule sensitivity_bases: the full PCA basis of every variant whose pass 1 gives other moments
(another sparse reference), from the models' variant moments; passes 2 and 3 project on it."""

import numpy as np

from filterlens.analyse.bases import basis_arrays, basis_sets, set_moments
from filterlens.analyse.sensitivity import scaled_moments_of
from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import write_npz
from filterlens.io.scripting import rule_script
from filterlens.method.choices import Settings, pass_variants
from filterlens.method.pca import pca

with rule_script(snakemake) as log:
    settings = Settings(**snakemake.params.choices)
    sheet = read_sheet(snakemake.input.sheet)
    full = basis_sets(pairs(sheet), [])["full"]
    arrays = {}
    for name, variant in pass_variants(settings, "summarize").items():
        if variant.sparse_reference == settings.sparse_reference:
            continue
        moments = {}
        for model, path in zip(sheet.model_id, snakemake.input.moments, strict=True):
            with np.load(path) as data:
                moments[model] = scaled_moments_of(data, name)
        basis = pca(set_moments(full, moments))
        log.info("%s: full basis of %d filters, variance ratios %s", name, basis.n, np.round(basis.ratio, 4))
        arrays.update(basis_arrays(basis, name))
    write_npz(snakemake.output[0], **arrays)
