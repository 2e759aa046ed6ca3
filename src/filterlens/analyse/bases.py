"""PCA bases of sets of models, merged from per-layer moments (docs/method.md §4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping

import numpy as np

from filterlens.method.pca import N_COMPONENTS, Basis, Moments
from filterlens.reduce.passes import Projection

if TYPE_CHECKING:
    import pandas as pd  # the coefficient passes' jobs load a basis and import no pandas

# --- sets of models ------------------------------------------------------------------------

def basis_sets(pairs: pd.DataFrame, models: Iterable[str]) -> dict[str, list[str]]:
    """The sets bases are fitted on: full / robust / normal (the paired models) and each model."""
    robust = list(dict.fromkeys(pairs.robust))
    normal = list(dict.fromkeys(pairs.normal))
    sets = {"full": robust + [m for m in normal if m not in robust], "robust": robust, "normal": normal}
    sets.update({f"model:{m}": [m] for m in models})
    return sets


def set_moments(models: Iterable[str], moments: Mapping[str, Iterable[Moments]]) -> Moments:
    """Moments of every layer of every model in ``models`` (sum in the given order)."""
    return Moments.sum(m for model in models for m in moments[model])


def bases_table(bases: Mapping[str, Basis]) -> pd.DataFrame:
    """Tidy: one row per set and component, with variance, ratio, cumulative ratio and vector."""
    rows = []
    for name, basis in bases.items():
        cumulative = np.cumsum(basis.ratio)
        for c in range(N_COMPONENTS):
            row = {"set": name, "n_filters": basis.n, "component": c + 1,
                   "explained_variance": basis.explained_variance[c], "ratio": basis.ratio[c],
                   "cumulative_ratio": cumulative[c]}
            row.update({f"v{i}": basis.components[c, i] for i in range(9)})
            rows.append(row)
    import pandas as pd

    return pd.DataFrame(rows)


def basis_arrays(basis: Basis, variant: str | None = None) -> dict[str, np.ndarray]:
    """The arrays to save a basis as (``load_basis`` reads them back); a ``variant``'s basis
    (results/analysis/sensitivity/bases.npz holds several) has its name before each key."""
    arrays = {"n": np.asarray(basis.n), "mean": basis.mean, "components": basis.components,
              "explained_variance": basis.explained_variance, "ratio": basis.ratio}
    return {f"{variant}/{key}" if variant else key: value for key, value in arrays.items()}


def load_basis(path, variant: str | None = None) -> Basis:
    """The basis saved at ``path`` by :func:`basis_arrays` (of ``variant``)."""
    prefix = f"{variant}/" if variant else ""
    with np.load(path) as data:
        return Basis(int(data[f"{prefix}n"]), data[f"{prefix}mean"], data[f"{prefix}components"],
                     data[f"{prefix}explained_variance"], data[f"{prefix}ratio"])


def projections(sparse_reference: str, basis_path, variants: Mapping, variant_bases_path) -> dict[str, Projection]:
    """What passes 2 and 3 project on, by sparse reference: the configured ``sparse_reference``
    on the full basis at ``basis_path``, and each other reference of ``variants`` (name ->
    :class:`filterlens.method.choices.Settings`) on its variant's basis in ``variant_bases_path``
    (rule sensitivity_bases)."""
    out = {sparse_reference: Projection(load_basis(basis_path), sparse_reference)}
    for name, variant in variants.items():
        if variant.sparse_reference not in out:
            out[variant.sparse_reference] = Projection(load_basis(variant_bases_path, name), variant.sparse_reference)
    return out
