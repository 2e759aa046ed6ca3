"""Acquisition of pretrained models: RobustBench's model zoo and timm, into the checkpoint contract.

Everything that touches the network goes through a function passed in (``load_model``,
``create_model``) and every wait through an injectable ``sleep``, so the logic is tested
offline on files the tests write themselves.

RobustBench
    ``robustbench.utils.load_model(model_name=key, model_dir=..., dataset=..., threat_model=...)``
    reads ``<model_dir>/<dataset>/<threat_model>/<key>.pt`` (ensembles:
    ``<key>.pt_m0.pt``, ``<key>.pt_m1.pt``, ...). Missing files are downloaded here first, with
    RobustBench's own Google Drive download, so that ``load_model`` (whose ``torch.load`` is the
    first parser) only ever reads files already checked, in this order: a failed download (an
    empty file, a saved HTML page such as Google Drive's quota or virus-scan page;
    :mod:`filterlens.acquire.failed_downloads`), the lock file (TSV: file, sha256, bytes; a different
    file is refused before anything reads it, one cut short is fetched again), then the
    integrity of files the lock does not know yet (:func:`file_problem`). Bad files are removed,
    logged with the fix, and downloaded again with exponential back-off. The first good file's
    sha256 is recorded in the lock. A model directory filled beforehand loads with no network.

timm
    ``timm.create_model(name, pretrained=True)``, timm's own download through the Hugging Face
    hub, which honours ``HF_HOME`` / ``HF_HUB_CACHE`` (where the cache is) and ``HF_HUB_OFFLINE=1``
    (cache only, no network). timm 1.0.9 imports only huggingface_hub < 1.0 (requirements.in pins
    it); with a newer one it would silently skip the hub and its cache. The input normalisation is
    the pretrained config's mean and std.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch
from torch import nn

from filterlens.acquire.checkpoint import Checkpoint, fit_problems, usable_tensors
from filterlens.acquire.failed_downloads import failed_download_problem
from filterlens.config.datasets import dataset_info
from filterlens.io.atomic import atomic_output
from filterlens.io.hashing import sha256_of
from filterlens.models.architectures import build_architecture
from filterlens.models.pretrained_sources import served_elsewhere, timm_name_problem
from filterlens.models.robustbench_zoo import UnknownRobustBenchEntry, zoo_entry

LOG = logging.getLogger("filterlens.acquire.downloads")
T = TypeVar("T")

LOCK_COLUMNS = ["file", "sha256", "bytes"]
LOCK_HEADER = (
    "# sha256 of every downloaded pretrained weight file, recorded on its first good download\n"
    "# (filterlens.acquire.downloads). Later runs verify the files against it and refuse a different one.\n"
    "# file: path relative to the model directory (config acquisition.model_dir).\n"
)


class AcquisitionError(RuntimeError):
    """A model could not be acquired; the message names the files and the fix."""


class PermanentError(AcquisitionError):
    """A failure that another attempt cannot fix (not retried)."""


class NetworkUnreachable(PermanentError):
    """A download could not resolve its host or connect to it: this machine has no network, or not
    to that host (not retried, :func:`unreachable_cause`)."""


class LockMismatch(PermanentError):
    """A file differs from the sha256 its lock file recorded (not retried). ``files``: the files
    that differ; ``short``: those of them shorter than recorded."""

    def __init__(self, message: str, files: list[Path] | None = None, short: list[Path] | None = None):
        super().__init__(message)
        self.files, self.short = files or [], short or []


# --------------------------------------------------------------------------------------------
# Downloaded files


def file_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with a downloaded PyTorch weight file, or None if it looks sound.

    Detects an empty file, an HTML/XML page saved instead of the weights, a zip archive
    (``torch.save``'s format) that is truncated or fails its CRC checks, and a legacy
    (pickle) file that ``torch.load`` cannot read to the end.
    """
    path = Path(path)
    if problem := failed_download_problem(path):
        return f"it {problem}"
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            return f"it is truncated or corrupt ({size} bytes; zip archive: {error})"
        return f"it is corrupt ({size} bytes; bad CRC in {bad})" if bad else None
    if head[:1] == b"\x80":  # a legacy torch.save file is a sequence of pickles
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any failure to read is the answer
            if "Weights only load failed" in str(error):
                return None  # complete, but holds more than tensors: load_model decides
            return f"it is truncated or corrupt ({size} bytes; torch.load: {str(error).splitlines()[0]})"
        return None
    return f"it is not a PyTorch file ({size} bytes, starting {head[:16]!r})"


