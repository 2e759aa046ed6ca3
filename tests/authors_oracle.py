"""The authors' pipeline, step by step as their public code runs it, on models held in memory.

The reference of tests/unit/test_authors_oracle.py (docs/method.md names what each step holds). It is
written from the steps of the authors' repositories -- onnxzoo2filterdb (export to ONNX, graph
levels, the filter database) and cvpr22w_RobustnessThroughTheLens (pca.ipynb, sparsity.ipynb,
metric_comparison.ipynb) -- and imports nothing from filterlens: only what a notebook user
imports (numpy, pandas, scipy, scikit-learn, onnx, torch).

The steps:

1. Export every model with ``torch.onnx.export(model.eval(), x, opset_version=13)`` (the
   TorchScript exporter), which folds a BatchNorm that is a conv's only consumer into it.
2. Give every node its level: the longest path to it from the graph's input, counting every
   node (get_layers_by_depth). A conv's ``conv_depth`` is the rank of its level among the levels
   holding a conv of any kernel size; ``conv_depth_norm`` = conv_depth / (number of such levels - 1).
3. The database: every 3x3 conv's initializer weight as rows of 9, one table row per layer with
   its filter ids.
4. Scale every filter by its max |w| (zero filters stay); a filter is sparse if its max |w| is
   at most 1/100 of its layer's reference: the layer's max |w| (the paper's text), or
   ``np.linalg.norm(W, np.inf)`` of the layer's (n, 9) matrix, its largest row sum of |w|, which
   the authors' sparsity notebook takes when its table has no ``layer_norm`` column
   (docs/method.md §3); each layer keeps the ids of its non-sparse filters.
5. scikit-learn PCA(9) of the scaled non-sparse filters of: all paired models (full), the robust
   ones, the normal ones, each model. Every scaled filter, sparse ones included, of every model
   is projected on the full basis; the histogram range is the min and max of all of it.
6. Distributions: per component ``np.histogram(density=True)`` over that range in 70 bins, bins
   of density 0 set to float32 eps, divided by the sum. Divergence: ``scipy.stats.entropy(p, q)
   + entropy(q, p)`` per component, weighted by the full basis' explained variance ratio.
   Robust against normal of a dataset: unique (each model once, a set of ids) and paired (the
   pairings' lists, a normal model's ids once per robust model it serves); by depth (paired):
   conv_depth 0, then ``pd.cut(conv_depth_norm, np.arange(0, 1.1, 0.1))``.
7. Layer quality: share of sparse filters; variance entropy of the layer's non-sparse filters
   (PCA explained variance ratios, -sum a log10 a), scaled and unscaled; orthogonality of the
   unit-norm filterbanks. Per model and depth group: sparse / filters, entropy weighted by
   non-sparse filters, orthogonality weighted by c_out; Fig. 7's boxes run over the pairings
   (metric_comparison.ipynb gives every pairing position its own id).

``authors_pipeline``'s keyword options change one of these choices each where the paper's text
and the authors' code part ways (docs/method.md §2-§4), its defaults being the steps above;
``headline_numbers`` gives the numbers a sensitivity analysis compares, by row id.
"""

from __future__ import annotations

import copy
import io
from collections import defaultdict

import numpy as np
import onnx
import pandas as pd
import scipy.stats
import torch
from onnx import numpy_helper
from sklearn.decomposition import PCA
from sklearn.utils.extmath import svd_flip

BINS = 70
DECILE_BINS = np.arange(0, 1.0 + 0.10, 0.10)  # pca.ipynb; metric_comparison.ipynb's np.linspace(0, 1, 11) is equal
FIRST = "first"


# --- 1-3: export, levels, database -----------------------------------------------------------

