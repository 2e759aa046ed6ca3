"""Every figure and table of the paper, the report, single-figure reruns, bad figure settings.

Workflow tests use the finished micro run (tests/conftest.py: two tiny models, one epoch);
the rest are known-answer tests of the data shaping in filterlens.report.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake
from PIL import Image

from filterlens.config.sheet import pairs, read_sheet
from filterlens.method.distributions import distribution, histogram_edges
from filterlens.method.sampling import sample_indices
from filterlens.report.figure_data import (FigureConfigError, activation_test_images, coefficient_distributions,
                                           quality_over_pairings, resolve_pair, robust_models)
from filterlens.report.formatting import to_latex, write_table_files
from filterlens.report.paper_tables import paper_comparison, zoo_comparability, zoo_summary
from filterlens.report.style import apply_style, dataset_order, save_figure, symmetric_norm, tile_mosaic

MICRO = REPO / "config" / "micro.yaml"
FIGURES = ["fig1_kl_by_depth", "fig2_pca_basis", "fig3_coefficient_distributions", "fig4_first_layer_filters",
           "fig5_last_layer_filters", "fig6_activations", "fig7_layer_quality"]
TABLES = ["table1_zoo_summary", "table_pairs", "paper_comparison", "findings"]
AUTHORS = REPO / "config" / "reference" / "authors_values.tsv"


def _tsv(path):
    return pd.read_csv(path, sep="\t")


def _planned_rules(result) -> list[str]:
    """The rules of the jobs a dry run plans, from Snakemake's own output."""
    return sorted(re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, flags=re.M))


def _extra_config(tmp_path, figures: dict):
    path = tmp_path / "figures.yaml"
    path.write_text(yaml.safe_dump({"figures": figures}))
    return path


# --- the micro run: every figure and table --------------------------------------------------

@pytest.mark.workflow
@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_is_a_valid_pdf_and_png(micro_run, name):
    pdf = micro_run / "results" / "figures" / f"{name}.pdf"
    png = micro_run / "results" / "figures" / f"{name}.png"
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        width, height = image.size
        assert width >= 400 and height >= 200
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 5  # not a blank canvas
    assert (micro_run / "logs" / "figures" / f"{name}.log").exists()


@pytest.mark.workflow
def test_figures_are_reproducible_byte_for_byte(micro_run):
    # no dates in the PDFs: rebuilding a figure gives the same file
    pdf = micro_run / "results" / "figures" / "fig1_kl_by_depth.pdf"
    before = pdf.read_bytes()
    run_snakemake(micro_run, str(pdf.relative_to(micro_run)), "--configfile", str(MICRO), "--cores", "1",
                  "--forcerun", "fig1_kl_by_depth")
    assert pdf.read_bytes() == before


def test_strip_plots_jitter_their_points_the_same_way_on_every_run(tmp_path):
    # Fig. 7 and 9 draw each model's point jittered by seaborn (numpy's global random state); with
    # several points per box, two renderings in one process are the same bytes only if the style
    # seeds that state.
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = pd.DataFrame({"group": ["a"] * 6 + ["b"] * 6, "value": np.arange(12.0),
                         "training": ["robust", "normal"] * 6})
    rendered = []
    for i in range(2):
        apply_style()
        fig, ax = plt.subplots()
        sns.stripplot(data=data, x="group", y="value", hue="training", dodge=True, jitter=0.15, ax=ax)
        save_figure(fig, [tmp_path / f"{i}.png"])
        rendered.append((tmp_path / f"{i}.png").read_bytes())
    assert rendered[0] == rendered[1]


@pytest.mark.workflow
def test_coefficient_distributions_pool_each_model_once(micro_run):
    table = _tsv(micro_run / "results" / "analysis" / "coefficient_distributions.tsv")
    assert table.columns.tolist() == ["dataset", "training", "component", "bin", "bin_left", "bin_right", "count",
                                      "probability", "distribution"]
    assert len(table) == 1 * 2 * 9 * 70
    assert set(table.training) == {"robust", "normal"}
    for column in ("probability", "distribution"):
        np.testing.assert_allclose(table.groupby(["dataset", "training", "component"])[column].sum(), 1.0)
    for training, model in (("robust", "micro_robust"), ("normal", "micro_normal")):
        with np.load(micro_run / "results" / "summaries" / model / "histograms.npz") as data:
            expected = data["counts"].sum(axis=0)
            low, high = float(data["low"]), float(data["high"])
        part = table[table.training == training].sort_values(["component", "bin"])
        np.testing.assert_array_equal(part["count"].to_numpy().reshape(9, 70), expected)
        assert part.bin_left.min() == pytest.approx(low) and part.bin_right.max() == pytest.approx(high)
        # what the figure draws is what the KL compares: densities, empty bins at eps, normalised
        np.testing.assert_allclose(part.distribution.to_numpy().reshape(9, 70),
                                   distribution(expected, histogram_edges(low, high, 70)), rtol=1e-12)


