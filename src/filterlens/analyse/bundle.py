"""A reference bundle: what placing other models against a finished run needs, in one small
archive (docs/bundle.md).

- :func:`export_bundle`: from a run directory, the full basis, the coefficient range, the
  pooled histogram counts per dataset, training (robust/normal) and depth group, the noise
  level of placing against them (:func:`leave_one_out_noise`), every model's layer table, the
  bases table, the sheet and a manifest (definitions, package versions, the sha256 of each
  member) as a reproducible .tar.gz, with its sha256 in ``<archive>.sha256``.
- :func:`read_bundle`: the archive checked against that sha256, its members against the
  allow-list and the manifest's checksums; arrays read with ``allow_pickle=False``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from filterlens.analyse.bases import basis_arrays, load_basis
from filterlens.analyse.kl import ALL, divergence, group_counts, pooled_counts
from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.atomic import atomic_output
from filterlens.io.files import read_tsv
from filterlens.method.depth_groups import DEPTH_GROUPS
from filterlens.method.distributions import histogram_edges
from filterlens.method.filters import DEFAULT_SPARSE_REFERENCE, SPARSE_REFERENCES
from filterlens.method.pca import Basis

FORMAT = "filterlens-reference-bundle"
FORMAT_VERSION = 2
# Version 1 lacks noise.tsv; it is read, and placement against it claims no closer pool.
READABLE_VERSIONS = (1, 2)
POOLING = "unique"  # each model of a dataset's robust (normal) side once, as kl_by_dataset's default
FIXED_MEMBERS = ("manifest.json", "basis_full.npz", "coefficient_range.tsv", "bases.tsv", "sheet.tsv",
                 "pools.tsv", "pools.npz", "noise.tsv")
LAYER_MEMBER = re.compile(r"layers/[A-Za-z0-9][A-Za-z0-9_.+-]*\.tsv")


class BundleError(ValueError):
    """A bundle that is damaged, altered, or not one this code reads."""


def allowed_member(name: str) -> bool:
    return name in FIXED_MEMBERS or (LAYER_MEMBER.fullmatch(name) is not None and ".." not in name)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _tsv_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(sep="\t", index=False).encode()


# --- export --------------------------------------------------------------------------------

def reference_pools(sheet: pd.DataFrame, histograms: dict[str, np.ndarray],
                    layers: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, np.ndarray]:
    """Per dataset, training and depth group ('all' and each group of DEPTH_GROUPS) the counts
    (9, bins) summed over the dataset's robust (normal) paired models, each once: an index table
    and the stacked counts (n_pools, 9, bins) in its row order."""
    model_pairs = pairs(sheet)
    index, stack = [], []
    for group in [ALL, *DEPTH_GROUPS]:
        counts = group_counts(histograms, layers, group)
        for dataset, part in model_pairs.groupby("dataset", sort=False):
            for training, models in (("robust", part.robust), ("normal", part.normal)):
                models = list(dict.fromkeys(models))
                pooled = pooled_counts(models, counts)
                index.append({"dataset": dataset, "training": training, "depth_group": group,
                              "n_models": len(models), "models": ",".join(models),
                              "n_filters": int(pooled[0].sum())})
                stack.append(pooled)
    return pd.DataFrame(index), np.stack(stack)


def leave_one_out_noise(sheet: pd.DataFrame, histograms: dict[str, np.ndarray], layers: dict[str, pd.DataFrame],
                        weights: np.ndarray, edges: np.ndarray) -> pd.DataFrame:
    """Per dataset, depth group ('all' and each of DEPTH_GROUPS), training and pooled model: the
    weighted symmetric KL of the model to its own pool with the model left out (NaN where either
    has no filters: a pool of one model, a group the model lacks). Their largest per dataset and
    depth group is the noise level of placement (docs/method.md §4, "Placement")."""
    model_pairs = pairs(sheet)
    rows = []
    for group in [ALL, *DEPTH_GROUPS]:
        counts = group_counts(histograms, layers, group)
        for dataset, part in model_pairs.groupby("dataset", sort=False):
            for training, models in (("robust", part.robust), ("normal", part.normal)):
                models = list(dict.fromkeys(models))
                for model in models:
                    rest = [m for m in models if m != model]
                    others = pooled_counts(rest, counts) if rest else np.zeros_like(counts[model])
                    rows.append({"dataset": dataset, "depth_group": group, "training": training, "model_id": model,
                                 "n_filters": int(counts[model][0].sum()), "n_pool_models": len(rest),
                                 "kl_to_pool_without_it": divergence(counts[model], others, weights, edges)[0]})
    return pd.DataFrame(rows)


def _run_definitions(run: Path) -> dict:
    provenance = run / "results" / "provenance" / "provenance.json"
    if not provenance.is_file():
        raise BundleError(f"{provenance} is missing: export a finished run (snakemake all writes it)")
    record = json.loads(provenance.read_text())
    config = record["config"]
    return {"config": config, "packages": record.get("packages", {}), "workflow": record.get("workflow", {}),
            "sheet": record.get("sheet", {})}


# The files of a run that a bundle is made of, and the rule that writes each ({model}: per model).
RUN_FILES = {
    "results/provenance/provenance.json": "provenance",
    "results/analysis/basis_full.npz": "pca_bases",
    "results/analysis/bases.tsv": "pca_bases",
    "results/analysis/coefficient_range.tsv": "global_coefficient_range",
    "results/summaries/{model}/layers.tsv": "summarize_model",
    "results/summaries/{model}/histograms.npz": "coefficient_histograms",
}


def missing_run_files(run: Path, models: list[str], paired: set[str]) -> list[tuple[str, str]]:
    """(file, the rule that writes it) of every file of the run in ``run`` that a bundle needs
    and the run lacks: a run that stopped early, or a partial copy of one."""
    missing = []
    for pattern, rule in RUN_FILES.items():
        if "{model}" not in pattern:
            names = [pattern]
        else:
            names = [pattern.format(model=m) for m in models if m in paired or "histograms" not in pattern]
        missing += [(name, rule) for name in names if not (run / name).is_file()]
    return missing


def _check_run_files(run: Path, models: list[str], paired: set[str]) -> None:
    if missing := missing_run_files(run, models, paired):
        shown = "\n  ".join(f"{name} (rule {rule})" for name, rule in missing[:10])
        more = f"\n  and {len(missing) - 10} more" if len(missing) > 10 else ""
        first = missing[0][0]
        raise BundleError(f"the run in {run} lacks {len(missing)} file(s) a bundle is made of:\n  {shown}{more}\n"
                          f"Fix: finish the run, with the config and sheet it was made with (snakemake --directory "
                          f"{run} --configfile <its config> {first} makes the first; `snakemake` with no target "
                          "makes them all), or export another run.")


def export_bundle(run_dir: str | os.PathLike, archive: str | os.PathLike, sheet_path: str | os.PathLike) -> dict:
    """Write the bundle of the finished run in ``run_dir`` (its sheet at ``sheet_path``) to
    ``archive`` and its sha256 to ``<archive>.sha256``; returns the manifest. A file of the run
    that is missing raises :class:`BundleError` naming it and the rule that writes it."""
    run = Path(run_dir)
    analysis, summaries = run / "results" / "analysis", run / "results" / "summaries"
    sheet = read_sheet(sheet_path)
    model_pairs = pairs(sheet)
    paired = set(model_pairs.robust) | set(model_pairs.normal)
    _check_run_files(run, list(sheet.model_id), paired)
    facts = _run_definitions(run)
    histograms, layers, bins = {}, {}, set()
    for model in sheet.model_id:
        layers[model] = read_tsv(summaries / model / "layers.tsv")
        if model in paired:
            with np.load(summaries / model / "histograms.npz", allow_pickle=False) as data:
                histograms[model] = data["counts"]
                bins.add(int(data["counts"].shape[-1]))
    value_range = read_tsv(analysis / "coefficient_range.tsv")
    index, counts = reference_pools(sheet, histograms, layers)
    (n_bins,) = bins
    basis = load_basis(analysis / "basis_full.npz")
    low, high = float(value_range.iloc[0]["min"]), float(value_range.iloc[0]["max"])
    noise = leave_one_out_noise(sheet, histograms, layers, basis.ratio, histogram_edges(low, high, n_bins))
    members = {
        "basis_full.npz": _npz_bytes(**basis_arrays(basis)),
        "coefficient_range.tsv": (analysis / "coefficient_range.tsv").read_bytes(),
        "bases.tsv": (analysis / "bases.tsv").read_bytes(),
        "sheet.tsv": Path(sheet_path).read_bytes(),
        "pools.tsv": _tsv_bytes(index),
        "pools.npz": _npz_bytes(counts=counts),
        "noise.tsv": _tsv_bytes(noise),
        **{f"layers/{model}.tsv": (summaries / model / "layers.tsv").read_bytes() for model in sheet.model_id},
    }
    bad = [name for name in members if not allowed_member(name)]
    if bad:
        raise BundleError(f"model ids that cannot name a bundle member: {bad}")
    config = facts["config"]
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "definitions": {
            "depth_definition": config["analysis"]["depth_definition"],
            "fold_batchnorm": config["extraction"]["fold_batchnorm"],
            # a run recorded before the key existed used the default
            "sparse_reference": config["analysis"].get("sparse_reference", DEFAULT_SPARSE_REFERENCE),
            "bins": n_bins,
            "range": {"low": low, "high": high},
            "pooling": POOLING,
            "depth_groups": [ALL, *DEPTH_GROUPS],
            "basis": "full: PCA of the paired models' scaled non-sparse filters (docs/method.md §4)",
            "kl": "weighted symmetric KL, weights the basis' explained variance ratios (docs/method.md §4)",
            "noise": "per dataset and depth group, the largest KL of a pooled model to its own pool without it "
                     "(docs/method.md §4, Placement)",
        },
        "packages": facts["packages"],
        "workflow": facts["workflow"],
        "run_sheet": facts["sheet"],
        "models": list(sheet.model_id),
        "members": {name: _sha256(data) for name, data in sorted(members.items())},
    }
    members["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    _write_archive(archive, members)
    return manifest


def _write_archive(archive: str | os.PathLike, members: dict[str, bytes]) -> None:
    """A gzipped tar with fixed times and owners: the same run gives the same bytes."""
    with atomic_output(archive) as temporary:
        with open(temporary, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as zipped, \
                tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(members):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(members[name]), 0o644, 0
                tar.addfile(info, io.BytesIO(members[name]))
    digest = hashlib.sha256(Path(archive).read_bytes()).hexdigest()
    with atomic_output(checksum_path(archive)) as temporary:
        Path(temporary).write_text(f"{digest}  {Path(archive).name}\n")


def checksum_path(archive: str | os.PathLike) -> Path:
    return Path(f"{archive}.sha256")


# --- reading -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bundle:
    manifest: dict
    basis: Basis
    low: float
    high: float
    bins: int
    pools: pd.DataFrame  # dataset, training, depth_group, n_models, models, n_filters
    counts: np.ndarray  # (n_pools, 9, bins) in the rows' order of pools
    layers: dict[str, pd.DataFrame]
    sheet: pd.DataFrame
    noise: pd.DataFrame | None  # leave_one_out_noise's table; None in a version 1 bundle

    @property
    def sparse_reference(self) -> str:
        """The sparse reference the bundle's models were summarised with (docs/method.md §3);
        a bundle whose manifest names none was made with the default."""
        reference = self.manifest["definitions"].get("sparse_reference", DEFAULT_SPARSE_REFERENCE)
        if reference not in SPARSE_REFERENCES:
            raise BundleError(f"the bundle's manifest.json: 'definitions.sparse_reference' is {reference!r}, not one "
                              f"of {', '.join(SPARSE_REFERENCES)}; the bundle is damaged or altered. Fix: export it "
                              "again (filterlens export-bundle)")
        return reference

    def noise_level(self, dataset: str, group: str) -> float:
        """The largest KL of a pooled model of ``dataset`` to its own pool without it, in depth
        group ``group``; NaN where none is known (pools of one model, a version 1 bundle)."""
        if self.noise is None:
            return float("nan")
        rows = self.noise[(self.noise.dataset == dataset) & (self.noise.depth_group == group)]
        values = rows.kl_to_pool_without_it.dropna()
        return float(values.max()) if len(values) else float("nan")

    @property
    def edges(self) -> np.ndarray:
        return histogram_edges(self.low, self.high, self.bins)

    def pool(self, dataset: str, training: str, group: str) -> np.ndarray:
        rows = np.flatnonzero(((self.pools.dataset == dataset) & (self.pools.training == training)
                               & (self.pools.depth_group == group)).to_numpy())
        if len(rows) != 1:
            raise BundleError(f"the bundle holds no {training} pool of dataset {dataset!r}, depth group {group!r} "
                              f"(datasets: {sorted(set(self.pools.dataset))})")
        return self.counts[rows[0]]


# What a bundle may hold, unpacked (docs/bundle.md): the paper's zoo gives about 0.6 MB in 120
# members, so these bounds leave room for zoos a hundred times larger and refuse a
# decompression bomb before it is inflated.
MAX_MEMBER_BYTES = 64 * 2**20
MAX_BUNDLE_BYTES = 256 * 2**20
MAX_MEMBERS = 20_000
MAX_JSON_DEPTH = 16


def _archive_members(archive: Path) -> dict[str, bytes]:
    """The members by name, each read up to its declared size within the bounds above; the
    gzip stream is inflated as the members are read, never beyond them."""
    members: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for info in tar:
                if not info.isfile() or not allowed_member(info.name):
                    raise BundleError(f"{archive}: member {info.name!r} is not one a bundle holds (allowed: "
                                      f"{', '.join(FIXED_MEMBERS)}, layers/<model>.tsv; plain files only)")
                if info.name in members:
                    raise BundleError(f"{archive}: member {info.name!r} appears twice")
                total += info.size
                if info.size > MAX_MEMBER_BYTES or total > MAX_BUNDLE_BYTES or len(members) >= MAX_MEMBERS:
                    raise BundleError(f"{archive}: member {info.name!r} unpacks to {info.size} bytes ({total} so far, "
                                      f"member {len(members) + 1}), beyond what a bundle holds (at most "
                                      f"{MAX_MEMBER_BYTES} bytes a member, {MAX_BUNDLE_BYTES} in all, {MAX_MEMBERS} "
                                      "members). Fix: export the reference again with filterlens export-bundle")
                members[info.name] = tar.extractfile(info).read(info.size)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise BundleError(f"{archive}: not a readable .tar.gz ({error})") from None
    return members


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def _manifest(archive: Path, data: bytes) -> dict:
    """manifest.json as a mapping of the fields the reader uses, or :class:`BundleError`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{archive}: manifest.json is not UTF-8 text. Fix: export the reference again") from None
    if max(_depths(text), default=0) > MAX_JSON_DEPTH:
        raise BundleError(f"{archive}: manifest.json nests deeper than {MAX_JSON_DEPTH} levels. Fix: export the "
                          "reference again")
    try:
        manifest = json.loads(text)
    except ValueError as error:
        raise BundleError(f"{archive}: manifest.json is not JSON ({error})") from None
    problems = []
    if not isinstance(manifest, dict):
        problems.append(f"it is a {type(manifest).__name__}, not an object")
    else:
        definitions = manifest.get("definitions")
        if not isinstance(manifest.get("members"), dict) or not all(
                isinstance(v, str) for v in manifest["members"].values()):
            problems.append("'members' is not an object of sha256 strings")
        if not isinstance(definitions, dict):
            problems.append("'definitions' is not an object")
        else:
            value_range = definitions.get("range")
            low, high = (value_range.get("low"), value_range.get("high")) if isinstance(value_range, dict) else (0, 0)
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in (low, high)) or not low < high:
                problems.append(f"'definitions.range' is {value_range!r}, not finite low < high")
            bins = definitions.get("bins")
            if not isinstance(bins, int) or isinstance(bins, bool) or not 1 <= bins <= 100_000:
                problems.append(f"'definitions.bins' is {bins!r}, not a count of bins")
    if problems:
        raise BundleError(f"{archive}: manifest.json: {'; '.join(problems)}. Fix: export the reference again with "
                          "filterlens export-bundle")
    return manifest