def remove_bad_files(paths: list[Path], fix: Callable[[Path], str], log: logging.Logger = LOG) -> list[str]:
    """Remove every existing file of ``paths`` with a :func:`file_problem`; return the reports."""
    reports = []
    for path in paths:
        if not path.is_file():
            continue
        if problem := file_problem(path):
            path.unlink()
            report = f"{path}: {problem}; removed it. {fix(path)}"
            log.warning(report)
            reports.append(report)
    return reports


# --------------------------------------------------------------------------------------------
# The lock file


@contextlib.contextmanager
def _locked_directory(directory: Path) -> Iterator[None]:
    """An exclusive flock on ``directory`` (parallel jobs update one lock file in turn)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_lock(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The lock file's entries by file; an absent file is an empty lock.

    Every line is checked, and :class:`AcquisitionError` lists each bad one by its line number:
    the header must be ``file sha256 bytes`` (tab-separated), each row three fields, the file a
    relative path inside the model directory named once, the sha256 64 hex digits (either case:
    compared in lower case), the bytes a non-negative integer."""
    path = Path(path)
    if not path.exists():
        return {}
    problems: list[str] = []
    entries: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if not header_seen:
            header_seen = True
            if fields != LOCK_COLUMNS:
                problems.append(f"line {number}: header {fields}, expected {LOCK_COLUMNS} (tab-separated)")
            continue
        if len(fields) != 3:
            problems.append(f"line {number}: {len(fields)} tab-separated field(s), expected 3 ({line!r})")
            continue
        name, digest, size = (field.strip() for field in fields)
        digest = digest.lower()
        bad = []
        if not name or name.startswith("/") or ".." in Path(name).parts:
            bad.append(f"file {name!r} is not a path relative to the model directory")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            bad.append(f"sha256 {fields[1]!r} is not 64 hex digits")
        if not size.isdigit():
            bad.append(f"bytes {size!r} is not a non-negative integer")
        if name in first_line:
            bad.append(f"file {name!r} is already listed on line {first_line[name]} (one row per file)")
        if bad:
            problems.append(f"line {number}: " + "; ".join(bad))
            continue
        first_line[name] = number
        entries[name] = {"sha256": digest, "bytes": int(size)}
    if problems:
        raise AcquisitionError(f"lock file {path} has {len(problems)} bad line(s):\n  - " + "\n  - ".join(problems)
                               + "\nFix: correct or delete those lines (a deleted row is recorded again from the "
                               "next good download).")
    return entries


