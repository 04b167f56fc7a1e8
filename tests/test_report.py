"""The curation report: random baselines of the right size, seeded; z large for a planted perfect
selection, small for a random one; the verdict sentence exactly where the 3-std goal is missed."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from datasets import Dataset

from hf_vitcurate import stages
from hf_vitcurate.errors import ConfigError
from hf_vitcurate.report import GOAL_Z, curation_report, method_of, report_plot, report_table, why
from hf_vitcurate.select import random_subset
from hf_vitcurate.synthetic import LOW_QUALITY_SOURCE, degraded_shares, pool_and_truth


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return pool_and_truth(80, seed=2, easy=1.0, low_quality=0.5, benchmark_images=0,
                          cache_dir=str(tmp_path_factory.mktemp("rep")))


def _without(pool, truth, kinds):
    return pool.filter(lambda i: truth[i] not in kinds, input_columns="id")


@pytest.fixture(scope="module")
def report(world):
    pool, truth = world
    outputs = {
        "cleanup": _without(pool, truth, {"leak"}),  # planted: every leaking row gone
        "nbgs": random_subset(pool, fraction=0.5, seed=1234).dataset,  # a random one named for NBGS
        "mminstruct_style": random_subset(pool, fraction=0.3, seed=5).dataset,  # no pathology of its own
    }
    return curation_report(pool, outputs, truth=truth, seeds=5, seed=10)


def test_random_baseline_has_the_right_size_and_is_seeded(world, report):
    pool, truth = world
    entry = report["configs"]["nbgs"]
    assert entry["random"] == {"rows": entry["rows"], "seeds": [10, 11, 12, 13, 14], "unit": "rows"}
    draws = [degraded_shares(random_subset(pool, n=entry["rows"], seed=s).dataset, truth)["easy"] for s in range(10, 15)]
    assert entry["metrics"]["easy"]["random_mean"] == pytest.approx(np.mean(draws), abs=1e-4)
    assert entry["metrics"]["easy"]["random_std"] == pytest.approx(np.std(draws, ddof=1), abs=1e-4)
    again = curation_report(pool, {"nbgs": pool.select(range(entry["rows"]))}, truth=truth, seeds=5, seed=10)
    other = curation_report(pool, {"nbgs": pool.select(range(entry["rows"]))}, truth=truth, seeds=5, seed=11)
    assert again["configs"]["nbgs"]["metrics"]["easy"]["random_mean"] == entry["metrics"]["easy"]["random_mean"]
    assert other["configs"]["nbgs"]["metrics"]["easy"]["random_mean"] != entry["metrics"]["easy"]["random_mean"]


def test_planted_perfect_selection_gets_a_large_z_and_no_verdict(report):
    entry = report["configs"]["cleanup"]
    assert entry["method"] == "cleanup" and entry["targets"] == ["leak"]
    assert entry["metrics"]["leak"]["config"] == 0.0
    assert entry["metrics"]["leak"]["z"] > 10
    assert entry["goals"] == {"leak": True}
    assert entry["verdict"] is None


def test_random_selection_misses_and_says_why_in_one_sentence(report):
    entry = report["configs"]["nbgs"]
    assert abs(entry["metrics"]["easy"]["z"]) < GOAL_Z
    assert entry["goals"] == {"easy": False}
    verdict = entry["verdict"]
    assert verdict.startswith("nbgs does not beat random by 3 std on easy rows: ")
    assert verdict.count(". ") == 0 and verdict.endswith(".")  # one sentence
    assert f"{entry['metrics']['easy']['config']:.1%}" in verdict  # written from the numbers
    # A config with no pathology of its own gets no goal and no sentence.
    assert report["configs"]["mminstruct_style"]["goals"] == {}
    assert report["configs"]["mminstruct_style"]["verdict"] is None


def test_verdict_appears_exactly_when_the_goal_is_missed(report):
    for entry in report["configs"].values():
        missed = [t for t, ok in entry["goals"].items() if not ok]
        assert (entry["verdict"] is not None) == bool(missed)
        for t in missed:
            z = entry["metrics"][t]["z"]
            assert z is None or z < GOAL_Z


def test_by_kind_pool_yes_no_and_task_mix(world, report):
    pool, truth = world
    assert report["pool"]["degraded"]["easy"] == pytest.approx(degraded_shares(pool, truth)["easy"], abs=1e-4)
    labels = Counter(stages.yes_no(pool)["yes_no"])
    assert report["pool"]["yes_no"]["yes"] == labels["yes"] and report["pool"]["yes_no"]["no"] == labels["no"]
    mix = report["configs"]["cleanup"]["task_mix"]
    assert sum(mix.values()) == pytest.approx(1.0, abs=1e-3)
    assert f"source:{LOW_QUALITY_SOURCE}" not in report["configs"]["cleanup"]["metrics"]  # only where SQ asks
    json.dumps(report, allow_nan=False)  # goes to summary.json as it is


def test_sq_is_measured_on_hallucination_and_the_low_quality_source(world):
    pool, truth = world
    ok = pool.filter(lambda i, s: truth[i] != "hallucination" and s != LOW_QUALITY_SOURCE, input_columns=["id", "source"])
    entry = curation_report(pool, {"revo_lion": ok}, truth=truth)["configs"]["revo_lion"]
    assert entry["targets"] == ["hallucination", f"source:{LOW_QUALITY_SOURCE}"]
    assert entry["goals"] == {"hallucination": True, f"source:{LOW_QUALITY_SOURCE}": True}


def test_without_truth_rows_yes_no_and_task_mix_only(world, tmp_path):
    from datasets import DatasetDict

    pool, _ = world
    rep = curation_report(pool, {"svit_core": DatasetDict({"a": pool.select(range(20)), "b": pool.select(range(20, 50))})})
    assert rep["configs"]["svit_core"]["rows"] == 50  # splits together
    entry = rep["configs"]["svit_core"]
    assert set(entry) == {"rows", "yes_no", "task_mix", "method", "targets"}
    table = report_table(rep)
    assert table.splitlines()[0].split() == ["config", "rows", "yes:no", "tasks"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty legend on the yes:no-only plot
        report_plot(rep, str(tmp_path / "plot.png"))


def test_table_and_plot(report, tmp_path):
    table = report_table(report)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["config", "rows", "degraded"]
    assert [line.split()[0] for line in lines[1:5]] == ["pool", "cleanup", "nbgs", "mminstruct_style"]
    assert report["configs"]["nbgs"]["verdict"] in table
    path = report_plot(report, str(tmp_path / "plot.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_method_names_and_reasons():
    assert method_of("recommended")[1] == ("degraded",)
    assert method_of("near_duplicates")[1] == ("duplicate",)
    assert method_of("mllm_selector")[0] == "mllm_selector"
    assert method_of("mminstruct_style") == ("mminstruct_style", ())
    assert method_of("my_pick") == (None, ())
    m = {"config": 0.02, "pool": 0.02, "random_mean": 0.02, "random_std": 0.01, "z": 0.0}
    assert "too few for 3 std" in why("leak", m, 100, 1000)  # removing all would be only 2 std
    assert "all 100 rows" in why("leak", m, 100, 100)
    assert "the pool has none" in why("leak", {**m, "pool": 0.0, "random_mean": 0.0, "random_std": 0.0}, 10, 100)
    same = {"config": 0.076, "pool": 0.0764, "random_mean": 0.08, "random_std": 0.006, "z": 0.6}
    assert "same fraction of every source" in why("source:web_vqa", same, 500, 1000)
    assert "0.6 std better, short of 3" in why("hallucination", same, 500, 1000)
    with pytest.raises(ConfigError, match="seeds"):
        curation_report(Dataset.from_dict({"id": ["a"]}), {}, seeds=1)


def test_an_output_of_turns_is_drawn_against_the_pools_turns(world):
    from hf_vitcurate.formats.explode import explode_turns

    pool, truth = world
    turns = explode_turns(pool)
    clean = turns.filter(lambda p: truth[p] != "hallucination", input_columns="parent_id")
    entry = curation_report(pool, {"revo_lion": clean}, truth=truth)["configs"]["revo_lion"]
    assert entry["random"]["unit"] == "turns"
    assert entry["metrics"]["hallucination"]["config"] == 0.0
    turn_share = sum(truth[p] == "hallucination" for p in turns["parent_id"]) / len(turns)
    assert entry["metrics"]["hallucination"]["pool"] == pytest.approx(turn_share, abs=1e-4)
    assert entry["goals"]["hallucination"]


def test_why_says_more_when_an_output_keeps_more_than_random():
    """An output that keeps a kind well above random draws is said to favour it, not 'no fewer'."""
    from hf_vitcurate.report import why

    m = {"config": 0.2, "pool": 0.1, "random_mean": 0.1, "random_std": 0.01, "z": -10.0}
    assert "more than random draws' 10.0% ± 1.0%, so its scores favour these rows" in why("hallucination", m, 50, 100)
    m = {**m, "config": 0.105}
    assert "no fewer than" in why("hallucination", m, 50, 100)


def test_a_freely_named_config_is_measured_by_its_recipe_method(world):
    pool, truth = world
    sel = random_subset(pool, fraction=0.4, seed=3).dataset
    rep = curation_report(pool, {"small": sel, "cleanup": sel}, truth=truth, seeds=2,
                          methods={"small": "svit_core", "cleanup": "mllm_selector"})
    assert rep["configs"]["small"]["targets"] == ["yes_no"] and rep["configs"]["small"]["method"] == "svit_core"
    assert rep["configs"]["cleanup"]["targets"] == ["leak"]  # a telling name still decides first


def test_yes_no_is_written_one_way_in_the_report_the_summary_the_card_and_stats():
    """59 yes and 10 no rows read "5.9:1" in the report, its table, the closing summary, the card table and stats."""
    from hf_vitcurate.curation.summary import summary_rows, table_markdown, table_text
    from hf_vitcurate.stats import stats, to_markdown, yes_no_ratio

    answers = ["Yes."] * 59 + ["No."] * 10 + ["A red ball."] * 3
    pool = stages.yes_no(Dataset.from_dict({
        "id": [f"r{i}" for i in range(len(answers))], "images": [[]] * len(answers), "source": ["s"] * len(answers),
        "task": ["vqa"] * len(answers),
        "conversations": [[{"from": "human", "value": "Q?"}, {"from": "gpt", "value": a}] for a in answers]}))
    rep = curation_report(pool, {"mine": pool, "all_yes": pool.select(range(7))})
    assert rep["configs"]["mine"]["yes_no"]["ratio"] == rep["pool"]["yes_no"]["ratio"] == "5.9:1"
    assert rep["configs"]["all_yes"]["yes_no"]["ratio"] == "7:0" and yes_no_ratio(0, 0) == "-"
    table = report_table(rep).splitlines()
    assert table[1].split()[2] == table[2].split()[2] == "5.9:1" and table[3].split()[2] == "7:0"
    rows = summary_rows(rep)
    assert [r["yes_no"] for r in rows] == ["5.9:1", "7:0"]
    assert "5.9:1" in table_text(rows) and "| 5.9:1 |" in table_markdown(rows)
    assert json.loads(json.dumps(rep))["configs"]["mine"]["yes_no"]["ratio"] == "5.9:1"  # summary.json's report
    assert "| 5.9:1 |" in to_markdown(stats(pool))


def test_one_name_per_method_in_the_recipe_the_report_and_the_cards():
    """A recipe method, its built-in config, its report method and its METHOD_CARDS key are one name."""
    from hf_vitcurate.curation import load_recipe
    from hf_vitcurate.curation.job import METHOD_CARDS
    from hf_vitcurate.curation.recipe import METHODS, STEPS
    from hf_vitcurate.report import PATHOLOGIES

    builtin_recipe = load_recipe("shapesworld")
    assert {name: o.method for name, o in builtin_recipe.outputs.items()} == {
        m: m for m in ("revo_lion", "svit_core", "mminstruct_style", "mllm_selector", "recommended")}
    assert set(METHOD_CARDS) == set(METHODS)
    for method in METHODS:
        if method != "random_subset":  # the baseline has no pathology of its own
            assert method_of(method)[0] == method
    named = {m for _, m, _ in PATHOLOGIES}
    assert named <= set(METHODS) | set(STEPS), named - set(METHODS) - set(STEPS)