@pytest.mark.workflow
def test_table1_summarises_the_zoo_per_dataset(micro_run):
    tables = micro_run / "results" / "tables"
    table = _tsv(tables / "table1_zoo_summary.tsv")
    models = _tsv(tables / "models.tsv").set_index("model_id")
    assert table.dataset.tolist() == ["coloured_digits"]
    row = table.iloc[0]
    assert (row.n_robust, row.n_normal) == (1, 1)
    assert row.filters_m_mean == pytest.approx(models.loc["micro_robust", "n_filters"] / 1e6)
    assert row.normal_clean_acc_mean == pytest.approx(models.loc["micro_normal", "clean_acc"])
    assert row.robust_clean_acc_mean == pytest.approx(models.loc["micro_robust", "clean_acc"])
    assert row.robust_robust_acc_mean == pytest.approx(models.loc["micro_robust", "robust_acc"])
    assert np.isnan(row.filters_m_std)  # one robust model: no spread


@pytest.mark.workflow
def test_pairs_table_lists_every_pair(micro_run):
    table = _tsv(micro_run / "results" / "tables" / "table_pairs.tsv")
    assert table[["robust_model", "normal_model", "dataset"]].values.tolist() == [
        ["micro_robust", "micro_normal", "coloured_digits"]]
    assert table.n_filters.tolist() == [8240] and table.accuracy_source.tolist() == ["measured"]


@pytest.mark.workflow
def test_paper_comparison_sets_this_run_beside_every_authors_number(micro_run):
    table = _tsv(micro_run / "results" / "tables" / "paper_comparison.tsv")
    authors = pd.read_csv(AUTHORS, sep="\t", comment="#")
    head = table.iloc[:len(authors)]
    assert head[["metric", "dataset"]].values.tolist() == authors[["metric", "dataset"]].values.tolist()
    np.testing.assert_allclose(head.authors_value, authors.value)
    # the micro zoo has no CIFAR or ImageNet model: n/a there, its own numbers for "all"
    assert head[head.dataset != "all"].this_run.isna().all()
    shares = _tsv(micro_run / "results" / "analysis" / "sparse_shares.tsv").set_index("training")
    robust_share = head[head.metric == "sparse_share_robust"].this_run.item()
    assert robust_share == pytest.approx(100 * shares.loc["robust", "pooled_share"])
    bases = _tsv(micro_run / "results" / "analysis" / "bases.tsv")
    first = bases[(bases.set == "normal") & (bases.component == 1)].ratio.item()
    assert head[head.metric == "normal_first_component_ratio"].this_run.item() == pytest.approx(100 * first)
    # the mini zoo's "all" values are not the paper's zoo: no difference, "different zoo"
    shown = head[head.this_run.notna()]
    assert len(shown) and shown.difference.isna().all() and shown.comparison.str.startswith("different zoo").all()
    # then this run's own dataset, which the paper did not have
    extra = table.iloc[len(authors):]
    kl = _tsv(micro_run / "results" / "analysis" / "kl_by_dataset.tsv").set_index("pooling")
    assert set(extra.dataset) == {"coloured_digits"} and extra.authors_value.isna().all()
    assert extra[extra.metric == "kl_unique"].this_run.item() == pytest.approx(kl.loc["unique", "kl"])
    assert extra[extra.metric == "kl_paired"].this_run.item() == pytest.approx(kl.loc["paired", "kl"])


