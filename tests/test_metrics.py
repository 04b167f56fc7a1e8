"""Caption metrics and MQ: hand-checked values, and equality with pycocoevalcap + nltk on real captions."""

from __future__ import annotations

import contextlib
import io
import json
import math
import random

import numpy as np
import pytest

from hf_vitcurate.metrics import (
    Scorer,
    WordNetMissingError,
    coco_tokenize,
    lcs_length,
    load_wordnet,
    mq_dataset,
    mq_metric_path,
    mq_scores,
)
from hf_vitcurate.metrics import wordnet as wordnet_module

TOL = 1e-9


@pytest.fixture(scope="module")
def wn():
    try:
        return load_wordnet()
    except WordNetMissingError as e:  # pragma: no cover - CI installs it
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def scorer(wn):
    return Scorer(wordnet=wn)


# --- tokenization ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("The cat's on the mat, isn't it?", ["the", "cat", "'s", "on", "the", "mat", "is", "n't", "it"]),
        ("Don't stop. Well-known U.S. data: 3.5%!", ["do", "n't", "stop", "well-known", "u.s", "data", "3.5", "%"]),
        ("<st>red circle<ed>[10, 20, 30, 40]", ["<st>", "red", "circle", "<ed>", "10", "20", "30", "40"]),
        ("\u201cQuoted\u201d \u2014 it\u2019s 1,000 (ok)...", ["quoted", "it", "'s", "1,000", "ok"]),
        ("", []),
        (None, []),
    ],
)
def test_tokenize(text, tokens):
    assert coco_tokenize(text) == tokens


# --- hand-checked values --------------------------------------------------------------


def test_exact_match_scores_one(scorer):
    s = scorer.scores(["the cat sat on the mat"], ["The cat sat on the mat."])
    for k in ("bleu_1", "bleu_2", "bleu_3", "bleu_4"):
        assert s[k][0] == pytest.approx(1.0, abs=1e-8)  # pycocoevalcap's 1e-9 smoothing: 1 - O(1e-10)
    assert s["rouge_l"][0] == 1.0
    # METEOR of identical strings is below 1: one chunk of 6 matches, penalty 0.5 * (1/6)^3.
    assert s["meteor"][0] == pytest.approx(1 - 0.5 / 6**3, abs=TOL)
    assert s["mq"][0] == pytest.approx((4 + 1 + 1 - 0.5 / 216) / 6, abs=1e-8)


def test_short_exact_match_keeps_coco_bleu_smoothing(scorer):
    # 3 tokens have no 4-gram: pycocoevalcap gives B@4 = (1e-15/1e-9)^(1/4) = 0.0316..., not 1.
    s = scorer.scores(["a red circle"], ["a red circle"])
    assert s["bleu_3"][0] == pytest.approx(1.0, abs=1e-8)
    assert s["bleu_4"][0] == pytest.approx(1e-6**0.25, rel=1e-6)
    assert s["meteor"][0] == pytest.approx(1 - 0.5 / 27, abs=TOL)


def test_disjoint_scores_zero(scorer):
    s = scorer.scores(["dog barks loudly"], ["a cat sleeps"])
    for k, v in s.items():
        assert 0 <= v[0] < TOL, k


def test_known_bleu_values(scorer):
    # cand "the cat sat on the mat" vs ref "the cat is on the mat" (c = r = 6, no brevity penalty):
    # p1 = 5/6, p2 = 3/5, p3 = 1/4, p4 = 0/3.
    s = scorer.scores(["the cat sat on the mat"], ["the cat is on the mat"])
    assert s["bleu_1"][0] == pytest.approx(5 / 6, rel=1e-8)
    assert s["bleu_2"][0] == pytest.approx(math.sqrt(5 / 6 * 3 / 5), rel=1e-8)
    assert s["bleu_3"][0] == pytest.approx((5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3), rel=1e-8)
    assert s["bleu_4"][0] == pytest.approx((5 / 6 * 3 / 5 * 1 / 4 * 1e-15 / 3) ** 0.25, rel=1e-6)
    # Brevity penalty: c = 2, r = 6 -> exp(1 - 6/2).
    s = scorer.scores(["the cat"], ["the cat sat on the mat"])
    assert s["bleu_1"][0] == pytest.approx(math.exp(-2), rel=1e-8)
    # Closest reference length, ties to the shorter: c = 4, refs of 3 and 5 -> r = 3, no penalty.
    s = scorer.scores(["a b c d"], [["a b c", "a b c d e"]])
    assert s["bleu_1"][0] == pytest.approx(1.0, abs=1e-8)
    # Clipping: "the the the" vs "the cat" -> p1 = 1/3 (one "the" counts).
    s = scorer.scores(["the the the"], ["the cat"])
    assert s["bleu_1"][0] == pytest.approx(1 / 3, rel=1e-8)


