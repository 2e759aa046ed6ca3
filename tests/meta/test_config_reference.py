"""config/README.md documents every config key and sheet column as the schemas define them."""

import shutil
import subprocess
import sys

import yaml
from conftest import REPO

from filterlens.config.validation import CONFIG_SCHEMA, MODELS_SCHEMA

TOOL = REPO / "tools" / "config_reference.py"


def _keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, sub in schema.get("properties", {}).items():
        keys.append(prefix + name)
        keys += _keys(sub, f"{prefix}{name}.")
    return keys


def test_config_readme_is_generated_from_the_current_schemas():
    result = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_config_readme_has_a_row_for_every_key_and_column():
    text = (REPO / "config" / "README.md").read_text()
    config = yaml.safe_load((CONFIG_SCHEMA).read_text())
    models = yaml.safe_load((MODELS_SCHEMA).read_text())
    rows = {line.split("|")[1].strip().strip("*`") for line in text.splitlines() if line.startswith("| ")}
    missing = [key for key in _keys(config) + _keys(models) if key not in rows]
    assert not missing, f"config/README.md lacks {missing}"
    assert len(_keys(config)) > 50 and "model_id" in rows


def test_the_check_names_the_fix_when_the_reference_is_stale(tmp_path):
    # A copy of the tool beside a stale README: its --check must fail and say how to fix it.
    (tmp_path / "tools").mkdir()
    (tmp_path / "config").mkdir()
    subprocess.run(["cp", "-r", str(REPO / "config" / "models"), str(tmp_path / "config" / "models")], check=True)
    (tmp_path / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    (tmp_path / "src").symlink_to(REPO / "src")
    (tmp_path / "tools" / "config_reference.py").write_text(TOOL.read_text())
    (tmp_path / "config" / "README.md").write_text("# stale\n")
    result = subprocess.run([sys.executable, str(tmp_path / "tools" / "config_reference.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "out of date" in result.stderr and "tools/config_reference.py" in result.stderr


def test_the_check_fails_on_a_key_without_a_description(tmp_path):
    # A copy of the tool and the schemas in which one key has lost its description: the
    # reference written from them is current, but --check fails and names the key.
    for folder in ("tools", "config", "src"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    schema_path = tmp_path / "src" / "filterlens" / "config" / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    del schema["properties"]["analysis"]["properties"]["bins"]["description"]
    schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
    tool = str(tmp_path / "tools" / "config_reference.py")
    written = subprocess.run([sys.executable, tool], capture_output=True, text=True)
    assert written.returncode == 0 and "analysis.bins" in written.stderr, written.stderr
    result = subprocess.run([sys.executable, tool, "--check"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "config.schema.yaml without a description: analysis.bins" in result.stderr, result.stderr
