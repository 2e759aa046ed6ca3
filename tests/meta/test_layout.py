"""The library's layout shows the pipeline: one package per stage, imports from later stages to
earlier ones only, and no module that reaches outside the package for its own files."""

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "filterlens"
# The stages in data-flow order (docs/design.md, "Library layout").
# method (definitions on arrays) is the ground floor: it imports no other stage, and every stage may use it.
# cli (the filterlens command) comes last: it may call every stage, and none calls it.
STAGES = ["method", "io", "config", "models", "train", "acquire", "extract", "probe", "reduce", "analyse", "report",
          "cli"]
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def _stage(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def _imported_stages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "filterlens" and len(parts) > 1 and parts[1] in STAGES:
                found.add(parts[1])
    return found


def test_every_module_lives_in_a_stage_package():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert set(top) <= {"__init__.py", "__main__.py", "api.py"}, top
    assert {_stage(p) for p in MODULES} <= set(STAGES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_from_later_stages_to_earlier_ones(path):
    own = STAGES.index(_stage(path))
    later = sorted(s for s in _imported_stages(path) if STAGES.index(s) > own)
    assert not later, f"{path.relative_to(PACKAGE)} ({_stage(path)}) imports the later stage(s) {later}"


def test_no_module_finds_files_through_the_repository_layout():
    for path in MODULES:
        assert "parents[" not in path.read_text(), f"{path.relative_to(PACKAGE)} depends on the repository layout"


def test_the_package_builds_and_imports_with_its_schemas_outside_the_repository(tmp_path):
    # A wheel of a copy of the project (setuptools writes build/ beside pyproject.toml), unpacked
    # where no repository is: the sheet finds its schema inside the package.
    repo = PACKAGE.parents[1]
    source = tmp_path / "source"
    shutil.copytree(repo / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo / "pyproject.toml", source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(tmp_path / "wheel"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("filterlens-*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    check = ("import filterlens.config.sheet as s, filterlens.report.style;"
             "assert s.SCHEMA.is_file() and 'site' in s.SCHEMA.parts, s.SCHEMA")
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


# What a reduction job imports is paid by every one of them (docs/benchmarks.md, "Imports"):
# each rule script's imports, run in a fresh interpreter, against the packages it must not load.
REPO = PACKAGE.parents[1]
NOT_IMPORTED = {
    "workflow_scripts/coefficient_range.py": ["torch", "pandas", "dask.array", "scipy", "numba"],
    "workflow_scripts/coefficient_histograms.py": ["torch", "pandas", "dask.array", "scipy", "numba"],
    # pass 1 imports numba and pandas when it runs, not with its modules
    "workflow_scripts/summarize_model.py": ["torch", "pandas", "dask.array", "scipy", "numba"],
}


@pytest.mark.parametrize("script", sorted(NOT_IMPORTED))
def test_a_reduction_scripts_imports_load_only_what_it_uses(script):
    tree = ast.parse((REPO / script).read_text())
    imports = "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    probe = f"{imports}\nimport sys\nprint(' '.join(m for m in {NOT_IMPORTED[script]!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(PACKAGE.parent), "PATH": ""})
    assert result.stdout.split() == [], f"{script} imports {result.stdout.strip()}"


# What the passes load while they run, beyond their imports: pass 1 loads numba (and through it
# scipy.linalg) and pandas for its layer table; no pass may load torch.
RUN_PROBE = """
import sys
from filterlens.extract.store import FilterStoreError, open_filter_store, with_depth_definition
from filterlens.method.pca import pca
from filterlens.reduce.passes import coefficient_histograms, coefficient_range, summarize

store = open_filter_store(sys.argv[1])
try:
    with_depth_definition(store, "conv_count")  # a definition the store lacks: checked, then refused
except FilterStoreError:
    pass
loaded = {}
_, moments = summarize(with_depth_definition(store, None), 1, 1000)
loaded["summarize"] = [m for m in ("torch", "dask.array") if m in sys.modules]
basis = pca(sum(moments.scaled[1:], moments.scaled[0]))
low, high = coefficient_range(store, basis, 1, 1000)
coefficient_histograms(store, basis, float(low.min()), float(high.max()), 10, 1, 1000)
loaded["coefficients"] = [m for m in ("torch", "dask.array") if m in sys.modules]
print(loaded)
"""


def test_the_passes_load_no_torch_while_they_run(tmp_path):
    import numpy as np
    from conftest import write_filter_store

    rng = np.random.default_rng(0)
    store = write_filter_store(tmp_path / "m.zarr", [(3, 4, 1), (4, 8, 1)],
                               [rng.normal(size=(n, 9)).astype(np.float32) for n in (12, 32)], chunk_rows=16)
    result = subprocess.run([sys.executable, "-c", RUN_PROBE, str(store)], capture_output=True, text=True,
                            env={"PYTHONPATH": str(PACKAGE.parent), "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'summarize': [], 'coefficients': []}"


@pytest.mark.parametrize("script", sorted([*(REPO / "workflow_scripts").glob("*.py"),
                                           *(REPO / "dev" / "perf" / "scripts").glob("*.py")]),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_a_rule_script_is_one_rule_script_block_after_its_imports(script):
    """A finished job's process ends where the block ends (filterlens.io.scripting.end_job_process):
    nothing of the script may follow it, and everything it does runs inside it."""
    body = ast.parse(script.read_text()).body
    *head, last = [node for node in body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    assert isinstance(last, ast.With) and any(
        isinstance(item.context_expr, ast.Call) and getattr(item.context_expr.func, "id", None) == "rule_script"
        for item in last.items), f"{script.name}: its last statement is not `with rule_script(snakemake)`"
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)
    assert all(isinstance(node, allowed) for node in head), \
        f"{script.name}: statements before the rule_script block do more than import and define"


def _rule_scripts() -> dict[str, list[str]]:
    """The rules that run each script of workflow_scripts/ (the rules of a loop, named in its body, as '<loop>':
    a pass's per-model rule and its batch rules, several rules that share the script)."""
    used = {}
    for path in sorted((REPO / "rules").rglob("*.smk")):
        for block in re.split(r"^[ \t]*rule\b", path.read_text(), flags=re.M)[1:]:
            name = re.match(r"[ \t]*(\w*)[ \t]*:", block).group(1) or "<loop>"
            script = re.search(r'^\s+script:\s*\n\s+"[^"]*workflow_scripts/(\w+)\.py"', block, re.M)
            if script:
                used.setdefault(script.group(1), []).append(name)
    return used


def test_a_rules_script_is_named_after_it_or_shared():
    """`snakemake <rule>` and its script are found by one name; a script several rules run is named for what it does."""
    used = _rule_scripts()
    assert len(used) > 20, "no rule scripts found: has the rule syntax changed?"
    wrong = {script: rules for script, rules in used.items() if len(rules) == 1 and rules not in ([script], ["<loop>"])}
    assert not wrong, f"rule scripts not named after their rule (script: rules): {wrong}"
