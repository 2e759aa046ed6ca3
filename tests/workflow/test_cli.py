"""The filterlens command and the models it takes: a checkpoint, a state dict file with its
architecture, a model name; and each clone's .venv, which imports that clone's package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import REPO

import filterlens
from filterlens.cli import SUBCOMMANDS, main
from filterlens.io.files import read_tsv

CLI = REPO / "src" / "filterlens" / "cli"
# Columns that depend on the weights (the rest describe the layers).
MEASURES = ["n_filters", "n_sparse", "sparsity", "entropy_unscaled", "entropy_scaled", "orthogonality", "l1l2_ratio",
            "hf_share"]


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(name, capsys):
    if not (CLI / f"{SUBCOMMANDS[name].module}.py").is_file():
        # Registered before its module is written: the command says which file is missing.
        assert main([name, "--help"]) == 2
        assert f"src/filterlens/cli/{SUBCOMMANDS[name].module}.py" in capsys.readouterr().err
        return
    with pytest.raises(SystemExit) as stop:
        main([name, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: filterlens {name}") and len(out.splitlines()) > 3, out


def test_the_overview_lists_every_subcommand_and_imports_none_of_them():
    probe = ("import sys; from filterlens.cli import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print('LOADED', sorted(m for m in sys.modules if m.startswith('filterlens.cli.') or m == 'torch'))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    for name, sub in SUBCOMMANDS.items():
        assert f"  {name}" in result.stdout and sub.help.split()[0] in result.stdout, name
    assert result.stdout.splitlines()[-1] == "LOADED []"


def test_python_dash_m_and_the_venv_script_run_the_command():
    for command in ([sys.executable, "-m", "filterlens", "--version"],
                    [str(Path(sys.executable).parent / "filterlens"), "--version"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.strip() == f"filterlens {filterlens.__version__}", result


def _saved(model: torch.nn.Module, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    return path


def _conv3x3_filters(model: torch.nn.Module) -> int:
    return sum(m.in_channels // m.groups * m.out_channels for m in model.modules()
               if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))


def test_analyze_reads_a_torchvision_state_dict_file_with_its_architecture(tmp_path, capsys):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    weights = _saved(model, tmp_path / "r18.pt")
    out = tmp_path / "layers.tsv"
    assert main(["analyze", str(weights), "--architecture", "torchvision:resnet18", "--output", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    table = read_tsv(out)
    assert len(table) == 16 and table.n_filters.sum() == _conv3x3_filters(model)
    # The file's weights, not a fresh model's: the same table as the module itself gives.
    expected = filterlens.analyze(model)
    pd.testing.assert_frame_equal(table[MEASURES], expected[MEASURES], check_dtype=False)


def test_analyze_reads_a_timm_state_dict_and_finds_its_classes(tmp_path):
    import timm

    torch.manual_seed(1)
    model = timm.create_model("resnet10t", num_classes=10).eval()
    weights = _saved(model, tmp_path / "r10t.pt")
    table = filterlens.analyze(weights, architecture="timm:resnet10t")
    assert table.n_filters.sum() == _conv3x3_filters(model)
    pd.testing.assert_frame_equal(table[MEASURES], filterlens.analyze(model)[MEASURES])
    with pytest.raises(ValueError, match=r"do not fit architecture timm \{'name': 'resnet18'\}.*missing keys"):
        filterlens.analyze(weights, architecture="timm:resnet18")


def test_a_plain_state_dict_without_its_architecture_is_named_as_one(tmp_path, capsys):
    weights = _saved(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), tmp_path / "r18.pt")
    assert main(["analyze", str(weights)]) == 1
    error = capsys.readouterr().err
    assert f"{weights} is a plain state dict (2 tensors: 0.weight, 0.bias)" in error, error
    assert "--architecture" in error and "delete" not in error.lower() and "Traceback" not in error
    with pytest.raises(ValueError, match=r"plain state dict.*architecture='timm:resnet18'"):
        filterlens.analyze(weights)


def test_a_model_name_needs_its_weights_named_or_a_seed(tmp_path, capsys):
    assert main(["analyze", "robustbench:cifar10/Linf/Standard"]) == 1
    error = capsys.readouterr().err
    assert "its weights are not at hand" in error and "--weights" in error and "--random-init" in error, error
    out = tmp_path / "random.tsv"
    assert main(["analyze", "timm:resnet10t", "--random-init", "3", "--output", str(out)]) == 0
    again = filterlens.analyze("timm:resnet10t", random_init=3)
    pd.testing.assert_frame_equal(read_tsv(out)[MEASURES], again[MEASURES], check_dtype=False)


def test_compare_of_two_models_and_of_a_model_with_itself(tmp_path, capsys):
    import timm

    files = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        files.append(_saved(timm.create_model("resnet10t", num_classes=10), tmp_path / f"m{seed}.pt"))
    out = tmp_path / "both"
    assert main(["compare", *map(str, files), "--architecture", "timm:resnet10t", "--bins", "20",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "A = m0" in printed and "KL divergence" in printed and "first component" in printed
    kl = read_tsv(out / "kl_by_depth.tsv").set_index("depth_group")
    assert kl.loc["all", "kl"] > 0 and kl.loc["all", "n_filters_a"] == kl.loc["all", "n_filters_b"]
    assert set(read_tsv(out / "bases.tsv").set) == {"full", "model:m0", "model:m1"}
    quality = read_tsv(out / "quality_by_depth.tsv")
    assert set(quality.model_id) == {"m0", "m1"} and "all" in set(quality.depth_group)
    same = filterlens.compare(files[0], files[0], architecture="timm:resnet10t", bins=20)
    assert (same.a, same.b) == ("a_m0", "b_m0")
    assert (same.kl_by_depth.kl.dropna() == 0).all()
    shares = same.first_component_shares.set_index("set").first_component_share
    assert shares["model:a_m0"] == shares["model:b_m0"] == pytest.approx(shares["full"])


@pytest.mark.workflow
def test_compare_of_a_runs_two_checkpoints_gives_the_runs_kl_and_quality(micro_run):
    """The same passes and analyses as the workflow: the micro run's robust model against its
    counterpart gives the run's own KL by depth group and layer quality."""
    models = micro_run / "data" / "models"
    result = filterlens.compare(models / "micro_robust.pt", models / "micro_normal.pt")
    analysis = micro_run / "results" / "analysis"
    run_kl = read_tsv(analysis / "kl_by_depth.tsv").set_index("depth_group")
    ours = result.kl_by_depth.set_index("depth_group")
    groups = run_kl.index[run_kl.n_robust_filters > 0]
    assert len(groups) > 2
    pd.testing.assert_series_equal(ours.kl[groups], run_kl.kl[groups], rtol=1e-9)
    whole = read_tsv(analysis / "kl_by_dataset.tsv").query("pooling == 'paired'").kl.iloc[0]
    assert ours.kl["all"] == pytest.approx(whole, rel=1e-9)
    run_quality = read_tsv(analysis / "quality_by_depth.tsv").set_index(["model_id", "depth_group"])
    quality = result.quality_by_depth.set_index(["model_id", "depth_group"])
    columns = ["n_filters", "sparsity", "entropy_unscaled", "orthogonality"]
    pd.testing.assert_frame_equal(quality[columns], run_quality.loc[quality.index, columns], check_dtype=False)


