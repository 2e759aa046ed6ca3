"""Every journey of docs/journeys.md, run as written from a fresh copy of the repository.

The copy's default config is the micro config (config/config.yaml merged with config/micro.yaml),
so `make run` and every run in a journey's own directory take tiny models. The journeys run in
the page's order in one copy: later ones use what earlier ones made (the default run's results,
the own models' weights). A command block preceded by `<!-- exit status: N -->` must end with N;
every other block must succeed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.workflow
PAGE = REPO / "docs" / "journeys.md"
BLOCK = re.compile(r"(?:<!-- exit status: (\d+) -->\n)?```bash\n(.*?)```", re.S)


@dataclass
class Journey:
    title: str
    blocks: list[tuple[str, int]] = field(default_factory=list)  # (commands, expected exit status)


def read_journeys(text: str) -> list[Journey]:
    """The page's sections (## headings) with their bash blocks, in order."""
    journeys = []
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = section.partition("\n")
        blocks = [(commands, int(status or 0)) for status, commands in BLOCK.findall(body)]
        journeys.append(Journey(title.strip(), blocks))
    return journeys


JOURNEYS = read_journeys(PAGE.read_text())


def _merged(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The repository's tracked and unignored files, as a fresh clone has them, with the micro
    config as its default."""
    root = tmp_path_factory.mktemp("journeys") / "filterlens"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    micro = yaml.safe_load((REPO / "config" / "micro.yaml").read_text())
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(_merged(default, micro), sort_keys=False))
    return root


def run_block(clone: Path, commands: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "VIRTUAL_ENV"))}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=clone, capture_output=True, text=True,
                          env={**environment, "PYTHONWARNINGS": "ignore"})


def test_the_page_has_every_journey_of_a_researcher():
    titles = [journey.title for journey in JOURNEYS]
    assert titles[0] == "The default run", "the other journeys start from a finished default run"
    for expected in ("One figure after a change", "Your own models", "From Python", "Placing models against a reference",
                     "Staging the paper's zoo", "A leaderboard's sheet", "On a SLURM cluster"):
        assert expected in titles
    assert all(journey.blocks for journey in JOURNEYS), "a journey without commands"


# What each journey leaves behind, beyond its commands' exit status.
def _default_run(clone: Path, output: str) -> None:
    assert (clone / "results" / "report.html").stat().st_size > 0
    assert "Nothing to be done" in output


def _own_models(clone: Path, output: str) -> None:
    run = clone / "runs" / "mine" / "results"
    models = pd.read_csv(run / "tables" / "models.tsv", sep="\t")
    assert models.model_id.tolist() == ["tv_r18", "timm_r10t", "my_net"]
    assert (run / "report.html").stat().st_size > 0
    default = pd.read_csv(clone / "results" / "tables" / "models.tsv", sep="\t")
    assert default.model_id.tolist() == ["micro_normal", "micro_robust"], "a run of its own touched the default run"


def _placing(clone: Path, output: str) -> None:
    placement = pd.read_csv(clone / "runs" / "placed" / "results" / "tables" / "placement.tsv", sep="\t")
    assert set(placement.model_id) == {"random_wrn"}


CHECKS = {"The default run": _default_run, "Your own models": _own_models,
          "Placing models against a reference": _placing}


@pytest.mark.parametrize("journey", JOURNEYS, ids=lambda journey: journey.title)
def test_journey_runs_as_written(clone, journey):
    output = ""
    for commands, expected in journey.blocks:
        result = run_block(clone, commands)
        output += result.stdout + result.stderr
        assert result.returncode == expected, (
            f"docs/journeys.md, '{journey.title}': exit status {result.returncode} (expected {expected}) of\n"
            f"{commands}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}")
    if check := CHECKS.get(journey.title):
        check(clone, output)
