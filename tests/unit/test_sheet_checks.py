"""A sheet is checked completely before any job: its text (whole-line comments only, ids
anchored at the very end and unique ignoring case, one cell per column) and every row built
on the meta device with its source consistent with it; a sheet that passed is not built again."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from filterlens.config.sheet import SheetError, read_sheet
from filterlens.models import sheet_checks
from filterlens.models.sheet_checks import check_sheet_builds, row_build_problems, sheet_build_problems

HEADER = "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc"
WRN = '{"depth": 10, "widen_factor": 1}'
NORMAL = f"a_normal\tcoloured_digits\twide_resnet\t{WRN}\tfalse\tminizoo\t\t\t\t"
ROBUST = f"a_robust\tcoloured_digits\twide_resnet\t{WRN}\ttrue\tminizoo\t\ta_normal\t\t"


def _sheet(tmp_path, *lines, name="sheet.tsv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _problems(tmp_path, *lines):
    with pytest.raises(SheetError) as raised:
        read_sheet(_sheet(tmp_path, *lines))
    return str(raised.value)


# --- the text of a sheet ---------------------------------------------------------------------

def test_whole_line_comments_are_skipped_and_lines_keep_their_numbers(tmp_path):
    sheet = read_sheet(_sheet(tmp_path, "# a comment", HEADER, "# another", NORMAL, "", ROBUST))
    assert sheet.model_id.tolist() == ["a_normal", "a_robust"]
    message = _problems(tmp_path, "# a comment", HEADER, "# another", NORMAL.replace("false", "maybe"))
    assert "line 4 (model_id 'a_normal'): robust: 'maybe' is not true, false or empty" in message, message


def test_a_hash_inside_a_cell_is_part_of_the_cell_not_a_comment(tmp_path):
    # read as a comment it would cut the row to 'a' with a valid rest; as a character it fails the id pattern
    message = _problems(tmp_path, HEADER, NORMAL.replace("a_normal", "a#normal"),
                        ROBUST.replace("a_normal", "a#normal"))
    assert "line 2 (model_id 'a#normal'): model_id: 'a#normal' does not match" in message, message
    assert "a cell holds '#': it starts a comment only at the start of a line" in message, message
    noted = '{"depth": 10, "widen_factor": 1, "note": "run #2"}'
    kept = read_sheet(_sheet(tmp_path, HEADER, NORMAL, ROBUST.replace(WRN, noted)))
    assert kept.loc["a_robust", "arch_kwargs"] == {"depth": 10, "widen_factor": 1, "note": "run #2"}


def test_a_trailing_comment_after_a_row_is_reported_not_cut_off(tmp_path):
    message = _problems(tmp_path, HEADER, NORMAL + "\t# trained twice", ROBUST)
    assert "line 2: 11 cells, but the header has 10 columns" in message, message


def test_an_id_with_a_trailing_newline_does_not_pass_the_pattern(tmp_path):
    quoted = NORMAL.replace("a_normal", '"a_normal\n"', 1)
    message = _problems(tmp_path, HEADER, quoted, ROBUST)
    assert "model_id: 'a_normal\\n' does not match" in message, message


def test_ids_that_differ_only_in_case_are_refused(tmp_path):
    message = _problems(tmp_path, HEADER, NORMAL, ROBUST, NORMAL.replace("a_normal", "A_Normal"))
    assert "model_ids 'a_normal' (line 2), 'A_Normal' (line 4) differ only in case" in message, message


def test_an_overlong_id_and_a_source_key_with_spaces_are_refused(tmp_path):
    long_id = "m" * 201
    message = _problems(tmp_path, HEADER, NORMAL.replace("a_normal", long_id),
                        ROBUST.replace("\t\ta_normal", "\tkey with space\ta_normal"))
    assert "is too long" in message and "source_key: 'key with space' does not match" in message, message


# --- every row becomes a model ----------------------------------------------------------------

def _row(**overrides):
    row = {"model_id": "m", "dataset": "coloured_digits", "architecture": "wide_resnet",
           "arch_kwargs": {"depth": 10, "widen_factor": 1}, "robust": False, "source": "minizoo", "source_key": ""}
    row.update(overrides)
    return row


RB_KWARGS = {"dataset": "cifar10", "key": "Addepalli2021Towards_RN18", "threat_model": "Linf"}
BAD_ROWS = {
    "an unknown argument": (_row(arch_kwargs={"depth": 10, "widen": 1}),
                            "arch_kwargs 'widen' not argument(s) of wide_resnet; allowed: depth, widen_factor"),
    "a depth that is not 6n+4": (_row(arch_kwargs={"depth": 12}), "a WideResNet's depth is 6n+4"),
    "a depth of the wrong type": (_row(arch_kwargs={"depth": "28"}), "arch_kwargs depth is '28'; must be an integer"),
    "a width far too large": (_row(arch_kwargs={"depth": 10, "widen_factor": 6400}),
                              "widen_factor is 6400; must be an integer in [1, 64]"),
    "an unknown activation": (_row(architecture="dm_wide_resnet", arch_kwargs={"depth": 10, "activation": "gelu"}),
                              "arch_kwargs activation is 'gelu'; allowed: 'relu', 'swish'"),
    "three block counts": (_row(architecture="preact_resnet", arch_kwargs={"num_blocks": [1, 1, 1]}),
                           "num_blocks is [1, 1, 1]; must be 4 integers"),
    "an unknown timm name": (_row(dataset="imagenet", architecture="timm", arch_kwargs={"name": "resnet_99"},
                                  source="timm"), "timm has no model 'resnet_99'"),
    "a timm tag of another model": (_row(dataset="imagenet", architecture="timm", arch_kwargs={"name": "resnet18"},
                                         source="timm", source_key="resnet50.a1_in1k"),
                                    "source_key 'resnet50.a1_in1k' is not a pretrained tag of arch_kwargs name"),
    "an unknown timm tag": (_row(dataset="imagenet", architecture="timm", arch_kwargs={"name": "resnet18"},
                                 source="timm", source_key="resnet18.no_such_tag"),
                            "timm has no pretrained weights 'resnet18.no_such_tag'"),
    "a robustbench row with another architecture": (
        _row(dataset="cifar10", source="robustbench", source_key="Addepalli2021Towards_RN18"),
        "source robustbench needs architecture robustbench"),
    "an unknown robustbench key": (_row(dataset="cifar10", architecture="robustbench",
                                        arch_kwargs={**RB_KWARGS, "key": "Addepalli2021Towards_RN99"},
                                        source="robustbench", source_key="Addepalli2021Towards_RN99"),
                                   "RobustBench has no cifar10/Linf model 'Addepalli2021Towards_RN99' (similar: "
                                   "Addepalli2021Towards_RN18"),
    "a robustbench key of another dataset": (_row(dataset="cifar100", architecture="robustbench",
                                                  arch_kwargs={**RB_KWARGS, "dataset": "cifar100"},
                                                  source="random"),
                                             "RobustBench has no cifar100/Linf model 'Addepalli2021Towards_RN18'"),
    "a robustbench dataset unlike the row's": (_row(dataset="cifar100", architecture="robustbench",
                                                    arch_kwargs=RB_KWARGS, source="train_cifar"),
                                               "arch_kwargs dataset 'cifar10' differs from the row's dataset "
                                               "'cifar100'"),
    "a source_key unlike the key": (_row(dataset="cifar10", architecture="robustbench", arch_kwargs=RB_KWARGS,
                                         source="robustbench", source_key="Addepalli2021Towards_WRN34"),
                                    "source_key 'Addepalli2021Towards_WRN34' differs from arch_kwargs key"),
    "an unknown threat model": (_row(dataset="cifar10", architecture="robustbench",
                                     arch_kwargs={**RB_KWARGS, "threat_model": "Linfinity"}, source="random"),
                                "threat_model 'Linfinity' is not RobustBench's; allowed: Linf"),
}


@pytest.mark.parametrize("fault", BAD_ROWS)
def test_a_row_that_cannot_become_its_model_is_named_with_the_reason(fault):
    row, fragment = BAD_ROWS[fault]
    problems = row_build_problems(row)
    assert problems and any(fragment in p for p in problems), problems


@pytest.mark.parametrize("row", [
    _row(),
    _row(architecture="dm_wide_resnet", arch_kwargs={"depth": 10, "width": 1, "activation": "swish"}),
    _row(architecture="preact_resnet", arch_kwargs={"num_blocks": [1, 1, 1, 1], "width": 8}),
    _row(dataset="imagenet", architecture="timm", arch_kwargs={"name": "resnet18"}, source="timm",
         source_key="resnet18.tv_in1k"),
    _row(dataset="cifar10", architecture="robustbench", arch_kwargs=RB_KWARGS, source="robustbench",
         source_key="Addepalli2021Towards_RN18"),
], ids=["wide_resnet", "dm_wide_resnet", "preact_resnet", "timm", "robustbench"])
def test_a_good_row_of_every_architecture_builds(row):
    assert row_build_problems(row) == []


def test_a_constructor_that_fails_otherwise_is_reported_with_its_error(monkeypatch):
    from filterlens.models import architectures

    def broken(num_classes, depth=10):
        raise AssertionError("depth out of range")

    monkeypatch.setitem(architectures.ARCHITECTURES, "wide_resnet", broken)
    problems = row_build_problems(_row(arch_kwargs={"depth": 10}))
    assert problems == ['wide_resnet with arch_kwargs {"depth": 10} cannot be built: AssertionError: depth out of '
                        'range'], problems


def test_every_problem_names_the_sheet_and_model_and_equal_rows_are_built_once(tmp_path, monkeypatch):
    path = _sheet(tmp_path, HEADER, NORMAL.replace(WRN, '{"depth": 12}'), ROBUST.replace(WRN, '{"depth": 12}'))
    sheet = read_sheet(path)  # the text is fine; the depth is not
    calls = []
    real = sheet_checks.row_build_problems
    monkeypatch.setattr(sheet_checks, "row_build_problems", lambda row: calls.append(row) or real(row))
    problems = sheet_build_problems(sheet, path)
    assert len(calls) == 1 and len(problems) == 2
    assert problems[0].startswith(f"{path} (model_id 'a_normal'): arch_kwargs depth is 12"), problems
    assert problems[1].startswith(f"{path} (model_id 'a_robust'): arch_kwargs depth is 12"), problems


def test_a_sheet_that_passed_is_not_built_again_until_it_changes(tmp_path, monkeypatch):
    path = _sheet(tmp_path, HEADER, NORMAL, ROBUST)
    cache = tmp_path / "cache"
    assert check_sheet_builds(read_sheet(path), path, cache) == []
    (marker,) = cache.glob("*.json")
    assert json.loads(marker.read_text()) == {"sheet": str(path), "models": 2}

    def no_build(row):
        raise AssertionError("built again")

    monkeypatch.setattr(sheet_checks, "row_build_problems", no_build)
    assert check_sheet_builds(read_sheet(path), path, cache) == []  # remembered
    path.write_text(path.read_text().replace(WRN, '{"depth": 16, "widen_factor": 1}'))
    with pytest.raises(AssertionError, match="built again"):  # a changed sheet is checked again
        check_sheet_builds(read_sheet(path), path, cache)


def test_a_failing_sheet_is_not_remembered(tmp_path):
    path = _sheet(tmp_path, HEADER, NORMAL.replace(WRN, '{"depth": 12}'), ROBUST)
    cache = tmp_path / "cache"
    assert check_sheet_builds(read_sheet(path), path, cache)
    assert check_sheet_builds(read_sheet(path), path, cache), "checked again, still failing"
    assert not list(cache.glob("*.json"))


@pytest.mark.parametrize("sheet", ["paper.tsv", "minizoo.tsv", "micro.tsv"])
def test_the_shipped_sheets_build(sheet):
    path = REPO / "config" / "models" / sheet
    assert sheet_build_problems(read_sheet(path), path) == []