@pytest.mark.workflow
@pytest.mark.parametrize("name", TABLES)
def test_tables_are_written_as_tsv_latex_and_html(micro_run, name):
    tables = micro_run / "results" / "tables"
    assert len(_tsv(tables / f"{name}.tsv")) >= 1
    tex = (tables / f"{name}.tex").read_text()
    assert r"\begin{tabular}" in tex and r"\bottomrule" in tex and "nan" not in tex.lower().replace("\\", " ")
    html = (tables / f"{name}.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table" in html


@pytest.mark.workflow
def test_the_report_holds_every_figure_and_table_with_captions(micro_run):
    report = micro_run / "results" / "report.html"
    run_snakemake(micro_run, "--configfile", str(MICRO), "--report", str(report))
    html = report.read_text()
    for name in FIGURES:
        assert f"{name}.png" in html
    for name in TABLES:
        assert f"{name}.html" in html
    for caption in ("Fig. 1: weighted symmetric KL", "Fig. 7: layer quality by depth group", "Table 1: the zoo"):
        assert caption in html
    # the captions name the config that made them (jinja over snakemake.config / params)
    assert "config/models/micro.tsv" in html and "micro_robust" in html
    assert "{{ snakemake" not in html  # every jinja expression of the captions was rendered


# --- single-figure reruns --------------------------------------------------------------------

@pytest.mark.workflow
@pytest.mark.parametrize("figures, expected", [
    ({"last_layer": {"seed": 1}}, ["all", "fig5_last_layer_filters", "provenance"]),
    ({"last_layer": {"n_filters": 16}}, ["all", "fig5_last_layer_filters", "provenance"]),
    # the entropy is also a choice of the sensitivity analysis, whose default column it changes
    ({"entropy": "scaled"}, ["all", "fig7_layer_quality", "fig_sensitivity", "findings", "provenance",
                             "sensitivity_analysis", "table_sensitivity"]),
    ({"activations": {"image_index": 3}}, ["all", "fig6_activations", "fig6_activations_data", "provenance"]),
    ({"activations": {"eps": 0.05}}, ["all", "fig6_activations", "fig6_activations_data", "provenance"]),
])
def test_changing_one_figure_setting_plans_that_figure_alone(micro_run, tmp_path, figures, expected):
    # provenance records the config as resolved: it reruns (alone, in a second) on any change
    extra = _extra_config(tmp_path, figures)
    result = run_snakemake(micro_run, "-n", "--configfile", str(MICRO), str(extra), "--cores", "1")
    assert _planned_rules(result) == expected, result.stdout


@pytest.mark.workflow
def test_one_figure_target_builds_that_figure_and_nothing_upstream(micro_run):
    target = "results/figures/fig1_kl_by_depth.pdf"
    result = run_snakemake(micro_run, target, "-n", "--configfile", str(MICRO), "--cores", "1", "--forcerun",
                           "fig1_kl_by_depth")
    assert _planned_rules(result) == ["fig1_kl_by_depth"], result.stdout


@pytest.mark.workflow
def test_one_figure_rebuilds_in_seconds(micro_run):
    figure = micro_run / "results" / "figures" / "fig7_layer_quality.pdf"
    figure.unlink()
    start = time.monotonic()
    result = run_snakemake(micro_run, "--configfile", str(MICRO), "--cores", "1",
                           str(figure.relative_to(micro_run)))
    elapsed = time.monotonic() - start
    assert figure.exists() and _count_finished(result) == 1
    assert elapsed < 60, f"{elapsed:.1f} s"  # generous against a loaded machine


def _count_finished(result) -> int:
    return len(re.findall(r"Finished jobid: \d+ \(Rule: (?!all\))", result.stdout + result.stderr))


# --- bad figure settings stop the run before any job ------------------------------------------

@pytest.mark.workflow
@pytest.mark.parametrize("pair, fragment", [("no_such_model", "is not a model of the zoo"),
                                            ("micro_normal", "is a normal model")])
def test_a_bad_pair_fails_before_any_job(tmp_path, pair, fragment):
    extra = _extra_config(tmp_path, {"pair": pair})
    result = run_snakemake(tmp_path, "-n", "--configfile", str(MICRO), str(extra), "--cores", "1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for expected in ("figures.pair", repr(pair), fragment, "micro_robust"):
        assert expected in output, output
    assert "Job stats" not in output and not (tmp_path / "results").exists()


# --- known answers of the data shaping -------------------------------------------------------

def _paper_zoo():
    models = pd.read_csv(REPO / "config" / "reference" / "paper_models.csv").drop_duplicates("Name")
    pairings = pd.read_csv(REPO / "config" / "reference" / "paper_pairings.csv")
    table = pd.DataFrame({"model_id": models.Name, "clean_acc": models["Clean Accuracy"],
                          "robust_acc": models["Robust Accuracy"], "n_filters": 1})
    return table, pd.DataFrame({"robust": pairings.Robust, "normal": pairings.Normal, "dataset": pairings.Dataset})


def test_table1_means_of_the_paper_zoo_equal_the_papers_table_1():
    models, zoo_pairs = _paper_zoo()
    table = zoo_summary(models, zoo_pairs, ["cifar10", "cifar100", "imagenet"]).set_index("dataset")
    authors = pd.read_csv(AUTHORS, sep="\t", comment="#").set_index(["metric", "dataset"]).value
    assert table.n_robust.tolist() == [49, 17, 5]
    for dataset in ("cifar10", "cifar100", "imagenet"):
        for metric in ("normal_clean_acc_mean", "robust_clean_acc_mean", "robust_robust_acc_mean"):
            assert table.loc[dataset, metric] == pytest.approx(authors[(metric, dataset)], abs=0.005)


def test_authors_values_name_their_source():
    authors = pd.read_csv(AUTHORS, sep="\t", comment="#")
    assert authors.columns.tolist() == ["metric", "dataset", "description", "unit", "value", "source"]
    assert authors.source.str.contains("Gavrikov & Keuper 2022").all()
    values = authors.set_index(["metric", "dataset"]).value
    assert values[("kl_unique", "cifar10")] == 0.553 and values[("kl_paired", "imagenet")] == 0.018
    assert values[("sparse_share_normal", "all")] == 39.48
    assert values.loc["filters_total_robust"].sum() == 615_863_744


def test_coefficient_distributions_count_a_shared_counterpart_once():
    zoo_pairs = pd.DataFrame({"robust": ["r1", "r2"], "normal": ["n", "n"], "dataset": ["d", "d"]})
    ones = np.ones((2, 9, 4), dtype=np.int64)  # 2 layers, 9 components, 4 bins
    table = coefficient_distributions(zoo_pairs, {"r1": ones, "r2": 2 * ones, "n": ones}, -1.0, 1.0)
    robust = table[(table.training == "robust") & (table.component == 1)]
    normal = table[(table.training == "normal") & (table.component == 1)]
    assert robust["count"].tolist() == [6, 6, 6, 6] and normal["count"].tolist() == [2, 2, 2, 2]
    assert robust.bin_left.tolist() == [-1.0, -0.5, 0.0, 0.5] and normal.probability.tolist() == [0.25] * 4


def test_fig7_boxes_count_a_shared_counterpart_once_per_pairing():
    zoo_pairs = pd.DataFrame({"robust": ["r1", "r2", "r3"], "normal": ["n", "n", "m"], "dataset": ["d"] * 3})
    models = ["r1", "r2", "r3", "n", "m", "unpaired"]
    quality = pd.DataFrame({"model_id": np.repeat(models, 2), "dataset": "d", "robust": False,
                            "depth_group": ["all", "first"] * len(models), "sparsity": np.arange(12) / 10})
    table = quality_over_pairings(quality, zoo_pairs)
    first = table[table.depth_group == "first"]
    normal = first[first.training == "normal"]
    assert normal.model_id.tolist() == ["n", "n", "m"] and normal.pair.tolist() == [0, 1, 2]
    assert normal.sparsity.tolist() == pytest.approx([0.7, 0.7, 0.9])
    assert first[first.training == "robust"].model_id.tolist() == ["r1", "r2", "r3"]
    assert "unpaired" not in set(table.model_id) and len(table) == 12
    assert table.robust.tolist() == (table.training == "robust").tolist()


def test_paper_comparison_is_nan_where_this_run_lacks_the_dataset():
    authors = pd.DataFrame({"metric": ["kl_unique", "kl_unique"], "dataset": ["cifar10", "imagenet"],
                            "description": ["KL", "KL"], "unit": ["nats", "nats"], "value": [0.553, 0.016],
                            "source": ["s", "s"]})
    ours = pd.DataFrame({"metric": ["kl_unique", "kl_unique"], "dataset": ["cifar10", "digits"], "value": [0.5, 0.1]})
    same = pd.DataFrame({"dataset": ["cifar10", "imagenet", "all"], "zoo": None, "definitions": None})
    table = paper_comparison(authors, ours, same)
    assert table.dataset.tolist() == ["cifar10", "imagenet", "digits"]
    assert table.this_run.tolist()[:2] == [0.5, pytest.approx(np.nan, nan_ok=True)]
    assert table.difference.iloc[0] == pytest.approx(-0.053)
    assert table.comparison.tolist() == ["same zoo and definitions", "not in this run", "not in the paper"]
    assert np.isnan(table.authors_value.iloc[2]) and table.source.iloc[2] == "not in the paper"
    # without knowing the zoo is the paper's, a value stands on its own
    alone = paper_comparison(authors, ours)
    assert np.isnan(alone.difference.iloc[0]) and alone.comparison.iloc[0] == "different zoo"


def test_only_the_papers_zoo_with_the_papers_definitions_gets_differences():
    paper = read_sheet(REPO / "config" / "models" / "paper.tsv")
    as_theirs = zoo_comparability(paper, paper, fold_batchnorm=True).set_index("dataset")
    assert as_theirs.index.tolist() == ["cifar10", "cifar100", "imagenet", "all"]
    assert as_theirs.zoo.isna().all() and as_theirs.definitions.isna().all()
    raw = zoo_comparability(paper, paper, fold_batchnorm=False).set_index("dataset")
    assert raw.zoo.isna().all() and raw.definitions.str.startswith("different definitions").all()
    from_db = zoo_comparability(paper, paper, fold_batchnorm=False, filterdb_models="all")
    assert from_db.definitions.isna().all()  # the authors' own filters
    # a documented choice away from its default moves the compared numbers, whatever the filters
    other = zoo_comparability(paper, paper, True, "all", ["analysis.sparse_reference: max_row_sum"])
    assert (other.definitions == "different definitions (analysis.sparse_reference: max_row_sum; the authors' "
                                 "numbers are under the defaults)").all()
    scale = zoo_comparability(read_sheet(REPO / "config" / "models" / "scale.tsv"), paper, True).set_index("dataset")
    assert (scale.zoo == "different zoo (the paper's ids with seeded random weights)").all()
    fewer = zoo_comparability(paper.drop(index=[paper.model_id[paper.robust == True].iloc[0]]),  # noqa: E712
                              paper, True).set_index("dataset")
    assert fewer.zoo["cifar10"] == "different zoo (48 robust models, the paper 49)" and fewer.zoo.isna().sum() == 2
    mini = zoo_comparability(read_sheet(REPO / "config" / "models" / "minizoo.tsv"), paper, True).set_index("dataset")
    assert (mini.zoo[["cifar10", "cifar100", "imagenet"]] == "no model of this dataset").all()
    assert mini.zoo["all"].startswith("different zoo")

    authors = pd.DataFrame({"metric": ["kl_unique", "filters_total_robust"], "dataset": ["cifar10", "cifar10"],
                            "description": ["KL", "filters"], "unit": ["nats", "filters"], "value": [0.553, 10.0],
                            "source": ["s", "s"]})
    ours = pd.DataFrame({"metric": ["kl_unique", "filters_total_robust"], "dataset": ["cifar10"] * 2,
                         "value": [0.5, 12.0]})
    table = paper_comparison(authors, ours, raw.reset_index())
    assert np.isnan(table.difference[0]) and table.comparison[0].startswith("different definitions")
    assert table.difference[1] == 2.0 and table.comparison[1] == "same zoo and definitions"  # counts: no extraction
    table = paper_comparison(authors, ours, mini.reset_index())
    assert table.difference.isna().all() and (table.comparison == "no model of this dataset").all()


def test_a_first_layer_without_filters_has_no_kl_in_the_comparison_with_the_authors():
    from filterlens.report.paper_tables import this_run_values

    kl_by_depth = pd.DataFrame({"dataset": ["imagenet", "cifar10"], "depth_group": "first", "kl": [np.nan, 0.4],
                                "n_robust_filters": [0, 10], "n_normal_filters": [0, 10]})
    empty = pd.DataFrame(columns=["dataset", "pooling", "kl", "training", "pooled_share", "set", "component", "ratio"])
    ours = this_run_values(empty, kl_by_depth, empty, pd.DataFrame(columns=["dataset"]), empty)
    authors = pd.DataFrame({"metric": "kl_first_layer", "dataset": ["imagenet", "cifar10", "cifar100"],
                            "description": "KL", "unit": "nats", "value": [0.0, 0.472, 0.626], "source": "s"})
    table = paper_comparison(authors, ours)
    assert table.comparison.tolist()[:3] == ["no filters", "different zoo", "not in this run"]
    assert np.isnan(table.this_run[0]) and table.this_run[1] == 0.4


def test_resolve_pair_names_key_value_and_allowed_ids():
    sheet = read_sheet(REPO / "config" / "models" / "minizoo.tsv")
    assert resolve_pair(sheet, "preact10-16_robust") == ("preact10-16_robust", "preact10-16_normal")
    assert resolve_pair(sheet, None) == ("wrn10-1_robust", "wrn10-1_normal")  # the first robust model
    with pytest.raises(FigureConfigError, match=r"figures\.pair: 'wrn34' is not a model.*wrn10-1_robust, "
                                                r"preact10-16_robust, dmwrn10-1-swish_robust"):
        resolve_pair(sheet, "wrn34")
    assert activation_test_images(sheet, "wrn10-1_robust", "absent") == "data/datasets/coloured_digits.npz"


def test_fig6_takes_the_cifar_test_file_when_it_is_there_and_says_why_not_otherwise(tmp_path):
    sheet = read_sheet(REPO / "config" / "models" / "paper.tsv")
    robust = "rb_cifar10_Addepalli2021Towards_WRN34"
    with pytest.raises(FigureConfigError, match=r"cifar10 test set is not at hand: .*cifar-10-batches-py/test_batch "
                                                r"is missing .*cifar_training\.data_dir"):
        activation_test_images(sheet, robust, str(tmp_path))
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"")
    assert activation_test_images(sheet, robust, str(tmp_path)) == str(tmp_path / "cifar-10-batches-py" / "test_batch")
    imagenet = next(m for m in robust_models(sheet) if sheet.loc[m, "dataset"] == "imagenet")
    with pytest.raises(FigureConfigError, match="no test images of 'imagenet'"):
        activation_test_images(sheet, imagenet, str(tmp_path))


def test_the_pair_defaults_resolve_to_the_documented_models():
    for config, expected in (("config.yaml", "wrn10-1_robust"), ("micro.yaml", "micro_robust")):
        settings = yaml.safe_load((REPO / "config" / config).read_text())
        sheet = read_sheet(REPO / settings["sheet"])
        assert resolve_pair(sheet, settings["figures"]["pair"])[0] == expected
        assert len(pairs(sheet)) >= 1


def test_sampled_filters_are_fixed_by_the_seed():
    a, b = sample_indices(1000, 64, seed=0), sample_indices(1000, 64, seed=0)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 64 and not np.array_equal(a, sample_indices(1000, 64, seed=1))
    assert len(sample_indices(10, 64, seed=0)) == 10


def test_style_helpers():
    assert dataset_order(["coloured_digits", "imagenet", "zzz", "cifar10"]) == ["cifar10", "imagenet",
                                                                                 "coloured_digits", "zzz"]
    norm = symmetric_norm(np.array([-0.2, 0.5]))
    assert (norm.vmin, norm.vmax) == (-0.5, 0.5)
    mosaic = tile_mosaic(np.arange(2 * 9).reshape(2, 3, 3), ncols=2)
    assert mosaic.shape == (3, 7) and np.isnan(mosaic[:, 3]).all() and mosaic[0, 4] == 9
    assert r"\_" in to_latex(pd.DataFrame({"a_b": ["x%"]}), "c", "l") and r"x\%" in to_latex(
        pd.DataFrame({"a": ["x%"]}), "c", "l")


def test_a_table_is_written_as_its_numbers_and_as_printed(tmp_path):
    from types import SimpleNamespace

    outputs = SimpleNamespace(**{ext: tmp_path / f"t.{ext}" for ext in ("tsv", "tex", "html")})
    table = pd.DataFrame({"model": ["a"], "acc": [0.123456789]})
    printed = pd.DataFrame({"Model": ["a"], "Acc.": ["0.12"]})
    write_table_files(outputs, table, printed, "Caption & more", "tab:t",
                      html_printed=printed.assign(Note=["only here"]), html_caption="Table 9. Caption")
    assert pd.read_csv(outputs.tsv, sep="\t").acc.item() == 0.123456789  # full precision
    tex = outputs.tex.read_text()
    assert r"\caption{Caption \& more}" in tex and r"\label{tab:t}" in tex and "0.12" in tex and "only here" not in tex
    html = outputs.html.read_text()
    assert "<p>Table 9. Caption</p>" in html and "only here" in html
    write_table_files(outputs, table, printed, "Caption", "tab:t")
    assert "<p>Caption</p>" in outputs.html.read_text() and "only here" not in outputs.html.read_text()
