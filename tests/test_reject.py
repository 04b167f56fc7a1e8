"""Score stages return a Dataset whatever their options; ``stages.reject`` is the one kept/rejected form (a Split)."""

from __future__ import annotations

import pytest
from datasets import Dataset

from hf_vitcurate import provenance, stages
from hf_vitcurate.results import Split


def rows(*answers: str, tasks=None) -> Dataset:
    conv = [[{"from": "human", "value": "Q"}, {"from": "gpt", "value": a}] for a in answers]
    return Dataset.from_dict({"id": [f"r{i}" for i in range(len(answers))], "task": tasks or ["conv"] * len(answers),
                              "conversations": conv})


@pytest.mark.parametrize("options", [{}, {"phrases": ["red"]}, {"map_batch_size": 1}, {"phrases": ["nothing here"]}])
def test_leakage_returns_a_dataset_whatever_its_options(options):
    ds = rows("Per the caption, red.", "Blue.", "Red.")
    out = stages.leakage(ds, **options)
    assert isinstance(out, Dataset) and len(out) == len(ds)
    assert set(ds.column_names) < set(out.column_names) and {"leakage", "leakage_phrases"} <= set(out.column_names)
    assert out["id"][:] == ds["id"][:]  # columns added, rows untouched


def test_the_old_drop_option_is_gone():
    with pytest.raises(TypeError):
        stages.leakage(rows("a"), drop=True)
    with pytest.raises(TypeError):
        stages.qa_count(rows("a"), expected=1, drop=True)


@pytest.mark.parametrize("where,build,reason", [
    ("leakage", lambda ds: stages.leakage(ds), "leakage"),
    ("qa_short", lambda ds: stages.qa_count(ds, expected={"ref": 2}), "too_few_qa"),
])
def test_reject_returns_a_split_with_every_row(where, build, reason):
    ds = build(rows("Per the captions, red.", "Blue.", "Based on the given information, two.", tasks=["ref", "conv", "ref"]))
    split = stages.reject(ds, where=where)
    assert isinstance(split, Split)
    kept, rejected = split
    assert len(kept) + len(rejected) == len(ds) and len(rejected) >= 1
    assert set(kept["id"][:]).isdisjoint(rejected["id"][:])
    assert set(rejected["reject_reason"][:]) == {reason} and all(rejected["reject_detail"][:])
    assert provenance.steps(kept)[-1]["rejected"] == {reason: len(rejected)}


def test_reject_on_a_string_flag_takes_the_values_asked_for():
    ds = Dataset.from_dict({"id": ["a", "b", "c"], "necessity_flag": ["", "truncated", "no_response_tokens"]})
    kept, rejected = stages.reject(ds, where="necessity_flag", values=["no_response_tokens"])
    assert kept["id"][:] == ["a", "b"] and rejected["reject_reason"][:] == ["no_response_tokens"]
    every = stages.reject(ds, where="necessity_flag")  # default: any non-empty flag
    assert every.kept["id"][:] == ["a"] and every.rejected["reject_reason"][:] == ["truncated", "no_response_tokens"]
    assert stages.reject(ds, where="necessity_flag", reason="flagged").rejected["reject_reason"][:] == ["flagged"] * 2


def test_reject_with_nothing_flagged_keeps_the_reason_type():
    kept, rejected = stages.reject(stages.leakage(rows("Blue.")), where="leakage")
    assert len(kept) == 1 and len(rejected) == 0 and rejected.features["reject_reason"].dtype == "string"
    with pytest.raises(ValueError, match="boolean"):
        stages.reject(stages.leakage(rows("Blue.")), where="leakage", values=["x"])


@pytest.mark.parametrize("answer,phrases", [
    ("Voici l'écaption du chat.", ["caption"]),         # a letter before the phrase: no word boundary
    ("The captionée image.", ["caption"]),               # a letter after it
    ("Die Überdescriptionen.", ["description"]),
    ("Per the\u00a0given information, red.", ["the given information"]),  # a no-break space between words
    ("Per the caption\u00e9, red.", ["caption"]),
    ("— caption —", ["caption"]),                        # non-ASCII punctuation around: a boundary
    ("«captions» ici", ["caption"]),
    ("Die Légende zeigt.", ["légende"]),                 # a non-ASCII phrase
    ("Une légende.", ["gende"]),
])
def test_leakage_flag_and_phrases_agree_next_to_non_ascii_letters(answer, phrases):
    import re

    out = stages.leakage(rows(answer), phrases=phrases)[0]
    body = "|".join(re.escape(p) for p in phrases)
    expected = re.search(rf"(?i)(?<!\w)(?:{body})s?(?!\w)", " ".join(answer.split())) is not None
    assert out["leakage"] == bool(out["leakage_phrases"]) == expected, (answer, out)


def test_leakage_on_ecaption_is_not_flagged_and_empty_phrases_are_refused():
    out = stages.leakage(rows("Voici l'écaption.", "Per the caption, red."))
    assert out["leakage"][:] == [False, True] and out["leakage_phrases"][:] == [[], ["caption"]]
    with pytest.raises(ValueError, match="at least one phrase"):
        stages.leakage(rows("écaption"), phrases=[])
