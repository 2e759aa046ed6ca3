"""The one plotting style of every figure: rc params, colours, orders, colormaps, saving.

Every figure script calls :func:`apply_style` first and :func:`save_figure` last, and takes
its colours and orders from here, so robust/normal and each dataset look the same in every
figure. Sizes are for a two-column paper: :data:`COLUMN_WIDTH` (one column) and
:data:`TEXT_WIDTH` (both), in inches, with 7-8 pt text.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: rule jobs, clusters, tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Colormap, Normalize  # noqa: E402

from filterlens.io.atomic import atomic_output  # noqa: E402

COLUMN_WIDTH = 3.3  # inches, one column of a CVPR-style paper
TEXT_WIDTH = 6.9  # inches, both columns

# Okabe-Ito / seaborn "colorblind": distinguishable with the common colour-vision deficiencies.
_CB = ['#0173b2', '#de8f05', '#029e73', '#d55e00', '#cc78bc', '#ca9161', '#fbafe4', '#949494',
       '#ece133', '#56b4e9']

TRAINING_ORDER = ["normal", "robust"]
TRAINING_COLORS = {"normal": _CB[0], "robust": _CB[3]}
TRAINING_LABELS = {"normal": "normal", "robust": "robust"}

DATASET_ORDER = ["cifar10", "cifar100", "imagenet", "coloured_digits"]
DATASET_COLORS = {"cifar10": _CB[2], "cifar100": _CB[4], "imagenet": _CB[5], "coloured_digits": _CB[9]}
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet",
                  "coloured_digits": "Coloured digits"}
_SPARE_DATASET_COLORS = [_CB[1], _CB[6], _CB[8], _CB[7]]

SET_ORDER = ["full", "robust", "normal"]  # the PCA sets of Fig. 2
SET_COLORS = {"full": "#333333", **TRAINING_COLORS}

DIVERGING_CMAP = "RdBu_r"  # ColorBrewer, colour-blind safe; 0 is white
SEQUENTIAL_CMAP = "magma"
PNG_DPI = 200  # the report's PNGs; PDFs are vector

RC = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "legend.title_fontsize": 7,
    "figure.titlesize": 8,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.0,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable, accepted by paper submission systems
    "ps.fonttype": 42,
    "svg.hashsalt": "filterlens",
    "image.interpolation": "nearest",
    "figure.constrained_layout.use": False,
}


# Seaborn's strip plots jitter their points with numpy's global random state (np.random.uniform):
# a fixed seed makes a figure the same bytes on every run.
JITTER_SEED = 0


def apply_style() -> None:
    """The shared rc params (and seaborn's, if it is there) for every figure, and the seed of the
    strip plots' jitter (:data:`JITTER_SEED`)."""
    np.random.seed(JITTER_SEED)
    try:
        import seaborn as sns

        sns.set_theme(context="paper", style="ticks", palette=_CB, rc=RC)
    except ImportError:  # pragma: no cover - the figures environment has seaborn
        pass
    plt.rcParams.update(RC)
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting chatter in the logs


def dataset_order(datasets: Iterable[str]) -> list[str]:
    """The datasets present, in the fixed order (known ones first, then alphabetical)."""
    present = list(dict.fromkeys(datasets))
    known = [d for d in DATASET_ORDER if d in present]
    return known + sorted(d for d in present if d not in DATASET_ORDER)


def dataset_colors(datasets: Iterable[str]) -> dict[str, str]:
    """A colour per dataset: the fixed one if known, else a spare one in order."""
    spare = iter(_SPARE_DATASET_COLORS * 4)
    return {d: DATASET_COLORS[d] if d in DATASET_COLORS else next(spare) for d in dataset_order(datasets)}


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


DEPTH_AXIS_LABEL = "depth group (first layer, then conv depth / max ≤ x)"


def depth_group_label(group: str) -> str:
    """A depth group as a tick label: 'first', else the decile's upper edge ('0.1' ... '1.0')."""
    return group if group == "first" or "-" not in group else group.split("-")[1]


def training_label(robust: bool) -> str:
    return "robust" if robust else "normal"


def symmetric_norm(values: np.ndarray | float) -> Normalize:
    """A colour range symmetric around 0: [-m, m], m = max |values| (1 if all are 0 or NaN)."""
    m = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
    if not np.isfinite(m) or m == 0:
        m = 1.0
    return Normalize(vmin=-m, vmax=m)


def diverging_cmap(name: str = DIVERGING_CMAP) -> Colormap:
    """The diverging colormap centred at 0 (use with :func:`symmetric_norm`); NaN is white."""
    cmap = plt.get_cmap(name).copy()
    cmap.set_bad("white")
    return cmap


def sequential_cmap(name: str = SEQUENTIAL_CMAP) -> Colormap:
    cmap = plt.get_cmap(name).copy()
    cmap.set_bad("white")
    return cmap


def tile_mosaic(tiles: np.ndarray, ncols: int, gap: int = 1) -> np.ndarray:
    """Tiles (n, h, w) as one (rows*(h+gap)-gap, ncols*(w+gap)-gap) image, NaN between tiles.

    One ``imshow`` of the mosaic draws thousands of filters at once.
    """
    tiles = np.asarray(tiles, dtype=float)
    n, h, w = tiles.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    mosaic = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.nan)
    for i in range(n):
        r, c = divmod(i, ncols)
        mosaic[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[i]
    return mosaic


def add_panel_label(ax, label: str, x: float = -0.02, y: float = 1.02) -> None:
    """A bold (a), (b), ... at the axes' top left."""
    ax.text(x, y, label, transform=ax.transAxes, fontweight="bold", ha="right", va="bottom")


def save_figure(fig, outputs: Sequence[str | os.PathLike]) -> None:
    """Write ``fig`` to every path given (PDF and PNG by extension), reproducibly and atomically
    (see filterlens.io.atomic), then close it."""
    for path in outputs:
        ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
        if ext == "pdf":  # no dates: the same figure gives the same bytes
            metadata = {"CreationDate": None, "ModDate": None, "Producer": "filterlens (matplotlib)"}
        elif ext == "png":
            metadata = {"Software": None}
        else:
            metadata = None
        with atomic_output(path) as temporary:
            fig.savefig(temporary, format=ext, bbox_inches="tight", pad_inches=0.03, metadata=metadata,
                        dpi=PNG_DPI if ext == "png" else None)
    plt.close(fig)