def export_onnx(model: torch.nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model.eval(), example, buffer, export_params=True, opset_version=13, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def _consumers_and_feeds(graph: onnx.GraphProto) -> tuple[dict[str, list[int]], list[str]]:
    """Tensor name -> indices of the nodes that read it; the graph inputs that are no initializer."""
    consumers = defaultdict(list)
    for index, node in enumerate(graph.node):
        for tensor in node.input:
            consumers[tensor].append(index)
    initializers = {t.name for t in graph.initializer}
    return consumers, [i.name for i in graph.input if i.name not in initializers]


def node_levels(model: onnx.ModelProto) -> dict[int, int]:
    """Node index -> level: breadth first from every node fed by a graph input, each node keeping
    the largest step at which it is reached. Nodes fed by constants only are never reached."""
    graph = model.graph
    consumers, feeds = _consumers_and_feeds(graph)
    levels: dict[int, int] = {}
    for feed in feeds:
        frontier, level = set(consumers[feed]), 0
        while frontier:
            following = set()
            for index in frontier:
                levels[index] = max(level, levels.get(index, -1))
                for tensor in graph.node[index].output:
                    following.update(consumers[tensor])
            frontier, level = following, level + 1
    return levels


def conv_counts(model: onnx.ModelProto) -> dict[int, int]:
    """Node index -> the largest number of Conv nodes (any kernel size) strictly before it on any
    path from the graph's input (analysis.depth_definition conv_count). Breadth first as
    ``node_levels``: step k holds, per node reached by a path of k steps, the most Conv nodes on
    such a path before it; every node keeps the largest count of any step."""
    graph = model.graph
    consumers, feeds = _consumers_and_feeds(graph)
    counts: dict[int, int] = {}
    for feed in feeds:
        frontier = {index: 0 for index in consumers[feed]}
        while frontier:
            following: dict[int, int] = {}
            for index, count in frontier.items():
                counts[index] = max(count, counts.get(index, -1))
                after = count + (graph.node[index].op_type == "Conv")
                for tensor in graph.node[index].output:
                    for consumer in consumers[tensor]:
                        following[consumer] = max(after, following.get(consumer, -1))
            frontier = following
    return counts


def module_name(node: onnx.NodeProto) -> str:
    """The module path from the exporter's scope name: '/block1/layer/layer.0/conv1/Conv' ->
    'block1.layer.0.conv1' (a container's child is scoped '<container>.<child>')."""
    parts = []
    for scope in node.name.strip("/").split("/")[:-1]:
        if parts and scope.startswith(parts[-1] + "."):
            scope = scope[len(parts[-1]) + 1:]
        parts.append(scope)
    return ".".join(parts)


def conv_layers(model: onnx.ModelProto) -> pd.DataFrame:
    """Every 3x3 conv of the graph: module name, its depth under both definitions
    (conv_depth_{graph_level,conv_count} and conv_depth_norm_{...}; conv_depth and conv_depth_norm
    are the graph level ones) and its weight."""
    initializers = {t.name: t for t in model.graph.initializer}
    levels, counts = node_levels(model), conv_counts(model)
    convs = []
    for index, level in levels.items():
        node = model.graph.node[index]
        if node.op_type != "Conv":
            continue
        weight = numpy_helper.to_array(next(initializers[t] for t in node.input if t in initializers))
        if weight.ndim == 4:
            convs.append((level, counts[index], module_name(node), weight))
    conv_levels = sorted({level for level, _, _, _ in convs})
    max_count = max(count for _, count, _, _ in convs)
    rows = []
    for level, count, name, weight in convs:
        if weight.shape[-2:] != (3, 3):
            continue
        conv_depth = conv_levels.index(level)
        rows.append({"layer": name, "conv_depth": conv_depth, "conv_depth_norm": conv_depth / (len(conv_levels) - 1),
                     "conv_depth_graph_level": conv_depth,
                     "conv_depth_norm_graph_level": conv_depth / (len(conv_levels) - 1),
                     "conv_depth_conv_count": count, "conv_depth_norm_conv_count": count / max_count,
                     "c_out": weight.shape[0], "weight": weight})
    return pd.DataFrame(rows)


def filter_database(onnx_models: dict[str, onnx.ModelProto], sheet: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """All filters (n, 9) float64 and the layer table (model, dataset, robust, layer, conv_depth,
    conv_depth_norm, c_out, filter_ids)."""
    filters, tables, start = [], [], 0
    for model, proto in onnx_models.items():
        layers = conv_layers(proto)
        ids = []
        for weight in layers.weight:
            rows = weight.reshape(-1, 9).astype(np.float64)
            filters.append(rows)
            ids.append(np.arange(start, start + len(rows)))
            start += len(rows)
        layers = layers.drop(columns="weight").assign(model=model, filter_ids=ids,
                                                      dataset=sheet.loc[model, "dataset"],
                                                      robust=bool(sheet.loc[model, "robust"]))
        tables.append(layers)
    return np.concatenate(filters), pd.concat(tables, ignore_index=True)


# --- 4-6: scaling, sparsity, PCA, distributions, divergence ---------------------------------

def scale(x: np.ndarray) -> np.ndarray:
    den = np.linalg.norm(x, np.inf, axis=1)
    return x / np.where(den == 0, 1, den)[:, None]


def layer_reference(weights: np.ndarray, reference: str) -> float:
    """The paper's text: the layer's max |w|; sparsity.ipynb: ``np.linalg.norm(W, np.inf)`` of
    the (n, 9) matrix W."""
    if reference == "max_abs":
        return float(np.abs(weights).max())
    return float(np.linalg.norm(weights, np.inf))


def sparse_ids(filters: np.ndarray, layers: pd.DataFrame, reference: str = "max_abs") -> set[int]:
    sparse = set()
    for ids in layers.filter_ids:
        peaks = np.linalg.norm(filters[ids], np.inf, axis=1)
        sparse.update(ids[peaks <= layer_reference(filters[ids], reference) / 100].tolist())
    return sparse


def discrete_distribution(x: np.ndarray, value_range: tuple[float, float], bins: int = BINS,
                          empty_bins: str = "density") -> np.ndarray:
    """The authors' (empty_bins "density"): eps on the zero bins of the density histogram, then
    normalised; "probability": counts / total, eps on the zero bins, normalised again."""
    if empty_bins == "density":
        v, _ = np.histogram(x, range=value_range, bins=bins, density=True)
    elif empty_bins == "probability":
        counts, _ = np.histogram(x, range=value_range, bins=bins)
        v = counts / np.sum(counts)
    else:
        raise ValueError(f"empty_bins: {empty_bins!r} is neither 'density' nor 'probability'")
    v = v.astype(np.double)
    v[v == 0] = np.finfo(np.float32).eps
    return v / np.sum(v)


def kl_sym(p: np.ndarray, q: np.ndarray) -> float:
    return scipy.stats.entropy(p, q) + scipy.stats.entropy(q, p)


def weighted_kl(coefficients: np.ndarray, robust_ids, normal_ids, value_range, ratio,
                empty_bins: str = "density") -> tuple[float, list[float]]:
    per_component = [kl_sym(discrete_distribution(coefficients[robust_ids, c], value_range, empty_bins=empty_bins),
                            discrete_distribution(coefficients[normal_ids, c], value_range, empty_bins=empty_bins))
                     for c in range(9)]
    return float(np.sum([ratio[c] * per_component[c] for c in range(9)])), per_component


def depth_groups(layers: pd.DataFrame) -> pd.Series:
    """'first' for conv_depth 0, else the pd.cut interval of conv_depth_norm as 'a-b'."""
    cut = pd.cut(layers.conv_depth_norm, DECILE_BINS)  # conv_depth_norm 0 is in no interval
    labels = [FIRST if pd.isna(interval) else f"{interval.left:.1f}-{interval.right:.1f}" for interval in cut]
    return pd.Series(labels, index=layers.index, dtype=object).where(layers.conv_depth != 0, FIRST)


def ids_of(layers: pd.DataFrame, models, mask=None) -> np.ndarray:
    """The non-sparse filter ids of ``models`` in order, a model listed twice counted twice."""
    parts = []
    for model in models:
        selected = layers[(layers.model == model) & (True if mask is None else mask)]
        parts.extend(selected.nonsparse_ids)
    return np.hstack(parts) if parts else np.zeros(0, dtype=int)


DEPTH_DEFINITIONS = ("graph_level", "conv_count")
HISTOGRAM_RANGES = ("all_filters", "paired_nonsparse")
PCA_SIGNS = ("v_based", "u_based")
EMPTY_BINS = ("density", "probability")


def _check_option(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"authors_pipeline: {name}={value!r}; choose one of {', '.join(allowed)}")


def u_based_signs(basis: PCA, fitted: np.ndarray) -> np.ndarray:
    """Per component +1 or -1: the sign that the old scikit-learn's ``svd_flip(u, vt,
    u_based_decision=True)`` gives the component, relative to ``basis.components_``. ``fitted``
    are the rows the basis was fitted on."""
    u, _, vt = np.linalg.svd(fitted - fitted.mean(axis=0), full_matrices=False)
    _, vt = svd_flip(u, vt, u_based_decision=True)
    return np.where(np.sum(vt * basis.components_, axis=1) < 0, -1.0, 1.0)


def authors_pipeline(onnx_models: dict[str, onnx.ModelProto], sheet: pd.DataFrame,
                     pairings: pd.DataFrame, sparse_reference: str = "max_abs", *,
                     depth_definition: str = "graph_level", histogram_range: str = "all_filters",
                     pca_sign: str = "v_based", empty_bins: str = "density") -> dict:
    """Everything the paper reports, computed as the authors did. ``sheet`` indexed by model with
    dataset and robust; ``pairings`` with columns Robust, Normal, Dataset (one row per pair);
    ``sparse_reference`` the layer's reference of sparse filters (step 4). The keywords change one
    choice each (docs/method.md §2-§4); their defaults are the steps above:

    - ``depth_definition`` "conv_count": a conv's depth is the most convs before it on a path
      from the input (``conv_counts``), normalised by the model's largest; depth groups from it.
    - ``histogram_range`` "paired_nonsparse": the range of the full set's scaled non-sparse
      filters' coefficients (each filter once) instead of every scaled filter of every model.
    - ``pca_sign`` "u_based": the full basis' components take the sign of ``svd_flip(u, vt,
      u_based_decision=True)`` (``u_based_signs``); the coefficients and the range follow.
    - ``empty_bins`` "probability": eps on the empty bins of counts / total, not of densities.
    """
    _check_option("depth_definition", depth_definition, DEPTH_DEFINITIONS)
    _check_option("histogram_range", histogram_range, HISTOGRAM_RANGES)
    _check_option("pca_sign", pca_sign, PCA_SIGNS)
    _check_option("empty_bins", empty_bins, EMPTY_BINS)
    filters, layers = filter_database(onnx_models, sheet)
    layers["conv_depth"] = layers[f"conv_depth_{depth_definition}"]
    layers["conv_depth_norm"] = layers[f"conv_depth_norm_{depth_definition}"]
    sparse = sparse_ids(filters, layers, sparse_reference)
    layers["nonsparse_ids"] = [np.array(sorted(set(ids.tolist()) - sparse), dtype=int) for ids in layers.filter_ids]
    layers["depth_group"] = depth_groups(layers)
    scaled = scale(filters)

    used = list(pd.concat([pairings.Robust, pairings.Normal]).unique())
    sets = {"full": used, "robust": list(pairings.Robust.unique()), "normal": list(pairings.Normal.unique())}
    sets.update({f"model:{m}": [m] for m in used})
    set_ids = {name: np.array(sorted(set(ids_of(layers, models).tolist()))) for name, models in sets.items()}
    bases = {name: PCA(n_components=9).fit(scaled[ids]) for name, ids in set_ids.items()}
    signs = np.ones(9)
    if pca_sign == "u_based":
        signs = u_based_signs(bases["full"], scaled[set_ids["full"]])
        bases["full"] = copy.deepcopy(bases["full"])
        bases["full"].components_ = bases["full"].components_ * signs[:, None]  # a sign flip is exact
    coefficients = bases["full"].transform(scaled)
    ranged = coefficients if histogram_range == "all_filters" else coefficients[set_ids["full"]]
    value_range = (ranged.min(), ranged.max())
    ratio = bases["full"].explained_variance_ratio_

    kl_rows, kl_depth_rows = [], []
    for dataset in pairings.Dataset.unique():
        pairs = pairings[pairings.Dataset == dataset]
        unique = [np.array(sorted(set(ids_of(layers, pairs[side].unique()).tolist()))) for side in ("Robust", "Normal")]
        paired = [ids_of(layers, list(pairs[side])) for side in ("Robust", "Normal")]
        for pooling, (robust_ids, normal_ids) in (("unique", unique), ("paired", paired)):
            kl, per_component = weighted_kl(coefficients, robust_ids, normal_ids, value_range, ratio, empty_bins)
            kl_rows.append({"dataset": dataset, "pooling": pooling, "kl": kl, "components": per_component,
                            "n_robust_filters": len(robust_ids), "n_normal_filters": len(normal_ids)})
        for group in [FIRST, *[f"{a:.1f}-{a + 0.1:.1f}" for a in DECILE_BINS[:-1]]]:
            mask = layers.depth_group == group
            robust_ids, normal_ids = ids_of(layers, list(pairs.Robust), mask), ids_of(layers, list(pairs.Normal), mask)
            kl, per_component = weighted_kl(coefficients, robust_ids, normal_ids, value_range, ratio, empty_bins)
            kl_depth_rows.append({"dataset": dataset, "depth_group": group, "kl": kl, "components": per_component,
                                  "n_robust_filters": len(robust_ids), "n_normal_filters": len(normal_ids)})

    quality = layer_quality(filters, scaled, layers, sparse)
    return {"filters": filters, "layers": quality, "bases": bases, "coefficients": coefficients, "range": value_range,
            "set_ids": set_ids, "component_signs": signs,
            "kl": pd.DataFrame(kl_rows), "kl_by_depth": pd.DataFrame(kl_depth_rows),
            "quality_by_depth": quality_by_depth(quality), "boxes": boxes(quality_by_depth(quality), pairings),
            "sparse_shares": sparse_shares(quality)}


# --- 7: layer quality ------------------------------------------------------------------------

def variance_entropy(rows: np.ndarray) -> float:
    if len(rows) < 2:
        return float("nan")
    ratio = PCA(n_components=min(9, len(rows))).fit(rows).explained_variance_ratio_
    if not np.isfinite(ratio).all():
        return float("nan")
    ratio = ratio[ratio > 0]
    return float(-(ratio * np.log10(ratio)).sum())


def orthogonality(weight: np.ndarray) -> float:
    w = weight.reshape(weight.shape[0], -1)
    c_out = len(w)
    if c_out < 2:
        return float("nan")
    norms = np.linalg.norm(w, axis=1)
    w = w / np.where(norms == 0, 1, norms)[:, None]
    return float(1 - np.abs(w @ w.T - np.eye(c_out)).sum() / (c_out * (c_out - 1)))


def layer_quality(filters: np.ndarray, scaled: np.ndarray, layers: pd.DataFrame, sparse: set[int]) -> pd.DataFrame:
    table = layers.copy()
    table["n_filters"] = [len(ids) for ids in table.filter_ids]
    table["n_sparse"] = [len(set(ids.tolist()) & sparse) for ids in table.filter_ids]
    table["n_nonsparse"] = table.n_filters - table.n_sparse
    table["sparsity"] = table.n_sparse / table.n_filters
    table["entropy_unscaled"] = [variance_entropy(filters[ids]) for ids in table.nonsparse_ids]
    table["entropy_scaled"] = [variance_entropy(scaled[ids]) for ids in table.nonsparse_ids]
    table["orthogonality"] = [orthogonality(filters[ids].reshape(c_out, -1)) for ids, c_out in
                              zip(table.filter_ids, table.c_out)]
    return table


def _weighted(values: pd.Series, weights: pd.Series) -> float:
    ok = values.notna() & (weights > 0)
    return float((values[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else float("nan")


ENTROPY_WEIGHTS = {"nonsparse": "n_nonsparse", "all": "n_filters"}


def quality_by_depth(layers: pd.DataFrame, entropy_weights: str = "nonsparse") -> pd.DataFrame:
    """Per model and depth group ("all" and each group): sparse / filters, entropy weighted by
    the layers' non-sparse filters (``entropy_weights`` "nonsparse") or all filters ("all"),
    orthogonality weighted by c_out."""
    weight = ENTROPY_WEIGHTS[entropy_weights]
    rows = []
    for group_of, frame in (("all", layers.assign(depth_group="all")), ("group", layers)):
        for (model, group), part in frame.groupby(["model", "depth_group"]):
            rows.append({"model": model, "depth_group": group,
                         "sparsity": part.n_sparse.sum() / part.n_filters.sum(),
                         "entropy_unscaled": _weighted(part.entropy_unscaled, part[weight]),
                         "entropy_scaled": _weighted(part.entropy_scaled, part[weight]),
                         "orthogonality": _weighted(part.orthogonality, part.c_out)})
    return pd.DataFrame(rows)


def boxes(quality: pd.DataFrame, pairings: pd.DataFrame) -> pd.DataFrame:
    """Fig. 7's box contents: per pairing position, the robust and the normal model's values."""
    rows = []
    for position, pair in enumerate(pairings.itertuples()):
        for training, model in (("robust", pair.Robust), ("normal", pair.Normal)):
            part = quality[quality.model == model]
            rows.extend({**record, "pair": position, "dataset": pair.Dataset, "training": training}
                        for record in part.to_dict("records"))
    return pd.DataFrame(rows)


def sparse_shares(layers: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for training, part in (("robust", layers[layers.robust]), ("normal", layers[~layers.robust])):
        rows.append({"training": training, "pooled_share": part.n_sparse.sum() / part.n_filters.sum(),
                     "mean_layer_share": part.sparsity.mean()})
    return pd.DataFrame(rows)


# --- the headline numbers ------------------------------------------------------------------

HEADLINE_GROUPS = ["all", FIRST, *[f"{a:.1f}-{a + 0.1:.1f}" for a in DECILE_BINS[:-1]]]


def _side_difference(values: pd.Series, pairs: pd.DataFrame, over_pairings: bool) -> float:
    """Mean over the robust side minus mean over the normal side of ``values`` (model -> value,
    NaN where the model has none). Over the pairings: one value per pairing row, pairs with a NaN
    left out; else each distinct model of a side once, its NaNs left out."""
    if over_pairings:
        robust = values.reindex(pairs.Robust).to_numpy(dtype=float)
        normal = values.reindex(pairs.Normal).to_numpy(dtype=float)
        keep = ~(np.isnan(robust) | np.isnan(normal))
        robust, normal = robust[keep], normal[keep]
    else:
        robust = values.reindex(pairs.Robust.unique()).dropna().to_numpy(dtype=float)
        normal = values.reindex(pairs.Normal.unique()).dropna().to_numpy(dtype=float)
    if len(robust) == 0 or len(normal) == 0:
        return float("nan")
    return float(robust.mean() - normal.mean())


def headline_numbers(result: dict, pairings: pd.DataFrame, *, entropy: str = "unscaled",
                     entropy_weights: str = "nonsparse", quality_over_pairings: bool = True) -> dict[str, float]:
    """The numbers a sensitivity analysis compares, by row id, from an ``authors_pipeline``
    result and its pairings (columns Robust, Normal, Dataset):

    first_component_share; sparse_share/{robust,normal}; kl/{dataset}/{unique,paired};
    kl_first/{dataset}; {sparsity,entropy,orthogonality}_difference/{dataset}/{group} for the
    groups of HEADLINE_GROUPS that some model of the dataset's pairings has. ``entropy``
    "unscaled" or "scaled" picks the layers' entropy, ``entropy_weights`` its weights (see
    ``quality_by_depth``); ``quality_over_pairings`` as ``_side_difference``."""
    if entropy not in ("unscaled", "scaled"):
        raise ValueError(f"headline_numbers: entropy={entropy!r}; choose one of unscaled, scaled")
    if entropy_weights not in ENTROPY_WEIGHTS:
        raise ValueError(f"headline_numbers: entropy_weights={entropy_weights!r}; choose one of nonsparse, all")
    numbers = {"first_component_share": float(result["bases"]["normal"].explained_variance_ratio_[0])}
    shares = result["sparse_shares"].set_index("training").pooled_share
    numbers.update({f"sparse_share/{side}": float(shares[side]) for side in ("robust", "normal")})
    kl, kl_by_depth = result["kl"], result["kl_by_depth"]
    quality = quality_by_depth(result["layers"], entropy_weights)
    metrics = {"sparsity": "sparsity", "entropy": f"entropy_{entropy}", "orthogonality": "orthogonality"}
    for dataset in pairings.Dataset.unique():
        for pooling in ("unique", "paired"):
            numbers[f"kl/{dataset}/{pooling}"] = float(kl[(kl.dataset == dataset) & (kl.pooling == pooling)].kl.item())
        first = kl_by_depth[(kl_by_depth.dataset == dataset) & (kl_by_depth.depth_group == FIRST)]
        numbers[f"kl_first/{dataset}"] = float(first.kl.item())
        pairs = pairings[pairings.Dataset == dataset]
        members = quality[quality.model.isin(set(pairs.Robust) | set(pairs.Normal))]
        for metric, column in metrics.items():
            for group in HEADLINE_GROUPS:
                part = members[members.depth_group == group]
                if len(part):
                    values = part.set_index("model")[column]
                    numbers[f"{metric}_difference/{dataset}/{group}"] = _side_difference(
                        values, pairs, quality_over_pairings)
    return numbers
