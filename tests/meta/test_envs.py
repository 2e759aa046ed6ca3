"""The conda environments pin the same versions as requirements.txt."""

import re

import pytest
import yaml
from conftest import REPO


def _pins(lines):
    pins = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s#;]+).*", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


REQUIREMENTS = _pins((REPO / "requirements.txt").read_text().splitlines())
ENVS = sorted((REPO / "envs").glob("*.yaml"))


def test_every_rule_group_has_an_environment():
    assert {e.stem for e in ENVS} == {"models", "analysis", "figures"}


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.stem)
def test_environment_pins_equal_requirements(env):
    spec = yaml.safe_load(env.read_text())
    pip_section = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    pins = _pins(pip_section)
    assert pins and len(pins) == len(pip_section), "every pip dependency is pinned with =="
    mismatched = {name: (version, REQUIREMENTS.get(name)) for name, version in pins.items()
                  if REQUIREMENTS.get(name) != version}
    assert not mismatched, f"{env.name} differs from requirements.txt: {mismatched}"
    python = next(d for d in spec["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"


def test_every_rule_uses_one_of_the_environments():
    for rules in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*"([^"]+)"', rules.read_text()):
            assert (REPO / "rules" / env).resolve().parent == (REPO / "envs").resolve(), env
            assert (REPO / "rules" / env).resolve().exists(), env
