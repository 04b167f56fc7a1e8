"""SVIT: concept tagging, yes/no, clean-up flags, the D/B/core/mix recipes and the `vitcurate svit` CLI."""

from __future__ import annotations

import json
import random

import datasets
import numpy as np
import pyarrow as pa
import pytest
from datasets import Dataset

from hf_vitcurate import provenance
from hf_vitcurate.errors import ConfigError
from hf_vitcurate.schema import FEATURES
from hf_vitcurate.select import ShortfallError, balance, core, diversity, mix
from hf_vitcurate.stages import (
    SVIT_CONCEPTS,
    SVIT_CONCEPTS_LITERAL,
    ConceptMatcher,
    concepts,
    leakage,
    load_concept_sets,
    qa_count,
    reject,
    yes_no,
)

datasets.disable_progress_bars()


def rows_of(*answers: str, question: str = "Q?", task: str = "conv", source: str = "src") -> Dataset:
    """One row per answer, canonical schema."""
    n = len(answers)
    return Dataset.from_dict(
        {
            "id": [f"r{i}" for i in range(n)],
            "images": [[] for _ in range(n)],
            "conversations": [[{"from": "human", "value": question}, {"from": "gpt", "value": a}] for a in answers],
            "source": [source] * n,
            "task": [task] * n,
        },
        features=FEATURES,
    )


def hits(text: str, concept_sets=None) -> list[str]:
    return concepts(rows_of(text), concept_sets=concept_sets)[0]["concepts"]


# -- concepts ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("A Red ball.", ["red"]),  # case
        ("reddish and redder", []),  # word boundaries: no prefix hits
        ("An onion upon the tones", []),  # "on", "up", "one" inside words are no hits
        ("Two glasses and three stones", ["glass", "stone", "three", "two"]),  # plural es / s
        ("Ones and twos", ["one", "two"]),
        ("The boxes", []),
        ("red_car red2", []),  # _ and digits are word characters
        ("red-green", ["green", "red"]),  # hyphen separates words
        ("WOODEN TABLE", ["wooden"]),
        ("in back of it", ["in back"]),  # phrase
        ("in, back", []),  # punctuation breaks a phrase
        ("in\nback", ["in back"]),  # any white space joins one
        ("left direction", ["left direction"]),  # longest match wins, no extra "left"
        ("medium sizes", ["medium size"]),  # plural on a phrase's last word
        ("sizes medium", []),
        ("olive peach", ["olive", "peach"]),  # two key words
    ],
)
def test_keyword_matching(text, expected):
    assert sorted(hits(text)) == sorted(expected)


def test_literal_table_reading_is_available():
    assert hits("olive peach", SVIT_CONCEPTS_LITERAL) == ["olive peach"]
    assert hits("an olive", SVIT_CONCEPTS_LITERAL) == []
    assert "olive peach" not in SVIT_CONCEPTS["color"]


def test_concepts_columns_all_turns_and_measures():
    ds = Dataset.from_dict({"conversations": [[
        {"from": "human", "value": "<image>\nWhat is on the left?"},
        {"from": "gpt", "value": "Two red glasses, in back of a wooden box; a red cup."},
    ]]})
    row = concepts(ds)[0]
    assert row["concepts"] == ["red", "glass", "wooden", "two", "in back", "left", "on"]  # concept-set order
    assert row["concept_counts"] == {"color": 2, "material": 2, "quantity": 1, "spatial relation": 3, "size": 0}
    assert row["informativeness"] == 7
    assert concepts(ds, measure="concepts")[0]["informativeness"] == 4
    assert concepts(ds, measure="occurrences")[0]["informativeness"] == 8
    with pytest.raises(ConfigError, match="measure"):
        concepts(ds, measure="bogus")


def test_concepts_keeps_input_and_records_provenance():
    ds = rows_of("A big red cube.", "")
    out = concepts(ds)
    assert out.column_names == ds.column_names + ["concepts", "concept_counts", "informativeness"]
    assert out[1]["informativeness"] == 0 and out[1]["concepts"] == []
    assert provenance.steps(out)[-1]["name"] == "concepts"
    again = concepts(out, concept_sets={"shape": ["cube"]})  # re-tagging replaces the columns
    assert again.column_names == out.column_names and again[0]["concept_counts"] == {"shape": 1}


def test_concepts_on_no_rows_and_on_a_selection():
    ds = rows_of("Two red balls.", "A big cube.")
    for empty in (ds.select([]), ds.filter(lambda r: False), ds.select([1]).select([])):
        out = concepts(empty)
        assert len(out) == 0 and out.column_names == ds.column_names + ["concepts", "concept_counts", "informativeness"]
        assert out.features["informativeness"].dtype == "int32"
    picked = concepts(ds.select([1, 0]))  # an indices mapping: flattened by the concatenation
    assert picked["concepts"][:] == [["big"], ["red", "two"]]