def _write_lock(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    with atomic_output(path) as temporary:
        with open(temporary, "w") as handle:
            handle.write(LOCK_HEADER)
            handle.write("\t".join(LOCK_COLUMNS) + "\n")
            for name in sorted(entries):
                handle.write(f"{name}\t{entries[name]['sha256']}\t{entries[name]['bytes']}\n")


def _facts(model_dir: Path, files: list[Path]) -> list[dict[str, Any]]:
    return [{"file": path.resolve().relative_to(model_dir.resolve()).as_posix(), "sha256": sha256_of(path),
             "bytes": path.stat().st_size} for path in files]


def check_lock(lock_path: str | os.PathLike, model_dir: str | os.PathLike,
               files: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``files`` against the lock file, reading nothing but their bytes: (facts, pinned), where
    pinned are the facts the lock records. A file whose sha256 or size differs from its row
    raises :class:`LockMismatch` naming both (the file is left in place for inspection)."""
    lock_path, model_dir = Path(lock_path), Path(model_dir)
    facts = _facts(model_dir, files)
    entries = read_lock(lock_path)
    mismatches = [f for f in facts if f["file"] in entries
                  and (entries[f["file"]]["sha256"], entries[f["file"]]["bytes"]) != (f["sha256"], f["bytes"])]
    if mismatches:
        lines = []
        for fact in mismatches:
            recorded = entries[fact["file"]]
            short = " (shorter: an interrupted download?)" if fact["bytes"] < recorded["bytes"] else ""
            lines.append(f"{model_dir / fact['file']}: sha256 {fact['sha256']} ({fact['bytes']} bytes){short}, the "
                         f"lock file recorded {recorded['sha256']} ({recorded['bytes']} bytes)")
        raise LockMismatch(
            f"weight file(s) differ from the ones recorded in the lock file {lock_path}; nothing read them:\n  "
            + "\n  ".join(lines)
            + "\nFix: if the file was replaced by mistake or cut short, delete it and run again to download it anew; "
            "if you trust the new file (the authors re-uploaded it), delete its row from the lock file.",
            files=[model_dir / f["file"] for f in mismatches],
            short=[model_dir / f["file"] for f in mismatches if f["bytes"] < entries[f["file"]]["bytes"]],
        )
    return facts, [f for f in facts if f["file"] in entries]


def verify_or_record(lock_path: str | os.PathLike, model_dir: str | os.PathLike, files: list[Path],
                     log: logging.Logger = LOG) -> list[dict[str, Any]]:
    """Check ``files`` against the lock file (:func:`check_lock`); record those it does not know yet.

    Returns one ``{"file", "sha256", "bytes"}`` per file.
    """
    lock_path = Path(lock_path)
    with _locked_directory(lock_path.parent):
        facts, pinned = check_lock(lock_path, model_dir, files)
        entries = read_lock(lock_path)
        new = [f for f in facts if f["file"] not in entries]
        if new:
            for fact in new:
                entries[fact["file"]] = {"sha256": fact["sha256"], "bytes": fact["bytes"]}
                log.info("lock file %s: recorded %s sha256 %s", lock_path, fact["file"], fact["sha256"])
            _write_lock(lock_path, entries)
        if pinned:
            log.info("lock file %s: verified %s", lock_path, ", ".join(f["file"] for f in pinned))
    return facts


# --------------------------------------------------------------------------------------------
# Retries


# errno values of a connection that cannot be made at all (no route, no interface, no network)
UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EADDRNOTAVAIL}


def unreachable_cause(error: BaseException) -> OSError | None:
    """The error in ``error``'s chain that says the host cannot be resolved or connected to, or None.

    The chain is followed through ``__cause__``, ``__context__`` and urllib3's ``reason`` (requests
    wraps urllib3's MaxRetryError, which wraps NameResolutionError, which wraps socket.gaierror).
    A name that does not resolve (socket.gaierror), a refused connection and an unreachable network
    or host cannot succeed on another attempt; a connection reset or timed out mid-way can, and is
    not named here.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        link = pending.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        if isinstance(link, (socket.gaierror, ConnectionRefusedError)) or (
                isinstance(link, OSError) and link.errno in UNREACHABLE_ERRNOS):
            return link
        reason = getattr(link, "reason", None)
        pending += [link.__cause__, link.__context__, reason if isinstance(reason, BaseException) else None]
    return None


def with_retries(action: Callable[[int], T], *, attempts: int, backoff_s: float, max_backoff_s: float = 600.0,
                 sleep: Callable[[float], None] = time.sleep, give_up_on: tuple[type[BaseException], ...] = (),
                 what: str = "download", fix: str = "", log: logging.Logger = LOG) -> T:
    """Call ``action(attempt)`` until it returns, at most ``attempts`` times.

    Between failures it sleeps ``backoff_s * 2**i`` seconds (at most ``max_backoff_s``).
    Exceptions of ``give_up_on`` (and KeyboardInterrupt) are raised at once. An error whose chain
    says the host cannot be resolved or connected to (:func:`unreachable_cause`) raises
    :class:`NetworkUnreachable` at once, with the ``fix``. After the last failure,
    :class:`AcquisitionError` lists every attempt's error and the ``fix``.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    errors = []
    for attempt in range(1, attempts + 1):
        try:
            return action(attempt)
        except give_up_on:
            raise
        except Exception as error:  # noqa: BLE001 - network code raises anything
            if cause := unreachable_cause(error):
                raise NetworkUnreachable(
                    f"{what}: the download cannot reach its server ({type(cause).__name__}: {cause}); this machine "
                    "has no network, or none to that host, and another attempt would fail the same way. Stage the "
                    "files instead (`filterlens stage` lists each one and where it goes; docs/runs.md)."
                    + (f"\n{fix}" if fix else "")) from error
            errors.append(f"attempt {attempt}: {type(error).__name__}: {error}")
            log.warning("%s failed (attempt %d of %d): %s", what, attempt, attempts, error)
            if attempt < attempts:
                delay = min(max_backoff_s, backoff_s * 2 ** (attempt - 1))
                log.info("waiting %.1f s before the next attempt", delay)
                sleep(delay)
    raise AcquisitionError(f"{what} failed {attempts} time(s):\n  " + "\n  ".join(errors) + (f"\n{fix}" if fix else ""))


# --------------------------------------------------------------------------------------------
# RobustBench


@dataclass(frozen=True)
class RobustBenchEntry:
    dataset: str  # BenchmarkDataset value: cifar10, cifar100, imagenet
    key: str
    threat_model: str = "Linf"  # ThreatModel name: Linf, L2, corruptions

    def zoo_entry(self) -> dict[str, Any]:
        try:
            return zoo_entry(self.dataset, self.key, self.threat_model)
        except UnknownRobustBenchEntry as error:
            raise AcquisitionError(f"{error}. Fix: correct the sheet's source_key (see "
                                   "robustbench.model_zoo.model_dicts).") from None

    def folder(self, model_dir: str | os.PathLike) -> Path:
        """RobustBench's own layout: <model_dir>/<dataset>/<threat model>/."""
        from robustbench.model_zoo.enums import ThreatModel

        return Path(model_dir) / self.dataset / ThreatModel[self.threat_model].value.replace("_3d", "")

    def files(self, model_dir: str | os.PathLike) -> list[tuple[Path, str]]:
        """The weight files ``load_model`` reads, each with its Google Drive id."""
        gdrive = self.zoo_entry()["gdrive_id"]
        base = self.folder(model_dir) / f"{self.key}.pt"
        if isinstance(gdrive, list):  # an ensemble: <key>.pt_m0.pt, <key>.pt_m1.pt, ...
            return [(Path(f"{base}_m{i}.pt"), g) for i, g in enumerate(gdrive)]
        return [(base, gdrive)]


def manual_download_fix(entry: RobustBenchEntry, model_dir: str | os.PathLike) -> str:
    lines = [f"  https://drive.google.com/uc?id={gdrive}  ->  {path}" for path, gdrive in entry.files(model_dir)]
    return ("Fix: download by hand (a browser passes Google Drive's confirmation page) and save as\n"
            + "\n".join(lines) + "\nthen run again; or copy a RobustBench model directory filled elsewhere "
            f"(layout <model_dir>/<dataset>/<threat_model>/<key>.pt) to {Path(model_dir)}.")


@contextlib.contextmanager
def _torch_load_trusting(trust: bool) -> Iterator[None]:
    """With ``trust``, let robustbench's ``torch.load`` unpickle more than tensors (weights_only=False)."""
    if not trust:
        yield
        return
    old = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = old


def _robustbench_load_model() -> Callable[..., nn.Module]:
    from filterlens.models.compat import import_robustbench

    import_robustbench()
    from robustbench.utils import load_model

    return load_model


def _gdrive_download() -> Callable[[str, str], None]:
    from filterlens.models.compat import import_robustbench

    import_robustbench()
    import robustbench.utils

    return lambda gdrive_id, path: robustbench.utils.download_gdrive_new(gdrive_id, path)


def load_robustbench(entry: RobustBenchEntry, model_dir: str | os.PathLike, lock_file: str | os.PathLike | None, *,
                     attempts: int = 4, backoff_s: float = 30.0, max_backoff_s: float = 600.0,
                     trust_pickles: bool = False, load_model: Callable[..., nn.Module] | None = None,
                     download: Callable[[str, str], None] | None = None,
                     sleep: Callable[[float], None] = time.sleep,
                     log: logging.Logger = LOG) -> tuple[nn.Module, list[dict[str, Any]]]:
    """The loaded RobustBench model and the facts (file, sha256, bytes, gdrive_id) of its files.

    Missing files are downloaded first (``download``, RobustBench's own Google Drive download),
    so that every file is checked before anything parses it, in this order: a failed download
    (empty, an HTML page; removed and retried), the lock file (a different sha256 or size fails
    at once, :class:`LockMismatch`), then, for a file the lock does not know, the archive's
    integrity. Only then does ``load_model`` read them. With ``trust_pickles``, a file is
    unpickled beyond tensors only if the lock records its sha256 (it runs code from the file).
    """
    if reason := served_elsewhere(entry.dataset, entry.threat_model, entry.key):
        raise PermanentError(f"RobustBench {entry.dataset}/{entry.threat_model}/{entry.key}: {reason}")
    load_model = load_model or _robustbench_load_model()
    download = download or _gdrive_download()
    files = entry.files(model_dir)
    paths = [path for path, _ in files]
    fix = manual_download_fix(entry, model_dir)

    def per_file_fix(path: Path) -> str:
        gdrive = dict(files)[path]
        return f"Fix: download https://drive.google.com/uc?id={gdrive} by hand and save it as {path}."

    def failed_downloads() -> list[str]:
        reports = []
        for path in paths:
            if path.is_file() and (problem := failed_download_problem(path)):
                path.unlink()
                reports.append(f"{path}: it {problem}; removed it. {per_file_fix(path)}")
                log.warning(reports[-1])
        return reports

    def screen(present: list[Path]) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
        """Check ``present`` before anything parses them: a failed download, then the lock (files
        cut short of their recorded size are removed; any other difference fails at once), then
        the integrity of files the lock does not know. Returns (reports of removed files, facts,
        pinned facts)."""
        reports = failed_downloads()
        present = [p for p in present if p.is_file()]
        facts, pinned = [], []
        if lock_file and present:
            try:
                facts, pinned = check_lock(lock_file, model_dir, present)
            except LockMismatch as error:
                if error.short != error.files:
                    raise
                for path in error.short:  # shorter than recorded: an interrupted download
                    path.unlink()
                    reports.append(f"{path}: it is shorter than the lock file records (an interrupted download); "
                                   f"removed it. {per_file_fix(path)}")
                    log.warning(reports[-1])
                return reports, [], []
        elif present:
            facts = _facts(Path(model_dir), present)
        pinned_files = {f["file"] for f in pinned}
        unpinned = [p for p, f in zip(present, facts) if f["file"] not in pinned_files]
        reports += remove_bad_files(unpinned, per_file_fix, log)
        return reports, facts, pinned

    def attempt(number: int) -> tuple[nn.Module, list[dict[str, Any]]]:
        screen([p for p in paths if p.is_file()])  # files already there: bad ones removed, fetched below
        missing = [(p, g) for p, g in files if not p.is_file()]
        log.info("attempt %d: %s (%s)", number, entry.key,
                 f"downloading {len(missing)} file(s)" if missing else "all files present, no download")
        for path, gdrive in missing:
            path.parent.mkdir(parents=True, exist_ok=True)
            download(gdrive, str(path))
            if not path.is_file():
                raise AcquisitionError(f"the download of {path} left no file")
        reports, facts, pinned = screen(paths)
        if reports:
            raise AcquisitionError("bad download: " + " | ".join(reports))
        unpinned = [f for f in facts if f not in pinned]
        trusted = trust_pickles and not unpinned
        log.info("%s: %s", entry.key, "sha256 of every file matches the lock file" if not unpinned else
                 f"{len(unpinned)} file(s) not yet in the lock file")
        try:
            with _torch_load_trusting(trusted):
                model = load_model(model_name=entry.key, model_dir=str(model_dir), dataset=entry.dataset,
                                   threat_model=entry.threat_model)
        except Exception as error:
            if "Weights only load failed" in str(error):
                first = str(error).splitlines()[0]
                if trust_pickles and lock_file:
                    rows = "\n".join(f"  {f['file']}\t{f['sha256']}\t{f['bytes']}" for f in unpinned)
                    raise PermanentError(
                        f"{entry.key}: the checkpoint holds more than tensors, and unpickling it runs code from the "
                        f"file; acquisition.trust_pickles unpickles only files whose sha256 the lock file {lock_file} "
                        f"records, and it does not record:\n{rows}\nFix: if you trust these files (RobustBench's "
                        f"Google Drive ids {', '.join(g for _, g in files)}), add those lines to the lock file and run "
                        f"again. ({first})") from error
                if trust_pickles:
                    raise PermanentError(
                        f"{entry.key}: the checkpoint holds more than tensors; acquisition.trust_pickles unpickles "
                        "only files whose sha256 acquisition.lock_file records, and lock_file is null. Fix: set "
                        f"acquisition.lock_file and record the files' sha256 there. ({first})") from error
                raise PermanentError(
                    f"{entry.key}: the checkpoint holds more than tensors and torch.load refuses to unpickle "
                    "it by default. Fix: if you trust RobustBench's file, set config acquisition.trust_pickles: "
                    "true and record its sha256 in acquisition.lock_file (then only that file is unpickled). "
                    f"({first})") from error
            raise
        return model, facts

    model, facts = with_retries(attempt, attempts=attempts, backoff_s=backoff_s, max_backoff_s=max_backoff_s,
                                sleep=sleep, give_up_on=(PermanentError,),
                                what=f"RobustBench {entry.dataset}/{entry.threat_model}/{entry.key}", fix=fix, log=log)
    if lock_file:
        facts = verify_or_record(lock_file, model_dir, paths, log)
    for fact, (_, gdrive) in zip(facts, files):
        fact["gdrive_id"] = gdrive
    return model, facts


def check_fits(state_dict: dict[str, torch.Tensor], architecture: str, arch_kwargs: dict[str, Any],
               num_classes: int, model_id: str) -> None:
    """Raise :class:`AcquisitionError` unless ``state_dict`` fits the architecture exactly."""
    model = build_architecture(architecture, arch_kwargs, num_classes, device="meta")
    if problems := fit_problems(model, state_dict):
        raise AcquisitionError(
            f"{model_id}: the acquired weights do not fit architecture {architecture} {arch_kwargs}: "
            f"{'; '.join(problems)}. Fix: check the sheet's architecture and arch_kwargs.")


def _plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


# The published weights cannot be saved again by the user: what to do when they are unusable.
UNUSABLE_FIX = ("the published weights cannot be analysed as they are; leave the model out of the sheet (and tell "
                "its authors)")


def robustbench_checkpoint(model_id: str, entry: RobustBenchEntry, model: nn.Module,
                           facts: list[dict[str, Any]] | None = None) -> Checkpoint:
    """A loaded RobustBench model as a checkpoint; inputs in [0, 1] (RobustBench normalises inside)."""
    arch_kwargs = {"dataset": entry.dataset, "key": entry.key, "threat_model": entry.threat_model}
    num_classes = dataset_info(entry.dataset).num_classes
    state_dict = _plain_state_dict(model)
    check_fits(state_dict, "robustbench", arch_kwargs, num_classes, model_id)
    state_dict = usable_tensors(state_dict, state_dict, f"{model_id}: RobustBench's {entry.key}", fix=UNUSABLE_FIX)
    from filterlens.models.compat import import_robustbench

    robustbench = import_robustbench()

    return Checkpoint(model_id=model_id, dataset=entry.dataset, num_classes=num_classes, architecture="robustbench",
                      arch_kwargs=arch_kwargs, normalization=None, source="robustbench", state_dict=state_dict,
                      extra={"robustbench_version": getattr(robustbench, "__version__", "unknown"),
                             "files": facts or []})


# --------------------------------------------------------------------------------------------
# timm


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def hf_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def timm_fix(pretrained_name: str) -> str:
    repo = f"models--timm--{pretrained_name}"
    return (f"Fix: on a machine with internet, run\n  HF_HOME=/some/dir python -c \"import timm; "
            f"timm.create_model('{pretrained_name}', pretrained=True)\"\n"
            f"and copy /some/dir/hub/{repo} into this machine's Hugging Face cache "
            f"({hf_cache_dir()}/{repo}; set HF_HOME or HF_HUB_CACHE to use another); "
            f"or unset HF_HUB_OFFLINE to download.")


def timm_checkpoint(model_id: str, name: str, model: nn.Module, pretrained_name: str | None = None) -> Checkpoint:
    """A timm model as a checkpoint: architecture ``timm`` {"name": name}, its pretrained mean/std."""
    config = getattr(model, "pretrained_cfg", None) or {}
    mean, std = config.get("mean"), config.get("std")
    if mean is None or std is None:
        raise AcquisitionError(f"{model_id}: timm's pretrained config of {name} has no mean/std")
    num_classes = int(getattr(model, "num_classes", 1000))
    state_dict = _plain_state_dict(model)
    check_fits(state_dict, "timm", {"name": name}, num_classes, model_id)
    state_dict = usable_tensors(state_dict, state_dict, f"{model_id}: timm's {pretrained_name or name}",
                                fix=UNUSABLE_FIX)
    import timm

    return Checkpoint(model_id=model_id, dataset="imagenet", num_classes=num_classes, architecture="timm",
                      arch_kwargs={"name": name}, normalization={"mean": [float(m) for m in mean],
                                                                 "std": [float(s) for s in std]},
                      source="timm", state_dict=state_dict,
                      extra={"pretrained": pretrained_name or name, "timm_version": timm.__version__,
                             "hf_hub_id": config.get("hf_hub_id"), "url": config.get("url")})


def load_timm(pretrained_name: str, *, attempts: int = 4, backoff_s: float = 30.0, max_backoff_s: float = 600.0,
              create_model: Callable[..., nn.Module] | None = None, sleep: Callable[[float], None] = time.sleep,
              log: logging.Logger = LOG) -> nn.Module:
    """``timm.create_model(pretrained_name, pretrained=True)``: timm's own download through the
    Hugging Face hub (huggingface_hub < 1.0, which timm 1.0.9 imports), into and from its cache.

    Network failures are retried with back-off; offline (HF_HUB_OFFLINE), weights missing from
    the cache fail at once with the fix; a name without pretrained weights on the hub fails at once.
    """
    if problem := timm_name_problem(pretrained_name):
        raise PermanentError(problem)
    import timm

    create_model = create_model or timm.create_model
    try:
        config = timm.models.get_pretrained_cfg(pretrained_name)
    except RuntimeError:  # an unknown tag of a known architecture
        config = None
    if config is None or not config.hf_hub_id:
        raise PermanentError(f"timm has no pretrained weights {pretrained_name!r} on the Hugging Face hub. "
                             "Fix: set the sheet's source_key to one of timm.list_pretrained().")
    if not timm.models._hub.has_hf_hub():
        raise PermanentError(f"timm {timm.__version__} cannot import this huggingface_hub and would bypass the "
                             "Hugging Face cache. Fix: install the huggingface_hub of requirements.txt (< 1.0).")
    offline = hf_offline()
    log.info("timm %s: Hugging Face hub %s, cache %s, offline %s", pretrained_name, config.hf_hub_id,
             hf_cache_dir(), offline)
    try:
        model = with_retries(lambda attempt: create_model(pretrained_name, pretrained=True),
                             attempts=1 if offline else attempts, backoff_s=backoff_s, max_backoff_s=max_backoff_s,
                             sleep=sleep, give_up_on=(PermanentError,),
                             what=f"timm {pretrained_name} (pretrained weights)", fix=timm_fix(pretrained_name),
                             log=log)
    except AcquisitionError as error:
        if offline and not isinstance(error, PermanentError):
            raise AcquisitionError(f"HF_HUB_OFFLINE is set and the weights of timm {pretrained_name} are not in "
                                   f"the Hugging Face cache {hf_cache_dir()}.\n{error}") from None
        raise
    return model.eval()


def timm_base_name(pretrained_name: str) -> str:
    """``resnet18.tv_in1k`` -> ``resnet18`` (the architecture; the tag picks the weights)."""
    return pretrained_name.split(".", 1)[0]