# --- each clone's environment ----------------------------------------------------------------

def _shared_environment() -> Path:
    """The shared environment this clone's .venv was made over (tools/ensure-venv's record)."""
    record = REPO / ".venv" / "filterlens-env"
    assert record.is_file(), f"{record} is missing: run tools/ensure-venv"
    return Path(record.read_text().splitlines()[0])


def _imported_from(python: Path) -> str:
    result = subprocess.run([str(python), "-c", "import filterlens; print(filterlens.__file__)"], cwd="/",
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_second_clones_venv_imports_its_own_package_over_the_same_shared_environment(tmp_path):
    shared = _shared_environment()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    base = subprocess.run([str(shared / "bin" / "python"), "-c", "import sys; print(sys._base_executable)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    env = {**os.environ, "PYTHON": base, "FILTERLENS_VENV_CACHE": str(shared.parent)}
    subprocess.run([str(clone / "tools" / "ensure-venv")], check=True, env=env, capture_output=True)
    assert _imported_from(clone / ".venv" / "bin" / "python") == str(clone / "src" / "filterlens" / "__init__.py")
    assert _imported_from(REPO / ".venv" / "bin" / "python") == str(REPO / "src" / "filterlens" / "__init__.py")
    assert (clone / ".venv" / "filterlens-env").read_text().splitlines()[0] == str(shared)
    # The clone's commands run its own interpreter; the shared environment holds no filterlens.
    for script in ("filterlens", "snakemake", "pytest"):
        first = (clone / ".venv" / "bin" / script).read_text().splitlines()[0]
        assert first == f"#!{clone}/.venv/bin/python", (script, first)
    result = subprocess.run([str(clone / ".venv" / "bin" / "filterlens"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "export-bundle" in result.stdout
    result = subprocess.run([str(shared / "bin" / "python"), "-c", "import filterlens"], capture_output=True, cwd="/")
    assert result.returncode != 0


def test_results_prints_a_runs_headline_tables_and_names_a_folder_without_results(tmp_path, capsys):
    tables = tmp_path / "run" / "results" / "tables"
    tables.mkdir(parents=True)
    pd.DataFrame({"model_id": ["m_robust", "m_normal"], "architecture": ["timm", "timm"], "robust": [True, False],
                  "n_filters": [1200, 1300], "extra": [1, 2]}).to_csv(tables / "models.tsv", sep="\t", index=False)
    pd.DataFrame({"finding": ["robust filters are less sparse"], "dataset": ["cifar10"], "this_run": [0.25],
                  "shown": [True]}).to_csv(tables / "findings.tsv", sep="\t", index=False)
    assert main(["results", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "results/tables/models.tsv" in out and "m_robust" in out and "extra" not in out
    assert "robust filters are less sparse" in out and "KL divergence" not in out  # the run has no KL table
    assert main(["results", str(tmp_path)]) == 1
    assert f"{tmp_path} holds no results/ folder" in capsys.readouterr().err


def test_upgrade_stores_without_a_config_naming_the_sheet_says_what_to_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.zarr").mkdir()
    assert main(["upgrade-stores", "m.zarr"]) == 1
    assert "no config names the sheet" in capsys.readouterr().err