def test_known_rouge_values(scorer):
    # LCS("the cat sat on the mat", "the cat is on the mat") = 5: P = R = 5/6 -> F = 5/6.
    s = scorer.scores(["the cat sat on the mat"], ["the cat is on the mat"])
    assert s["rouge_l"][0] == pytest.approx(5 / 6, abs=TOL)
    # P = 3/4, R = 3/5, beta = 1.2.
    p, r = 3 / 4, 3 / 5
    s = scorer.scores(["a b c d"], ["a c d e f"])
    assert s["rouge_l"][0] == pytest.approx((1 + 1.44) * p * r / (r + 1.44 * p), abs=TOL)
    # Several references: best precision and best recall are taken separately (as COCO).
    s = scorer.scores(["a b c d"], [["a b", "a b c d e f g h"]])
    assert s["rouge_l"][0] == pytest.approx(1.0, abs=TOL)


def test_lcs_bit_parallel_matches_dynamic_programming():
    def dp(a, b):
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
        return table[-1][-1]

    rng = random.Random(0)
    for _ in range(300):
        a = [rng.randrange(6) for _ in range(rng.randrange(0, 80))]
        b = [rng.randrange(6) for _ in range(rng.randrange(0, 80))]
        assert lcs_length(a, b) == dp(a, b)


def test_meteor_stems_and_synonyms(scorer):
    # Stems: cats/cat, running/runs -> 2 matches, one chunk: 1 - 0.5 * (1/2)^3.
    assert scorer.scores(["cats running"], ["cat runs"])["meteor"][0] == pytest.approx(1 - 0.5 / 8, abs=TOL)
    # WordNet synonym: "hound" is a lemma of a synset of "dog".
    assert scorer.scores(["dog"], ["hound"])["meteor"][0] == pytest.approx(0.5, abs=TOL)