def _depths(text: str):
    """The nesting depth after each bracket of a JSON text (strings skipped), without parsing it."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            yield depth
        elif char in "]}":
            depth -= 1


def read_bundle(archive: str | os.PathLike) -> Bundle:
    """The bundle at ``archive``, checked: the archive's sha256 against ``<archive>.sha256``,
    every member against the allow-list and the manifest's sha256, nothing missing or extra."""
    archive = Path(archive)
    checksum = checksum_path(archive)
    if not checksum.is_file():
        raise BundleError(f"{checksum} is missing: a bundle is read only with its checksum file")
    words = checksum.read_text(errors="replace")[:200].split()
    expected = words[0] if words else ""
    actual = _file_sha256(archive)
    if actual != expected:
        raise BundleError(f"{archive}: sha256 {actual} does not match {checksum} ({expected}): "
                          "the archive is damaged or altered")
    members = _archive_members(archive)
    if "manifest.json" not in members:
        raise BundleError(f"{archive}: no manifest.json")
    manifest = _manifest(archive, members.pop("manifest.json"))
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in READABLE_VERSIONS:
        raise BundleError(f"{archive}: format {manifest.get('format')!r} version {manifest.get('format_version')!r}, "
                          f"this code reads {FORMAT!r} versions {', '.join(map(str, READABLE_VERSIONS))}")
    listed = manifest.get("members", {})
    if set(listed) != set(members):
        raise BundleError(f"{archive}: members {sorted(set(members) ^ set(listed))} differ from the manifest's list")
    for name, data in members.items():
        if _sha256(data) != listed[name]:
            raise BundleError(f"{archive}: member {name} does not match its sha256 in the manifest")
    try:
        return _parse(manifest, members)
    # allow_pickle=False refuses object arrays: ValueError; a damaged .npz: BadZipFile, EOFError, zlib.error
    except (KeyError, ValueError, TypeError, zipfile.BadZipFile, EOFError, OSError, zlib.error,
            NotImplementedError) as error:  # NotImplementedError: a zip feature the reader lacks
        raise BundleError(f"{archive}: a member cannot be read ({type(error).__name__}: {error})") from None