def test_new_columns_visible_after_concatenate():
    # concatenate_datasets sets an explicit format column list; new columns must still show.
    ds = datasets.concatenate_datasets([rows_of("Two red balls."), rows_of("No.")])
    row = yes_no(concepts(ds))[0]
    assert row["informativeness"] == 2 and row["yes_no"] == "none"
    narrowed = concepts(ds.with_format("numpy", columns=["id"]))[0]
    assert set(narrowed) == {"id", "concepts", "concept_counts", "informativeness"}


def test_vectorised_matcher_equals_regex_reference():
    # Overlapping phrases ("big red ball", "red ball", "ball left") exercise leftmost-longest.
    sets = {"a": ["left", "left direction", "direction", "in back", "back", "big red ball", "red ball", "ball left"],
            "b": ["red", "ball", "glass"]}
    for concept_sets in (None, sets):
        m = ConceptMatcher(concept_sets)
        rng = random.Random(0)
        vocab = m.keywords + [w + "s" for w in m.keywords] + [w + "es" for w in m.keywords] + [
            "the", "Red", "LEFT", "in", "back", "big", "café", "red_", "2red", "s"]
        seps = [" ", "  ", ", ", "\n", "-", "'", "\u2019", "\u00a0", "_", ". ", "/", "\x1c"]
        texts = ["".join(rng.choice(vocab) + rng.choice(seps) for _ in range(rng.randint(0, 10))) for _ in range(400)]
        rows, kws = m.tag_turns(pa.array(texts), np.arange(len(texts)), len(texts))
        for i, t in enumerate(texts):
            assert [m.keywords[k] for k in kws[rows == i]] == m.findall(t), t


def test_vectorised_matcher_keeps_turns_apart():
    # Turns lie end to end in one Arrow buffer: a word or a phrase must never run across
    # two turns ("in" + "back", "re" + "d"), empty and null turns included, on a sliced array.
    m = ConceptMatcher({"a": ["in back", "red", "left direction", "left"], "b": ["back"]})
    rng = random.Random(1)
    pieces = ["in", "back", "re", "d", "red", "left", "direction", "", " ", "in back", "left direction", "x, ", "\t"]
    turns_ = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 3))) for _ in range(600)]
    turns_[5] = None
    values = pa.array(["padding"] + turns_).slice(1)
    turn_row = np.arange(len(turns_)) // 3  # three turns per row
    rows, kws = m.tag_turns(values, turn_row, len(turns_) // 3)
    for r in range(len(turns_) // 3):
        expected = [k for t in turns_[3 * r : 3 * r + 3] for k in m.findall(t or "")]
        assert [m.keywords[k] for k in kws[rows == r]] == expected, turns_[3 * r : 3 * r + 3]


def test_load_concept_sets(tmp_path):
    (tmp_path / "c.yaml").write_text("shape:\n  - Circle\n  - square, cube\n")
    (tmp_path / "c.json").write_text(json.dumps({"shape": ["circle"]}))
    assert load_concept_sets(tmp_path / "c.yaml") == {"shape": ["circle", "square", "cube"]}
    assert load_concept_sets(str(tmp_path / "c.json")) == {"shape": ["circle"]}
    assert hits("Three circles", str(tmp_path / "c.yaml")) == ["circle"]
    from hf_vitcurate.errors import NotFoundError

    with pytest.raises(ConfigError, match="non-empty"):
        load_concept_sets({})
    with pytest.raises(ConfigError, match="punctuation"):
        ConceptMatcher({"x": ["a/b"]})
    with pytest.raises(NotFoundError, match="no such file or folder: .*missing.yaml"):
        load_concept_sets(tmp_path / "missing.yaml")


# -- yes/no --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer, label",
    [("Yes.", "yes"), (" no,", "no"), ("Yesterday", "none"), ("NO!", "no"), ('"Yes, it is"', "yes"),
     ("Nope", "none"), ("no", "no"), ("", "none"), ("...yes", "yes"), ("Noon", "none"),
     ("The answer is yes", "none"), ("yes_no", "none")],
)
def test_yes_no_edge_cases(answer, label):
    assert yes_no(rows_of(answer))[0]["yes_no"] == label


def test_yes_no_uses_first_answer_only():
    ds = Dataset.from_dict({"conversations": [
        [{"from": "human", "value": "Yes?"}, {"from": "gpt", "value": "Maybe."},
         {"from": "human", "value": "Sure?"}, {"from": "gpt", "value": "Yes."}],
        [{"from": "human", "value": "Only a question"}],
    ]})
    assert yes_no(ds)["yes_no"][:] == ["none", "none"]


# -- clean-up --------------------------------------------------------------------------------
def test_leakage_flags_and_drop_counts():
    ds = rows_of("Per the Captions, red.", "Red.", "Based on the given\ninformation, two.", "A description.",
                 question="Give a caption")  # the question's "caption" is not checked
    flagged = leakage(ds)
    assert flagged["leakage"][:] == [True, False, True, True]
    assert flagged[2]["leakage_phrases"] == ["the given information"]
    kept, rejected = reject(leakage(ds), where="leakage")
    assert len(kept) + len(rejected) == len(ds) == 4 and len(rejected) == 3
    assert set(rejected["reject_reason"][:]) == {"leakage"} and "captions" in rejected[0]["reject_detail"]
    assert provenance.steps(kept)[-1]["rejected"] == {"leakage": 3}
    kept, rejected = reject(leakage(ds, phrases=["two"]), where="leakage")
    assert len(rejected) == 1


def test_qa_count_flags_and_drop_counts():
    two = [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}] * 2
    ds = Dataset.from_dict({"id": ["a", "b", "c"], "task": ["ref", "ref", "conv"],
                            "conversations": [two, two[:2], two[:2]]})
    flagged = qa_count(ds, expected=2)
    assert flagged["qa_pairs"][:] == [2, 1, 1] and flagged["qa_short"][:] == [False, True, True]
    kept, rejected = reject(qa_count(ds, expected={"ref": 2}), where="qa_short")  # conv is not checked
    assert kept["id"][:] == ["a", "c"] and rejected["id"][:] == ["b"]
    assert rejected[0]["reject_reason"] == "too_few_qa" and rejected[0]["reject_detail"] == "1 QA pairs, expected 2"
    kept, rejected = reject(qa_count(ds, expected=1), where="qa_short")
    assert len(kept) == 3 and len(rejected) == 0 and rejected.features["reject_reason"].dtype == "string"


