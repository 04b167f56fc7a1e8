"""Individual Select (arXiv:2405.11850): greedy dataset-level choice with the "comparable" margin."""

from __future__ import annotations

import pytest
from datasets import Dataset

from hf_vitcurate.results import DriverSelection
from hf_vitcurate.select.individual import individual_select, mme_to_100, trials_markdown

# A benchmark that rewards useful datasets and punishes a harmful one (order-free).
VALUE = {"base": 50.0, "good": 3.0, "neutral": -0.4, "bad": -5.0, "good2": 1.0}
# Each candidate dataset: as many rows as its name has letters.
SOURCES = {name: Dataset.from_dict({"id": [f"{name}-{i}" for i in range(len(name))]}) for name in VALUE}


def select(baseline, categories, evaluate, **options):
    return individual_select(SOURCES, baseline=baseline, categories=categories, evaluate=evaluate, **options)


def evaluator(calls):
    def evaluate(names):
        calls.append(tuple(names))
        total = sum(VALUE[n] for n in names)
        return {"bench_a": total, "mme": mme_to_100(total / 100 * 2800)}
    return evaluate


def test_accepts_better_and_comparable_rejects_worse():
    calls = []
    chosen, result = select(["base"], {"general": ["good", "neutral", "bad"], "extra": ["good2"]}, evaluator(calls))
    assert result["composition"] == ["base", "good", "neutral", "good2"]
    by_cand = {t["candidate"]: t for t in result["trials"]}
    assert by_cand["neutral"]["accepted"]  # -0.4 is within epsilon = 0.5: comparable
    assert not by_cand["bad"]["accepted"]
    # Candidates of one category are judged against the same B.
    assert by_cand["good"]["reference_average"] == by_cand["bad"]["reference_average"] == 50.0
    assert by_cand["good2"]["reference_average"] == pytest.approx(52.6)
    assert result["final_scores"]["bench_a"] == pytest.approx(53.6)
    # No composition is trained twice.
    assert len(calls) == len(set(calls))
    # The selection is the chosen datasets' rows, in composition order.
    assert list(chosen["id"]) == [i for n in result["composition"] for i in SOURCES[n]["id"]]
    assert result["n_selected"] == len(chosen) == 4 + 4 + 7 + 5 and len(result["ids"]) == len(chosen)


def test_returns_a_driver_selection_and_checks_names():
    result = select(["base"], [["good"]], evaluator([]))
    assert isinstance(result, DriverSelection)
    assert result.manifest["composition"] == ["base", "good"] and len(result.dataset) == 8
    with pytest.raises(ValueError, match=r"unknown dataset\(s\) \['nope'\]"):
        select(["base"], [["nope"]], evaluator([]))


def test_epsilon_zero_rejects_comparable_and_sequential_option():
    _, result = select(["base"], [["neutral"]], evaluator([]), epsilon=0.0)
    assert result["composition"] == ["base"]
    _, seq = select(["base"], [["good", "neutral", "good2"]], evaluator([]), sequential=True)
    refs = [t["reference_average"] for t in seq["trials"]]
    assert refs == [50.0, 53.0, pytest.approx(52.6)]


def test_cache_is_reused_across_calls():
    calls, cache = [], {}
    select(["base"], [["good"]], evaluator(calls), cache=cache)
    n = len(calls)
    select(["base"], [["good"]], evaluator(calls), cache=cache)
    assert len(calls) == n


def test_bad_inputs():
    with pytest.raises(ValueError, match="already"):
        select(["base", "good"], [["good"]], evaluator([]))
    with pytest.raises(ValueError, match="0-100"):
        select([], [["good"]], lambda names: {"mme_raw": 1800.0})
    assert mme_to_100(2800) == 100.0


def test_table_lists_every_trial():
    _, result = select(["base"], [["good", "bad"]], evaluator([]))
    table = trials_markdown(result)
    assert table.count("\n") == 3 and "| good |" in table and "| no |" in table


def test_an_exact_half_point_drop_is_comparable_despite_float_rounding():
    # (61.3 - 0.5 + 67.0 - 0.5) / 2 < (61.3 + 67.0) / 2 - 0.5 in floats: the tolerance absorbs it.
    base, drop = {"a": 61.3, "b": 67.0}, {"a": 61.3 - 0.5, "b": 67.0 - 0.5}
    assert sum(drop.values()) / 2 < sum(base.values()) / 2 - 0.5
    _, result = select(["base"], [["neutral"]], lambda names: drop if "neutral" in names else base)
    assert result["composition"] == ["base", "neutral"]
    # A real excess drop (1e-6 points beyond epsilon) is still rejected.
    worse = {"a": 61.3 - 0.5 - 1e-6, "b": 67.0 - 0.5 - 1e-6}
    _, result = select(["base"], [["neutral"]], lambda names: worse if "neutral" in names else base)
    assert result["composition"] == ["base"]