def _arrays(name: str, data: bytes, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The arrays of the .npz member ``name``, each of the shape given and of numbers, every value
    finite; the shapes and sizes its entries declare are checked before anything is inflated."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        declared = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        if set(declared) != set(shapes):
            raise ValueError(f"{name} holds arrays {sorted(declared)}, expected {sorted(shapes)}")
        for key, shape in shapes.items():
            with archive.open(declared[key]) as entry:
                version = np.lib.format.read_magic(entry)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise ValueError(f"{name}: array {key!r} is in .npy format version {version}")
                declared_shape, _, dtype = read_header(entry)
            if tuple(declared_shape) != shape or dtype.kind not in "iuf" or (
                    declared[key].file_size > 1024 + dtype.itemsize * math.prod(shape)):
                raise ValueError(f"{name}: array {key!r} is {dtype} of shape {tuple(declared_shape)} in "
                                 f"{declared[key].file_size} bytes, expected numbers of shape {shape}")
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        arrays = {key: loaded[key] for key in shapes}
    if bad := [key for key, array in arrays.items() if not np.isfinite(array).all()]:
        raise ValueError(f"{name}: array(s) {', '.join(bad)} hold NaN or infinite values")
    return arrays


def _parse(manifest: dict, members: dict[str, bytes]) -> Bundle:
    basis = _arrays("basis_full.npz", members["basis_full.npz"], {"n": (), "mean": (9,), "components": (9, 9),
                                                                   "explained_variance": (9,), "ratio": (9,)})
    basis = Basis(int(basis["n"]), basis["mean"], basis["components"], basis["explained_variance"], basis["ratio"])
    definitions = manifest["definitions"]
    pools = pd.read_csv(io.BytesIO(members["pools.tsv"]), sep="\t")
    counts = _arrays("pools.npz", members["pools.npz"], {"counts": (len(pools), 9, int(definitions["bins"]))})["counts"]
    layers = {Path(name).stem: pd.read_csv(io.BytesIO(data), sep="\t", dtype={"name": str})
              for name, data in members.items() if name.startswith("layers/")}
    sheet = pd.read_csv(io.BytesIO(members["sheet.tsv"]), sep="\t", dtype=str, keep_default_na=False)
    noise = pd.read_csv(io.BytesIO(members["noise.tsv"]), sep="\t") if "noise.tsv" in members else None
    return Bundle(manifest, basis, float(definitions["range"]["low"]), float(definitions["range"]["high"]),
                  int(definitions["bins"]), pools, counts,
                  layers, sheet, noise)
