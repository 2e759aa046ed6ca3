"""Data shaping for the paper's figures (docs/method.md §6): small tables in, small tables out;
the rule scripts read and write the files and draw.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from filterlens.config.datasets import missing_test_images, test_images
from filterlens.method.distributions import distribution, histogram_edges
from filterlens.method.pca import N_COMPONENTS


class FigureConfigError(ValueError):
    """A figures setting the zoo cannot satisfy; the message names key, value and allowed ids."""


# --- which models a figure shows -----------------------------------------------------------

def robust_models(sheet: pd.DataFrame) -> list[str]:
    return list(sheet.model_id[sheet.robust == True])  # noqa: E712 (a boolean column)


def resolve_pair(sheet: pd.DataFrame, robust_id: str | None, key: str = "figures.pair") -> tuple[str, str]:
    """(robust, normal) for Fig. 4-6: ``robust_id`` and its counterpart from the sheet.

    ``None`` means the sheet's first robust model. An id that is not a robust model of the
    sheet raises :class:`FigureConfigError` naming the key, the value and the allowed ids.
    """
    allowed = robust_models(sheet)
    if not allowed:
        raise FigureConfigError(f"config key {key}: the zoo has no robust model, so Fig. 4-6 have no pair to show")
    if robust_id is None:
        robust_id = allowed[0]
    if robust_id not in allowed:
        what = ("is a normal model; name the robust model of the pair" if robust_id in set(sheet.model_id)
                else "is not a model of the zoo")
        raise FigureConfigError(f"config key {key}: {robust_id!r} {what}. Allowed (robust model ids of the "
                                f"sheet): {', '.join(allowed)}")
    return robust_id, str(sheet.loc[robust_id, "counterpart"])


def activation_test_images(sheet: pd.DataFrame, model: str, cifar_dir: str) -> str:
    """The test images Fig. 6 attacks: the file of the model's dataset, which this run holds
    for the mini zoo's dataset and for CIFAR-10/100 when torchvision's test file is under
    ``cifar_dir`` (cifar_training.data_dir); otherwise :class:`FigureConfigError` says why."""
    dataset = sheet.loc[model, "dataset"]
    data = test_images(dataset, cifar_dir)
    if data is None:
        raise FigureConfigError(f"Fig. 6 attacks a test image of {model}'s dataset {dataset!r}, but "
                                f"{missing_test_images(dataset, cifar_dir)}; or set figures.pair to a model of "
                                "a dataset whose test images are at hand")
    return data


# --- Fig. 3: pooled coefficient distributions ----------------------------------------------

def coefficient_distributions(pairs: pd.DataFrame, histograms: Mapping[str, np.ndarray], low: float,
                              high: float) -> pd.DataFrame:
    """Per dataset and training (unique pooling: each distinct model once), per component and
    bin: counts summed over all layers of the models; probability = count / total count of
    the component (NaN when the component has no coefficient); and distribution, the
    component's histogram as the KL compares it (:func:`filterlens.method.distributions.distribution`:
    densities with empty bins at float32 eps, normalised to sum 1).

    ``histograms`` maps model id to its counts (n_layers, 9, bins) over [low, high].
    """
    rows = []
    for dataset, part in pairs.groupby("dataset", sort=False):
        for training, models in (("robust", part.robust), ("normal", part.normal)):
            models = list(dict.fromkeys(models))
            counts = sum(histograms[m].sum(axis=0) for m in models)  # (9, bins)
            bins = counts.shape[1]
            edges = histogram_edges(low, high, bins)
            totals = counts.sum(axis=1)
            compared = distribution(counts, edges)
            for c in range(N_COMPONENTS):
                probability = counts[c] / totals[c] if totals[c] else np.full(bins, np.nan)
                rows.append(pd.DataFrame({
                    "dataset": dataset, "training": training, "component": c + 1, "bin": np.arange(bins),
                    "bin_left": edges[:-1], "bin_right": edges[1:], "count": counts[c].astype(np.int64),
                    "probability": probability, "distribution": compared[c],
                }))
    columns = ["dataset", "training", "component", "bin", "bin_left", "bin_right", "count", "probability",
               "distribution"]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


# --- Fig. 7: layer quality over the pairings ------------------------------------------------

def quality_over_pairings(quality: pd.DataFrame, pairs: pd.DataFrame, boxes: str = "pairings") -> pd.DataFrame:
    """Fig. 7's boxes as the authors drew them: one entry per robust/normal pairing, training
    and depth group. Per dataset, the robust box holds the robust model of each pairing and the
    normal box its counterpart, so a normal model paired with k robust models counts k times;
    models in no pairing are left out. ``quality`` is the per-model table of
    :func:`filterlens.analyse.quality.quality_by_depth` (model_id, depth_group, metrics); the result
    has its columns, with ``dataset`` and ``robust`` taken from the pairing, plus ``pair``
    (the pairing's position in ``pairs``) and ``training`` ('robust' or 'normal').

    ``boxes="models"`` (config figures.boxes): each model of the pairings once per dataset and
    training, ``pair`` the first pairing that names it."""
    entries = [{"pair": i, "dataset": p.dataset, "training": training, "model_id": model}
               for i, p in enumerate(pairs.itertuples()) for training, model in (("robust", p.robust),
                                                                                 ("normal", p.normal))]
    if boxes == "models":
        first = {}
        for entry in entries:
            first.setdefault((entry["dataset"], entry["training"], entry["model_id"]), entry)
        entries = list(first.values())
    columns = [c for c in quality.columns if c not in ("dataset", "robust")]
    slots = pd.DataFrame(entries, columns=["pair", "dataset", "training", "model_id"])
    table = slots.merge(quality[columns], on="model_id", how="inner", validate="many_to_many")
    table.insert(3, "robust", table.training == "robust")
    return table.sort_values(["pair", "training", "depth_group"], kind="stable").reset_index(drop=True)
