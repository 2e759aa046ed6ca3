"""RobustBench's model zoo into the checkpoint contract, every weight file checked before
anything parses it.

``robustbench.utils.load_model(model_name=key, model_dir=..., dataset=..., threat_model=...)``
reads ``<model_dir>/<dataset>/<threat_model>/<key>.pt`` (ensembles: ``<key>.pt_m0.pt``,
``<key>.pt_m1.pt``, ...). Missing files are downloaded here first, with RobustBench's own Google
Drive download, so that ``load_model`` (whose ``torch.load`` is the first parser) only ever reads
files already checked, in this order: a failed download (an empty file, a saved HTML page such
as Google Drive's quota or virus-scan page; :mod:`filterlens.acquire.failed_downloads`), the lock
file (:mod:`filterlens.acquire.lock_file`: a different file is refused before anything reads it,
one cut short is fetched again), then the integrity of files the lock does not know yet
(:func:`file_problem`). Bad files are removed, logged with the fix, and downloaded again with
exponential back-off (:mod:`filterlens.acquire.retries`). The first good file's sha256 is
recorded in the lock. A model directory filled beforehand loads with no network.

The download and the loading go through functions passed in (``download``, ``load_model``) and
every wait through an injectable ``sleep``, so the logic is tested offline on files the tests
write themselves.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from filterlens.acquire.checkpoint import UNUSABLE_FIX, Checkpoint, check_fits, plain_state_dict, usable_tensors
from filterlens.acquire.errors import AcquisitionError, PermanentError
from filterlens.acquire.failed_downloads import failed_download_problem
from filterlens.acquire.lock_file import LockMismatch, check_lock, file_facts, verify_or_record
from filterlens.acquire.retries import with_retries
from filterlens.config.datasets import dataset_info
from filterlens.models.pretrained_sources import served_elsewhere
from filterlens.models.robustbench_zoo import UnknownRobustBenchEntry, zoo_entry

LOG = logging.getLogger(__name__)


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


@dataclass
class _EntryFiles:
    """The weight files of one RobustBench entry in ``model_dir``, each with its Google Drive id,
    and the checks they pass before anything parses them."""

    entry: RobustBenchEntry
    model_dir: str | os.PathLike
    lock_file: str | os.PathLike | None
    log: logging.Logger
    files: list[tuple[Path, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.files = self.entry.files(self.model_dir)

    @property
    def paths(self) -> list[Path]:
        return [path for path, _ in self.files]

    def fix(self, path: Path) -> str:
        gdrive = dict(self.files)[path]
        return f"Fix: download https://drive.google.com/uc?id={gdrive} by hand and save it as {path}."

    def remove(self, path: Path, problem: str) -> str:
        """Remove the bad file ``path``; log and return the report naming ``problem`` and the fix."""
        path.unlink()
        report = f"{path}: {problem}; removed it. {self.fix(path)}"
        self.log.warning(report)
        return report

    def screen(self, present: list[Path]) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
        """Check ``present`` before anything parses them: a failed download, then the lock (files
        cut short of their recorded size are removed; any other difference fails at once), then
        the integrity of files the lock does not know. Returns (reports of removed files, facts,
        pinned facts)."""
        reports = [self.remove(path, f"it {problem}") for path in self.paths
                   if path.is_file() and (problem := failed_download_problem(path))]
        present = [p for p in present if p.is_file()]
        facts, pinned = [], []
        if self.lock_file and present:
            try:
                facts, pinned = check_lock(self.lock_file, self.model_dir, present)
            except LockMismatch as error:
                if error.short != error.files:
                    raise
                reports += [self.remove(path, "it is shorter than the lock file records (an interrupted download)")
                            for path in error.short]
                return reports, [], []
        elif present:
            facts = file_facts(Path(self.model_dir), present)
        pinned_files = {f["file"] for f in pinned}
        unpinned = [p for p, f in zip(present, facts) if f["file"] not in pinned_files]
        reports += [self.remove(path, problem) for path in unpinned
                    if path.is_file() and (problem := file_problem(path))]
        return reports, facts, pinned


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
    files = _EntryFiles(entry, model_dir, lock_file, log)
    attempt = functools.partial(_attempt, files, load_model=load_model, download=download,
                                trust_pickles=trust_pickles)
    model, facts = with_retries(attempt, attempts=attempts, backoff_s=backoff_s, max_backoff_s=max_backoff_s,
                                sleep=sleep, give_up_on=(PermanentError,),
                                what=f"RobustBench {entry.dataset}/{entry.threat_model}/{entry.key}",
                                fix=manual_download_fix(entry, model_dir), log=log)
    if lock_file:
        facts = verify_or_record(lock_file, model_dir, files.paths, log)
    for fact, (_, gdrive) in zip(facts, files.files):
        fact["gdrive_id"] = gdrive
    return model, facts


def _attempt(files: _EntryFiles, number: int, *, load_model: Callable[..., nn.Module],
             download: Callable[[str, str], None], trust_pickles: bool) -> tuple[nn.Module, list[dict[str, Any]]]:
    """One attempt of :func:`load_robustbench`: the files there screened (bad ones removed), the
    missing ones downloaded and screened, then loaded by ``load_model``."""
    entry, log = files.entry, files.log
    files.screen([p for p in files.paths if p.is_file()])  # files already there: bad ones removed, fetched below
    missing = [(p, g) for p, g in files.files if not p.is_file()]
    log.info("attempt %d: %s (%s)", number, entry.key,
             f"downloading {len(missing)} file(s)" if missing else "all files present, no download")
    for path, gdrive in missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        download(gdrive, str(path))
        if not path.is_file():
            raise AcquisitionError(f"the download of {path} left no file")
    reports, facts, pinned = files.screen(files.paths)
    if reports:
        raise AcquisitionError("bad download: " + " | ".join(reports))
    unpinned = [f for f in facts if f not in pinned]
    trusted = trust_pickles and not unpinned
    log.info("%s: %s", entry.key, "sha256 of every file matches the lock file" if not unpinned else
             f"{len(unpinned)} file(s) not yet in the lock file")
    try:
        with _torch_load_trusting(trusted):
            model = load_model(model_name=entry.key, model_dir=str(files.model_dir), dataset=entry.dataset,
                               threat_model=entry.threat_model)
    except Exception as error:
        if "Weights only load failed" in str(error):
            raise _pickle_refusal(files, unpinned, trust_pickles, str(error).splitlines()[0]) from error
        raise
    return model, facts


def _pickle_refusal(files: _EntryFiles, unpinned: list[dict[str, Any]], trust_pickles: bool,
                    first: str) -> PermanentError:
    """Why ``torch.load`` refused to unpickle the entry's checkpoint (it holds more than tensors),
    and what to do, as the settings of acquisition.trust_pickles and lock_file call for."""
    key, lock_file = files.entry.key, files.lock_file
    if trust_pickles and lock_file:
        rows = "\n".join(f"  {f['file']}\t{f['sha256']}\t{f['bytes']}" for f in unpinned)
        return PermanentError(
            f"{key}: the checkpoint holds more than tensors, and unpickling it runs code from the "
            f"file; acquisition.trust_pickles unpickles only files whose sha256 the lock file {lock_file} "
            f"records, and it does not record:\n{rows}\nFix: if you trust these files (RobustBench's "
            f"Google Drive ids {', '.join(g for _, g in files.files)}), add those lines to the lock file and run "
            f"again. ({first})")
    if trust_pickles:
        return PermanentError(
            f"{key}: the checkpoint holds more than tensors; acquisition.trust_pickles unpickles "
            "only files whose sha256 acquisition.lock_file records, and lock_file is null. Fix: set "
            f"acquisition.lock_file and record the files' sha256 there. ({first})")
    return PermanentError(
        f"{key}: the checkpoint holds more than tensors and torch.load refuses to unpickle "
        "it by default. Fix: if you trust RobustBench's file, set config acquisition.trust_pickles: "
        "true and record its sha256 in acquisition.lock_file (then only that file is unpickled). "
        f"({first})")


def robustbench_checkpoint(model_id: str, entry: RobustBenchEntry, model: nn.Module,
                           facts: list[dict[str, Any]] | None = None) -> Checkpoint:
    """A loaded RobustBench model as a checkpoint; inputs in [0, 1] (RobustBench normalises inside)."""
    arch_kwargs = {"dataset": entry.dataset, "key": entry.key, "threat_model": entry.threat_model}
    num_classes = dataset_info(entry.dataset).num_classes
    state_dict = plain_state_dict(model)
    check_fits(state_dict, "robustbench", arch_kwargs, num_classes, model_id)
    state_dict = usable_tensors(state_dict, state_dict, f"{model_id}: RobustBench's {entry.key}", fix=UNUSABLE_FIX)
    from filterlens.models.compat import import_robustbench

    robustbench = import_robustbench()

    return Checkpoint(model_id=model_id, dataset=entry.dataset, num_classes=num_classes, architecture="robustbench",
                      arch_kwargs=arch_kwargs, normalization=None, source="robustbench", state_dict=state_dict,
                      extra={"robustbench_version": getattr(robustbench, "__version__", "unknown"),
                             "files": facts or []})
