"""Display labels of measures for tables and figures."""

from __future__ import annotations

from filterlens.analyse.filter_measures import MEASURES

# Labels of every per-model measure the statistics report (layer quality of docs/method.md §5 too).
MEASURE_LABELS = {
    "sparsity": "sparsity", "entropy_unscaled": "variance entropy (unscaled)",
    "entropy_scaled": "variance entropy (scaled)", "orthogonality": "orthogonality",
    **MEASURES, "spectral_norm_max": "spectral norm (max over layers)", "sigma_mean": "mean singular value",
}