def test_mq_variants_and_dataset(scorer):
    preds = ["a red circle on the left", "two blue squares", "yes"]
    refs = ["a red circle at the top left", ["there are two blue squares", "two squares"], "no"]
    s = scorer.scores(preds, refs)
    comps = np.array([s[k] for k in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l")])
    assert np.allclose(s["mq"], comps.mean(0), atol=1e-12)
    c2 = scorer.scores(preds, refs, variant="C2")["mq"]
    assert np.allclose(c2, comps[[3, 4, 5]].mean(0), atol=1e-12)
    c3 = scorer.scores(preds, refs, variant="c3")["mq"]
    assert np.allclose(c3, comps[[4, 5]].mean(0), atol=1e-12)
    assert mq_dataset(preds, refs, scorer=scorer) == pytest.approx(np.mean(s["mq"]), abs=1e-12)
    total = mq_dataset(preds, refs, reduce="sum", scorer=scorer)
    assert total == pytest.approx(
        sum(_coco_corpus_bleu(preds, refs)) + np.mean(s["meteor"]) + np.mean(s["rouge_l"]), abs=TOL
    )
    from hf_vitcurate.errors import ConfigError, RowError

    with pytest.raises(ConfigError, match="variant"):
        scorer.scores(preds, refs, variant="C4")
    with pytest.raises(ConfigError, match="reduce"):
        mq_dataset(preds, refs, reduce="median", scorer=scorer)
    with pytest.raises(RowError, match="sample 0"):
        scorer.scores(["x"], [[]])


def test_duplicates_scored_once_give_same_values(scorer):
    preds, refs = ["yes", "no", "yes", "a red circle"] * 3, ["yes", "yes", "yes", "a red square"] * 3
    s = scorer.scores(preds, refs)
    one = scorer.scores(preds[:4], refs[:4])
    assert s["mq"] == one["mq"] * 3


def test_mq_scores_uses_default_scorer(wn):
    s = mq_scores(["the cat sat on the mat"], ["the cat is on the mat"], variant="C3")
    assert sorted(s) == ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "mq", "rouge_l"]


@pytest.mark.slow  # `import evaluate` alone takes 6-16 s (transformers.pipelines, torch)
def test_evaluate_module_offline(wn, scorer):
    evaluate = pytest.importorskip("evaluate")
    metric = evaluate.load(mq_metric_path())
    preds = ["a red circle", "two squares"]
    refs = [["a red circle", "a circle"], ["three squares"]]
    out = metric.compute(predictions=preds, references=refs, per_sample=True)
    s = scorer.scores(preds, refs)
    assert out["mq"] == pytest.approx(np.mean(s["mq"]), abs=1e-12)
    assert out["mq_per_sample"] == pytest.approx(s["mq"], abs=1e-12)
    single = metric.compute(predictions=preds, references=["a red circle", "three squares"], variant="C3")
    assert single["mq"] == pytest.approx(np.mean(scorer.scores(preds, ["a red circle", "three squares"], variant="C3")["mq"]))


# What `evaluate.load(mq_metric_path())` may import beyond what `import evaluate` already did:
# the metric module and hf_vitcurate's metrics, nothing heavy (WordNet and nltk wait for the
# first compute). The seconds a first `evaluate.load` takes are `import evaluate` itself
# (its evaluator imports transformers.pipelines, torch and scipy.stats): benchmarks/RESULTS.md.
_LOAD_PROBE = """
import json, sys, time
import evaluate
before = set(sys.modules)
t0 = time.perf_counter()
from hf_vitcurate.metrics import mq_metric_path
evaluate.load(mq_metric_path())
print(json.dumps({"seconds": time.perf_counter() - t0, "new": sorted(set(sys.modules) - before)}))
"""


@pytest.mark.slow  # a process that imports evaluate (6-16 s of transformers/torch imports)
def test_evaluate_load_imports_nothing_heavy(tmp_path):
    import os
    import subprocess
    import sys

    pytest.importorskip("evaluate")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", _LOAD_PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    new = json.loads(run.stdout.strip().splitlines()[-1])["new"]
    heavy = [m for m in new if m.split(".")[0] in {"torch", "transformers", "nltk", "scipy", "matplotlib", "pycocoevalcap"}]
    assert not heavy, heavy
    assert not any("wordnet" in m for m in new if not m.startswith("hf_vitcurate")), new


def test_missing_wordnet_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("VITCURATE_WORDNET", raising=False)
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    monkeypatch.setattr(wordnet_module, "SYSTEM_DIRS", (str(tmp_path),))
    monkeypatch.setattr(wordnet_module, "_nltk_wordnet", lambda: None)
    with pytest.raises(WordNetMissingError, match="apt-get install wordnet-base wordnet-sense-index"):
        wordnet_module.find_wordnet()
    monkeypatch.setenv("WNSEARCHDIR", str(tmp_path))
    with pytest.raises(WordNetMissingError, match="WNSEARCHDIR"):
        wordnet_module.find_wordnet()


def test_debian_dict_folder_is_read_without_lexnames(wn):
    assert wn.get_version() == "3.0"
    assert "hound" in {lemma.name() for s in wn.synsets("dog") for lemma in s.lemmas()}
    assert wn.synset("dog.n.01").lexname() == "noun.animal"


# --- equality with the reference scorers on real captions -----------------------------


def _coco_corpus_bleu(preds, refs):
    from pycocoevalcap.bleu.bleu import Bleu

    pytest.importorskip("pycocoevalcap")
    gts = {i: [" ".join(coco_tokenize(r)) for r in ([x] if isinstance(x, str) else x)] for i, x in enumerate(refs)}
    res = {i: [" ".join(coco_tokenize(p))] for i, p in enumerate(preds)}
    with contextlib.redirect_stdout(io.StringIO()):
        score, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return score


def reference_scores(preds, refs, wn):
    """The straightforward composition: pycocoevalcap's Bleu/Rouge per sample, nltk's meteor_score."""
    pytest.importorskip("pycocoevalcap")
    from nltk.translate.meteor_score import meteor_score
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.rouge.rouge import Rouge

    out = {k: [] for k in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l")}
    for pred, ref in zip(preds, refs):
        ref = [ref] if isinstance(ref, str) else ref
        p_tok, r_tok = coco_tokenize(pred), [coco_tokenize(r) for r in ref]
        gts, res = {0: [" ".join(t) for t in r_tok]}, {0: [" ".join(p_tok)]}
        with contextlib.redirect_stdout(io.StringIO()):
            _, bleu = Bleu(4).compute_score(gts, res, verbose=0)
        for k in range(4):
            out[f"bleu_{k + 1}"].append(bleu[k][0])
        out["rouge_l"].append(float(Rouge().compute_score(gts, res)[1][0]))
        out["meteor"].append(meteor_score(r_tok, p_tok, wordnet=wn))
    return out


def real_pairs(real_data, n=120, seed=0):
    caps = [a["caption"] for a in json.loads((real_data / "minigpt4_cc_sbu_align_scored.json").read_text())["annotations"]]
    rng = random.Random(seed)
    preds, refs = [], []
    for _ in range(n):
        pred = rng.choice(caps)
        ref = [rng.choice(caps) for _ in range(rng.choice([1, 1, 2, 3]))]
        if rng.random() < 0.25:
            ref[0] = pred  # exact matches
        if rng.random() < 0.3:
            words = pred.split()
            ref.append(" ".join(words[: len(words) // 2]))  # partial overlap, brevity
        if rng.random() < 0.2:
            pred = " ".join(pred.split()[rng.randrange(3, 12):])  # shorter candidates
        preds.append(pred)
        refs.append(ref if len(ref) > 1 else ref[0])
    # Edge cases: empty answers and references, one-word answers.
    preds += ["", "", "a", "Yes.", "No"]
    refs += [[""], "x y", [""], "yes", ["no", "No, it is not."]]
    return preds, refs


def test_equal_to_pycocoevalcap_and_nltk_on_real_captions(real_data, wn, scorer):
    preds, refs = real_pairs(real_data)
    expected = reference_scores(preds, refs, wn)
    got = scorer.scores(preds, refs)
    for key, values in expected.items():
        diff = np.abs(np.asarray(got[key]) - np.asarray(values))
        assert diff.max() <= TOL, (key, int(diff.argmax()), preds[int(diff.argmax())])
    # A fresh scorer (empty caches) and batched order give the same values.
    again = Scorer(wordnet=wn).scores(preds[::-1], refs[::-1])
    assert np.allclose(np.asarray(again["mq"])[::-1], got["mq"], atol=0, rtol=0)


def test_lemma_names_equal_nltk_synsets(wn):
    from hf_vitcurate.metrics.wordnet import LemmaNames

    names = LemmaNames(wn)
    rng = random.Random(0)
    words = rng.sample(sorted(wn._lemma_pos_offset_map), 1500)
    words += ["dogs", "geese", "ran", "running", "better", "was", "children", "Dog", "3", "<st>", "n't", "happi"]
    for w in words:
        assert names(w) == {lemma.name() for s in wn.synsets(w) for lemma in s.lemmas()}, w


def test_bleu_is_the_same_whatever_the_token_ids():
    # n-gram keys are exact integers while they fit in int64 and re-ranked when they would
    # not: small ids (no re-ranking) and huge ids (re-ranked at every order) give equal scores.
    from hf_vitcurate.metrics import bleu_scores

    rng = np.random.default_rng(0)
    cands = [rng.integers(0, 12, rng.integers(0, 15)).tolist() for _ in range(300)]
    refs = [[rng.integers(0, 12, rng.integers(1, 15)).tolist() for _ in range(rng.integers(1, 4))] for _ in range(300)]
    huge = lambda ids: [i * 1_000_003 + 7 for i in ids]  # noqa: E731
    small = bleu_scores(cands, refs)
    big = bleu_scores([huge(c) for c in cands], [[huge(r) for r in rs] for rs in refs])
    assert np.array_equal(small, big) and small.shape == (300, 4) and small[:, 0].max() > 0.5
