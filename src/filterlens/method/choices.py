"""The documented choices of the method: the places where the paper's text and the authors' code
part ways, or where the published code leaves the choice open (docs/method.md, "Choices").

Each :class:`Choice` is one config key with two values. :class:`Settings` holds one value of
each; a run computes its configured settings (:meth:`Settings.from_config`) and, with
``analysis.sensitivity``, every variant that changes one choice alone (:meth:`Settings.variants`),
from the same passes over the filter stores (docs/design.md, "Sensitivity to the documented
choices"). What a pass computes depends on a few choices only (:data:`PASS_CHOICES`): variants
that agree on those share the pass's result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

# Where a choice acts: on the filters a store holds, in a pass over the stores, or in the merges
# of the passes' small outputs.
EXTRACTION = "extraction"
PASSES = "passes"
MERGES = "merges"


@dataclass(frozen=True)
class Choice:
    """One documented choice: ``name`` is its :class:`Settings` field and the last part of its
    config ``key``; ``values`` its two values, the paper's text or the authors' code first as the
    default; ``labels`` a few words for each; ``section`` where docs/method.md gives its source."""

    name: str
    key: str
    values: tuple[Any, Any]
    labels: tuple[str, str]
    acts: str
    section: str

    @property
    def default(self) -> Any:
        return self.values[0]

    def other(self, value: Any) -> Any:
        """The value that is not ``value``."""
        return self.values[1] if value == self.values[0] else self.values[0]

    def label(self, value: Any) -> str:
        return self.labels[self.values.index(value)]


CHOICES = (
    Choice("fold_batchnorm", "extraction.fold_batchnorm", (True, False),
           ("BatchNorm folded into the conv", "raw conv weights"), EXTRACTION, "§2"),
    Choice("depth_definition", "analysis.depth_definition", ("graph_level", "conv_count"),
           ("depth by graph level", "depth by conv count"), PASSES, "§2"),
    Choice("sparse_reference", "analysis.sparse_reference", ("max_abs", "max_row_sum"),
           ("sparse below the layer's largest |w| / 100", "sparse below its largest row sum of |w| / 100"),
           PASSES, "§3"),
    Choice("pca_sign", "analysis.pca_sign", ("v_based", "u_based"),
           ("component signs from the components", "component signs from the projections"), PASSES, "§4"),
    Choice("histogram_range", "analysis.histogram_range", ("all_filters", "paired_nonsparse"),
           ("range over every scaled filter", "range over the paired models' non-sparse filters"), PASSES, "§4"),
    Choice("empty_bins", "analysis.empty_bins", ("density", "probability"),
           ("empty bins eps on densities", "empty bins eps on probabilities"), MERGES, "§4"),
    Choice("kl_pooling", "analysis.kl_pooling", ("unique", "paired"),
           ("KL pools each model once", "KL pools a counterpart once per pair"), MERGES, "§4"),
    Choice("entropy", "figures.entropy", ("unscaled", "scaled"),
           ("entropy of unscaled filters", "entropy of scaled filters"), MERGES, "§5"),
    Choice("entropy_weights", "analysis.entropy_weights", ("nonsparse", "all"),
           ("group entropy weighted by non-sparse filters", "group entropy weighted by all filters"), MERGES,
           "§5"),
    Choice("boxes", "figures.boxes", ("pairings", "models"),
           ("Fig. 7 boxes over the pairings", "Fig. 7 boxes over each model once"), MERGES, "§5"),
)
BY_NAME = {c.name: c for c in CHOICES}

# The choices each pass's result depends on (besides the store): variants that agree on these
# share the pass's result. In pass 1 the depth definition only relabels the store's layers; in
# pass 2 the sign convention needs each component's coefficient of largest magnitude.
PASS_CHOICES = {
    "summarize": ("sparse_reference", "depth_definition"),
    "coefficient_range": ("sparse_reference", "histogram_range", "pca_sign"),
    "coefficient_histograms": ("sparse_reference", "histogram_range", "pca_sign"),
}

# The choices that move a number the comparison with the authors' holds (KL, sparse shares,
# variance ratios; rule paper_comparison): its defaults are the definitions of the authors' numbers.
# Folding is judged per model there (a filter database import holds the authors' folded filters).
COMPARED_CHOICES = ("depth_definition", "sparse_reference", "pca_sign", "histogram_range", "empty_bins")

# Why a choice has no variant in the sensitivity analysis (docs/design.md).
NOT_SHARED = {
    "fold_batchnorm": "a filter store holds the folded rows only, from which the raw ones cannot be recovered "
                      "(dividing again rounds, and a channel whose gamma is 0 is all zero): the raw weights need "
                      "the stores extracted with extraction.fold_batchnorm: false",
}


@dataclass(frozen=True)
class Settings:
    """One value of every choice (:data:`CHOICES`); the defaults are each choice's first value."""

    fold_batchnorm: bool = True
    depth_definition: str = "graph_level"
    sparse_reference: str = "max_abs"
    pca_sign: str = "v_based"
    histogram_range: str = "all_filters"
    empty_bins: str = "density"
    kl_pooling: str = "unique"
    entropy: str = "unscaled"
    entropy_weights: str = "nonsparse"
    boxes: str = "pairings"

    def __post_init__(self):
        for choice in CHOICES:
            value = getattr(self, choice.name)
            if value not in choice.values:
                raise ValueError(f"config key {choice.key}: {value!r} is not one of "
                                 f"{', '.join(map(repr, choice.values))}. Fix: set it to one of them.")

    @classmethod
    def from_config(cls, config: Mapping) -> "Settings":
        """The settings a validated config names (its ``analysis``, ``extraction`` and ``figures``)."""
        values = {}
        for choice in CHOICES:
            section, key = choice.key.split(".")
            values[choice.name] = config[section][key]
        return cls(**values)

    @classmethod
    def of(cls, values: Mapping) -> "Settings":
        """From :meth:`as_dict`'s mapping (a rule's params)."""
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def changed(self, name: str) -> "Settings":
        """These settings with choice ``name`` set to its other value."""
        return dataclasses.replace(self, **{name: BY_NAME[name].other(getattr(self, name))})

    def variants(self) -> dict[str, "Settings"]:
        """Every choice changed alone, by variant name (:func:`variant_name`), in :data:`CHOICES`
        order; choices of :data:`NOT_SHARED` have none."""
        return {variant_name(c.name, c.other(getattr(self, c.name))): self.changed(c.name)
                for c in CHOICES if c.name not in NOT_SHARED}

    def pass_key(self, pass_name: str) -> tuple:
        """The values of the choices pass ``pass_name`` depends on (:data:`PASS_CHOICES`)."""
        return tuple(getattr(self, name) for name in PASS_CHOICES[pass_name])


def variant_name(choice: str, value: Any) -> str:
    """``choice=value``, the name of the variant that sets ``choice`` to ``value``
    (``fold_batchnorm=false`` for a boolean)."""
    return f"{choice}={str(value).lower() if isinstance(value, bool) else value}"


def pass_variants(settings: Settings, pass_name: str) -> dict[str, Settings]:
    """The variants of ``settings`` whose result of pass ``pass_name`` differs from the
    configured one's, one per distinct result (the first variant of each, by name)."""
    seen = {settings.pass_key(pass_name)}
    out = {}
    for name, variant in settings.variants().items():
        key = variant.pass_key(pass_name)
        if key not in seen:
            seen.add(key)
            out[name] = variant
    return out
