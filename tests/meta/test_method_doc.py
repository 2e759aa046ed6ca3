"""docs/method.md is the method the project cites: every section a file cites exists, every test
it names exists, and nothing cites a method document outside the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METHOD = ROOT / "docs" / "method.md"
CITING = [p for d in ("src", "rules", "workflow_scripts", "tests", "tools", "config") for p in (ROOT / d).rglob("*")
          if p.is_file() and p.suffix in {".py", ".smk", ".rst", ".yaml", ".tsv"} and p.name != Path(__file__).name]
CITING.append(ROOT / "Snakefile")


def _sections() -> set[str]:
    return set(re.findall(r"^## (\d+)\. ", METHOD.read_text(), flags=re.MULTILINE))


def test_every_cited_section_of_docs_method_exists():
    sections = _sections()
    assert sections == {str(n) for n in range(1, 8)}
    for path in CITING:
        for cited in re.findall(r"docs/method\.md §(\d+)(?:-§(\d+))?", path.read_text(errors="replace")):
            for section in filter(None, cited):
                assert section in sections, f"{path.relative_to(ROOT)} cites docs/method.md §{section}"


def test_nothing_cites_a_method_document_outside_the_repository():
    for path in CITING:
        text = path.read_text(errors="replace")
        assert not re.search(r"\bMETHOD(\.md)?\b", text), f"{path.relative_to(ROOT)} cites METHOD, not docs/method.md"
        assert "../shared" not in text, path.relative_to(ROOT)


@pytest.mark.parametrize("reference", sorted(set(re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", METHOD.read_text()))))
def test_every_test_docs_method_names_exists(reference):
    path, name = reference
    assert (ROOT / path).is_file(), path
    if name:
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), flags=re.MULTILINE), f"{path}::{name}"