# -- recipes ---------------------------------------------------------------------------------
TASKS = ["conversation", "judgement", "referring_qa", "caption"]


@pytest.fixture(scope="module")
def pool() -> Dataset:
    """800 tagged rows, 4 tasks; judgement answers are yes-heavy (about 9:1)."""
    rng = np.random.default_rng(0)
    n = 800
    task = np.array(TASKS)[np.arange(n) % 4]
    yn = np.where(task == "judgement", np.where(rng.random(n) < 0.9, "yes", "no"),
                  np.where(rng.random(n) < 0.1, "yes", "none"))
    return Dataset.from_dict({
        "id": [f"p{i:04d}" for i in range(n)],
        "source": ["svit"] * n,
        "task": task.tolist(),
        "informativeness": rng.integers(0, 12, n).tolist(),
        "yes_no": yn.tolist(),
    })


def test_diversity_exact_size_equal_tasks_informative_half(pool):
    sel, manifest = diversity(pool, n=102, seed=0)
    counts = manifest["counts"]["per_task"]
    assert len(sel) == 102 == manifest["n_selected"] == len(manifest["ids"])
    assert sorted(counts.values()) == [25, 25, 26, 26] and counts["caption"] == 26  # remainder alphabetically
    info = np.asarray(pool["informativeness"][:])
    cut = np.sort(info)[::-1][len(info) // 2 - 1]  # informativeness of the last row kept
    assert min(sel["informativeness"][:]) >= cut
    per_task, _ = diversity(pool, n=100, per_task=True, seed=0)
    assert len(per_task) == 100
    assert provenance.steps(sel)[-1]["kind"] == "select" and manifest["seed"] == 0


def test_diversity_shortfall_names_task_and_amount(pool):
    with pytest.raises(ShortfallError, match=r"short by \d+") as err:
        diversity(pool, n=500, seed=0)
    assert set(err.value.short) <= set(TASKS) and sum(err.value.short.values()) > 0
    with pytest.warns(UserWarning, match="short"):
        sel, manifest = diversity(pool, n=500, seed=0, allow_short=True)
    assert len(sel) == 500 - manifest["counts"]["short"] < 500


def test_balance_exact_size_and_ratio(pool):
    for ratio in (8, 2, 1):
        sel, manifest = balance(pool, n=300, ratio=ratio, seed=3)
        c = manifest["counts"]
        yn = sel["yes_no"][:]
        assert len(sel) == 300 and c["yes"] == yn.count("yes") and c["no"] == yn.count("no")
        assert yn.count("yes") <= ratio * yn.count("no")
    sel, manifest = balance(pool, n=300, ratio=100, seed=3)
    assert manifest["counts"]["balance"]["dropped_yes"] == 0


def test_balance_shortfall(pool):
    yes_heavy = pool.filter(lambda r: r["yes_no"] != "none")
    with pytest.raises(ShortfallError, match="non-yes rows short by"):
        balance(yes_heavy, n=200, ratio=0.5, seed=0)
    with pytest.raises(ShortfallError, match="pool short by 1"):
        balance(pool, n=801)
    with pytest.warns(UserWarning):
        sel, manifest = balance(yes_heavy, n=200, ratio=0.5, seed=0, allow_short=True)
    assert len(sel) == 200 - manifest["counts"]["short"]
    assert sel["yes_no"][:].count("yes") <= 0.5 * sel["yes_no"][:].count("no")


def test_core_exact_size_ratio_and_determinism(pool):
    sel, manifest = core(pool, n=120, ratio=2, seed=7, per_task=True)
    yn = sel["yes_no"][:]
    assert len(sel) == 120 and yn.count("yes") <= 2 * yn.count("no")
    assert manifest["method"] == "svit.core" and manifest["params"]["ratio"] == 2
    _, manifest2 = core(pool, n=120, ratio=2, seed=7, per_task=True)
    assert manifest2["ids"] == manifest["ids"]
    _, manifest3 = core(pool, n=120, ratio=2, seed=8, per_task=True)
    assert manifest3["ids"] != manifest["ids"]
    assert [s["name"] for s in provenance.steps(sel)][-1] == "svit.core"


def test_core_missing_columns_say_what_to_run(pool):
    with pytest.raises(KeyError, match="stages.concepts"):
        core(pool.remove_columns("informativeness"), n=10)
    with pytest.raises(KeyError, match="stages.yes_no"):
        balance(pool.remove_columns("yes_no"), n=10)


def test_mix_replaces_one_source(pool):
    mixture = Dataset.from_dict({"id": ["a", "b", "c", "d"], "source": ["llava_instruct", "vqa", "llava_instruct", "ocr"],
                                 "task": ["conversation", "short_vqa", "conversation", "ocr"]})
    core_ds, _ = core(pool, n=40, seed=0, per_task=True)
    mixed, manifest = mix(mixture, core=core_ds, replace_source="llava_instruct")
    assert len(mixed) == 2 + 40 and mixed.column_names == ["id", "source", "task"]
    assert manifest["counts"]["removed"] == 2 and manifest["counts"]["per_source"] == {"vqa": 1, "ocr": 1, "svit": 40}
    with pytest.raises(ValueError, match="sources are"):
        mix(mixture, core=core_ds, replace_source="nope")
    with pytest.raises(ValueError, match="already exist"):
        mix(mixture, core=mixture.select([0]), replace_source="vqa")


# -- CLI -------------------------------------------------------------------------------------
def test_cli_svit_tag_core_clean(tmp_path, capsys):
    from hf_vitcurate.cli import main

    rng = random.Random(0)
    answers = []
    for i in range(200):
        answers.append("Yes." if i % 4 == 1 and rng.random() < 0.8 else
                       rng.choice(["No.", "Two red cubes on the left.", "A small wooden box.", "The caption says a cat."]))
    ds = rows_of(*answers)
    ds = ds.map(lambda r, i: {"task": TASKS[i % 4]}, with_indices=True)
    ds.save_to_disk(str(tmp_path / "pool"))

    assert main(["svit", "tag", str(tmp_path / "pool"), "--output", str(tmp_path / "tagged")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 200 and summary["yes"] > 0
    assert main(["svit", "core", str(tmp_path / "tagged"), "--n", "40", "--per-task", "--ratio", "4",
                 "--output", str(tmp_path / "core"), "--manifest", str(tmp_path / "core.json")]) == 0
    manifest = json.loads((tmp_path / "core.json").read_text())
    assert manifest["n_selected"] == 40 and len(manifest["ids"]) == 40
    assert len(datasets.load_from_disk(str(tmp_path / "core"))) == 40
    capsys.readouterr()
    # balance on the untagged pool tags what it needs by itself
    assert main(["svit", "balance", str(tmp_path / "pool"), "--n", "50", "--output", str(tmp_path / "bal")]) == 0
    assert json.loads(capsys.readouterr().out)["n_selected"] == 50
    assert main(["svit", "diversity", str(tmp_path / "tagged"), "--n", "190", "--output", str(tmp_path / "x")]) == 2
    assert "short by" in capsys.readouterr().err
    assert main(["svit", "clean", str(tmp_path / "pool"), "--expected-qa", "1", "--drop",
                 "--output", str(tmp_path / "clean"), "--rejected", str(tmp_path / "rej.jsonl")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kept"] + out["rejected"] == out["rows_in"] == 200 and out["reasons"]["leakage"] > 0


def test_reject_on_a_missing_flag_column_names_it():
    from hf_vitcurate.errors import MissingColumnError
    from hf_vitcurate.stages import reject

    ds = Dataset.from_dict({"id": ["a", "b"], "leak_flag": [False, True]})
    with pytest.raises(MissingColumnError, match="flag column 'leakage_flag'"):
        reject(ds, where="leakage_flag")
