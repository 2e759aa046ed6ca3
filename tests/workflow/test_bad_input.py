"""Bad sheets and configs stop the run before any job, naming the row or key and what is allowed."""


import yaml
from conftest import REPO, run_snakemake

HEADER = "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc"
NORMAL = 'a_normal\tcoloured_digits\twide_resnet\t{"depth": 10, "widen_factor": 1}\tfalse\tminizoo\t\t\t\t'
ROBUST = 'a_robust\tcoloured_digits\twide_resnet\t{"depth": 10, "widen_factor": 1}\ttrue\tminizoo\t\ta_normal\t\t'


def _plan(tmp_path, rows, **config_overrides):
    (tmp_path / "sheet.tsv").write_text("\n".join([HEADER, *rows]) + "\n")
    config = yaml.safe_load((REPO / "config" / "micro.yaml").read_text())
    config["sheet"] = str(tmp_path / "sheet.tsv")
    for dotted, value in config_overrides.items():
        *parents, key = dotted.split("__")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", check=False)


def _fails_with(result, *fragments):
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    assert "Job stats" not in output  # stopped before planning any job


def test_a_valid_sheet_plans(tmp_path):
    result = _plan(tmp_path, [NORMAL, ROBUST])
    assert result.returncode == 0, result.stderr


def test_unknown_architecture(tmp_path):
    _fails_with(_plan(tmp_path, [NORMAL.replace("wide_resnet", "vgg99"), ROBUST]),
                "line 2 (model_id 'a_normal')", "unknown architecture 'vgg99'", "allowed: wide_resnet")


def test_duplicate_id(tmp_path):
    _fails_with(_plan(tmp_path, [NORMAL, ROBUST, NORMAL]), "model_id 'a_normal' appears more than once")


def test_robust_model_without_counterpart(tmp_path):
    _fails_with(_plan(tmp_path, [NORMAL, ROBUST.replace("a_normal", "")]),
                "robust model 'a_robust' has no counterpart", "set 'counterpart'")


def test_a_model_of_unknown_robustness_has_no_counterpart_and_is_not_trained_here(tmp_path):
    unknown = NORMAL.replace("\tfalse\t", "\t\t").replace("a_normal", "a_candidate")
    _fails_with(_plan(tmp_path, [NORMAL, unknown.replace("\t\t\t\t", "\t\ta_normal\t\t")]),
                "model 'a_candidate' of unknown robustness (robust empty) has a counterpart",
                "model 'a_candidate' has source minizoo but robust empty", "set robust to true or false")


def test_counterpart_that_does_not_exist(tmp_path):
    _fails_with(_plan(tmp_path, [NORMAL, ROBUST.replace("\ta_normal", "\tb_normal")]),
                "counterpart 'b_normal' of 'a_robust' is not in the sheet")


def test_wrong_types_and_values_in_a_row(tmp_path):
    bad = NORMAL.replace("\tfalse\t", "\tmaybe\t").replace("coloured_digits", "mnist")
    _fails_with(_plan(tmp_path, [bad]), "dataset: 'mnist' is not one of", "robust: 'maybe' is not true, false or empty")


def test_config_value_out_of_range(tmp_path):
    _fails_with(_plan(tmp_path, [NORMAL, ROBUST], training__epochs=0),
                "config key training.epochs: 0 is less than the minimum of 1", "allowed: type integer; >= 1")


def test_unknown_config_key(tmp_path):
    _fails_with(_plan(tmp_path, [NORMAL, ROBUST], training__epoch=3),
                "config key training: Additional properties are not allowed ('epoch' was unexpected)")


def test_missing_sheet(tmp_path):
    result = run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "micro.yaml"),
                           "--config", f"sheet={tmp_path / 'nope.tsv'}", "--cores", "1", check=False)
    _fails_with(result, "nope.tsv does not exist")


def test_a_row_that_cannot_be_built_stops_the_plan(tmp_path):
    bad = ROBUST.replace('"widen_factor": 1', '"widen_factor": 1, "dropout": 0.3')
    _fails_with(_plan(tmp_path, [NORMAL, bad]), "(model_id 'a_robust'): arch_kwargs 'dropout' not argument(s) of "
                "wide_resnet; allowed: depth, widen_factor")


def test_ids_differing_only_in_case_stop_the_plan(tmp_path):
    _fails_with(_plan(tmp_path, [NORMAL, ROBUST, NORMAL.replace("a_normal", "A_normal")]),
                "'a_normal' (line 2), 'A_normal' (line 4) differ only in case")


def test_a_seed_beyond_what_the_generators_take_stops_the_plan(tmp_path):
    _fails_with(_plan(tmp_path, [NORMAL, ROBUST], training__seed=2**70),
                "config key training.seed: 1180591620717411303424 is greater than the maximum of 4294967295")


def test_a_yaml_alias_bomb_in_a_config_value_stops_at_once(tmp_path):
    # About 600 bytes under a known key that stand for 9^9 strings once expanded ("billion laughs")
    levels = ["&a0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text(f"figures:\n  pair: [{', '.join(levels)}]\n")
    (tmp_path / "sheet.tsv").write_text("\n".join([HEADER, NORMAL, ROBUST]) + "\n")
    result = run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "micro.yaml"),
                           str(tmp_path / "bomb.yaml"), "--config", f"sheet={tmp_path / 'sheet.tsv'}", "--cores", "1",
                           check=False)
    _fails_with(result, "config key figures.pair.", "(a YAML alias, *name)", "Fix: write the value out in full")


def test_a_sheet_is_read_in_its_declared_encoding_and_named_by_line_otherwise(tmp_path):
    import pytest

    from filterlens.config.sheet import SheetError, read_sheet

    text = "\n".join([HEADER, NORMAL, ROBUST]) + "\n"
    (tmp_path / "utf16.tsv").write_text(text, encoding="utf-16")  # a spreadsheet's "Unicode text"
    assert list(read_sheet(tmp_path / "utf16.tsv").model_id) == ["a_normal", "a_robust"]
    (tmp_path / "latin1.tsv").write_bytes((text + "# Gr\u00f6\u00dfe\n").encode("latin-1"))
    with pytest.raises(SheetError, match=r"latin1.tsv, line 4: byte 0xf6 is not UTF-8 text .*Fix: save the sheet as "
                                         r"UTF-8 text"):
        read_sheet(tmp_path / "latin1.tsv")
    for path in (tmp_path, "/dev/zero"):
        with pytest.raises(SheetError, match=r"is (a folder|a device or socket), not a regular file\. Fix: set 'sheet'"):
            read_sheet(path)
