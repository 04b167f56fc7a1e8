"""NBGS (MLLM-Selector, arXiv:2503.20502) and the same-budget baselines."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from hf_vitcurate import provenance
from hf_vitcurate.select import baselines
from hf_vitcurate.select.nbgs import default_k, largest_remainder, nbgs


def pool(n: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset.from_dict({"id": [f"r{i:05d}" for i in range(n)], "necessity": rng.normal(50, 10, n).tolist()})


def test_largest_remainder_sums_exactly_and_is_proportional():
    q = largest_remainder(10, np.array([4, 4, 4]))
    assert q.sum() == 10 and sorted(q.tolist()) == [3, 3, 4] and q[0] == 4  # tie -> earlier group
    q = largest_remainder(7, np.array([50, 50, 3]))
    assert q.sum() == 7 and q.tolist() == [4, 3, 0]
    assert largest_remainder(103, np.array([50, 50, 3])).tolist() == [50, 50, 3]


@pytest.mark.parametrize("n_rows,k", [(0, 7), (1, 7), (37, 10), (100, 9), (200, 200), (200, 1)])
def test_exact_budget_and_quotas(n_rows, k):
    ds = pool(200)
    sub, man = nbgs(ds, n=n_rows, k=k, seed=1)
    assert len(sub) == n_rows == man["n_selected"] == sum(man["quotas"])
    assert man["n_groups"] == -(-200 // k)
    assert len(set(sub["id"])) == n_rows


def test_deterministic_per_seed():
    ds = pool(300)
    a = nbgs(ds, n=60, k=40, tau=5.0, seed=3)[1]["ids"]
    b = nbgs(ds, n=60, k=40, tau=5.0, seed=3)[1]["ids"]
    c = nbgs(ds, n=60, k=40, tau=5.0, seed=4)[1]["ids"]
    assert a == b and a != c


def test_tau_to_zero_takes_top_quota_per_group():
    ds = pool(100)
    scores = np.asarray(ds["necessity"])
    order = np.argsort(-scores, kind="stable")
    for tau in (0.0, 1e-6):
        sub, man = nbgs(ds, n=30, k=25, tau=tau, seed=0)
        expected = set()
        for g, q in enumerate(man["quotas"]):
            expected |= {f"r{i:05d}" for i in order[g * 25 : g * 25 + q]}
        assert set(sub["id"]) == expected


def test_tau_to_infinity_is_stratified_uniform():
    # Within a group every row has the same chance quota/size whatever its score.
    ds = pool(40)
    hits = np.zeros(40)
    rank = np.argsort(np.argsort(-np.asarray(ds["necessity"]), kind="stable"))
    runs = 600
    for s in range(runs):
        sub, _ = nbgs(ds, n=10, k=20, tau=float("inf"), seed=s)
        for i in sub["id"]:
            hits[rank[int(i[1:])]] += 1
    share = hits / runs
    assert abs(share.mean() - 0.25) < 1e-9  # exact budget every run
    # Top and bottom halves of each group are drawn alike (no score preference).
    for g in (0, 20):
        assert abs(share[g : g + 10].mean() - share[g + 10 : g + 20].mean()) < 0.05


def test_softmax_probabilities_for_one_draw():
    # One row drawn from a group of 3 with scores 0, 1, 2 at tau=1: p = softmax(s).
    ds = Dataset.from_dict({"id": ["a", "b", "c"], "necessity": [0.0, 1.0, 2.0]})
    counts = {"a": 0, "b": 0, "c": 0}
    for s in range(3000):
        counts[nbgs(ds, n=1, k=3, tau=1.0, seed=s)[1]["ids"][0]] += 1
    p = np.exp([0, 1, 2]) / np.exp([0, 1, 2]).sum()
    got = np.array([counts[x] for x in "abc"]) / 3000
    assert np.abs(got - p).max() < 0.03


def test_standardize_makes_scale_irrelevant():
    ds = pool(120)
    scaled = ds.map(lambda r: {"necessity": r["necessity"] * 1000})
    a = nbgs(ds, n=30, k=30, tau=0.7, seed=2, standardize=True)[1]["ids"]
    b = nbgs(scaled, n=30, k=30, tau=0.7, seed=2, standardize=True)[1]["ids"]
    assert a == b


def test_ties_broken_by_id_and_default_k():
    ds = Dataset.from_dict({"id": ["c", "a", "b", "d"], "necessity": [1.0, 1.0, 1.0, 0.0]})
    assert baselines.top(ds, n=2)[1]["ids"] == ["a", "b"]
    assert baselines.bottom(ds, n=2)[1]["ids"] == ["a", "d"]
    assert default_k(665_000) == 50_000 and default_k(130) == 10 and default_k(0) == 1


def test_baselines_budget_and_provenance():
    ds = pool(50)
    for sub, man in (baselines.random_subset(ds, n=10, seed=1), baselines.top(ds, n=10), baselines.bottom(ds, n=10), nbgs(ds, n=10)):
        assert len(sub) == 10
        step = provenance.steps(sub)[-1]
        assert step["kind"] == "select" and step["rows_in"] == 50 and step["rows_out"] == 10
    top_ids = set(baselines.top(ds, n=10)[1]["ids"])
    assert min(r["necessity"] for r in ds if r["id"] in top_ids) >= max(r["necessity"] for r in ds if r["id"] not in top_ids)


def test_bad_inputs_have_clear_errors():
    ds = pool(10)
    with pytest.raises(ValueError, match="pool size"):
        nbgs(ds, n=11)
    with pytest.raises(KeyError, match="necessity"):
        nbgs(ds.remove_columns("necessity"), n=2)
    with pytest.raises(ValueError, match="tau"):
        nbgs(ds, n=2, tau=-1)
    nan = Dataset.from_dict({"id": ["a", "b"], "necessity": [1.0, float("nan")]})
    with pytest.raises(ValueError, match="id='b'"):
        nbgs(nan, n=1)


SIZED = {
    "nbgs": lambda ds, **size: nbgs(ds, k=5, seed=0, **size),
    "random_subset": lambda ds, **size: baselines.random_subset(ds, seed=0, **size),
    "top": baselines.top,
    "bottom": baselines.bottom,
}


@pytest.mark.parametrize("method", sorted(SIZED))
def test_selection_is_a_selection_sized_by_n_or_fraction(method):
    from hf_vitcurate.results import Selection

    ds = pool(20)
    by_n = SIZED[method](ds, n=5)
    by_fraction = SIZED[method](ds, fraction=0.25)
    assert isinstance(by_n, Selection) and isinstance(by_fraction, Selection)
    sub, manifest = by_n
    assert sub is by_n.dataset and manifest is by_n.manifest
    assert len(sub) == len(by_fraction.dataset) == 5 == manifest["params"]["n"]
    assert by_fraction.manifest["params"]["fraction"] == 0.25
    assert len(SIZED[method](ds, fraction=0.5).dataset) == 10


@pytest.mark.parametrize("method", sorted(SIZED))
def test_size_needs_exactly_one_of_n_and_fraction(method):
    ds = pool(20)
    for size in ({}, {"n": 5, "fraction": 0.25}):
        with pytest.raises(ValueError, match="exactly one of n") as err:
            SIZED[method](ds, **size)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="fraction=1.5"):
        SIZED[method](ds, fraction=1.5)


def test_options_are_keyword_only():
    ds = pool(10)
    with pytest.raises(TypeError):
        nbgs(ds, 5)
    with pytest.raises(TypeError):
        baselines.top(ds, 5)


def test_random_is_not_a_public_name():
    import hf_vitcurate.select as select

    assert not hasattr(select, "random") and not hasattr(baselines, "random")
    assert "random_subset" in dir(select)


def test_equal_quotas_split_n_evenly_and_give_a_short_group_remainder_to_the_others():
    from hf_vitcurate.select.nbgs import equal_quotas

    assert equal_quotas(9, np.array([5, 5, 5])).tolist() == [3, 3, 3]
    assert equal_quotas(10, np.array([5, 5, 5])).tolist() == [4, 3, 3]  # the extra row: the earlier group
    # A group short of its quota keeps all its rows; the rest is split equally over the others.
    assert equal_quotas(12, np.array([6, 6, 2])).tolist() == [5, 5, 2]
    assert equal_quotas(13, np.array([7, 6, 1])).tolist() == [6, 6, 1]
    assert equal_quotas(14, np.array([7, 6, 1])).tolist() == [7, 6, 1]
    pool = Dataset.from_dict({"id": [f"r{i:02d}" for i in range(25)], "necessity": [float(i) for i in range(25)]})
    # k = 10: groups of 10, 10, 5. Proportional quotas of 10: 4, 4, 2; equal: 4, 3, 3 (3.33 each, remainder first).
    assert nbgs(pool, n=10, k=10, tau=0.0)[1]["quotas"] == [4, 4, 2]
    sub, manifest = nbgs(pool, n=10, k=10, tau=0.0, quotas="equal")
    assert manifest["quotas"] == [4, 3, 3] and manifest["params"]["quotas"] == "equal"
    assert sorted(sub["id"]) == ["r02", "r03", "r04", "r12", "r13", "r14", "r21", "r22", "r23", "r24"]
    assert nbgs(pool, n=24, k=10, tau=0.0, quotas="equal")[1]["quotas"] == [10, 9, 5]
    with pytest.raises(ValueError, match="quotas='even' must be one of"):
        nbgs(pool, n=3, quotas="even")


def fake_mllm_steps(monkeypatch, calls):
    """``mllm_selector`` without a model: training records its call, necessity is the row's index.

    The fakes keep the real signatures (``functools.wraps``): the CLI reads its defaults from them.
    """
    import functools
    import importlib

    from datasets import Features, Value

    from hf_vitcurate import models

    stage = importlib.import_module("hf_vitcurate.stages.necessity")

    @functools.wraps(models.train)
    def train(rows, *, model, output_dir, **options):
        calls.append(("train", len(rows)))
        return str(output_dir)

    @functools.wraps(stage.necessity)
    def necessity(ds, **options):
        feats = Features({**ds.features, "necessity": Value("float64"), "necessity_tokens": Value("int32"),
                          "necessity_flag": Value("string")})
        return ds.map(lambda b, idx: {"necessity": [float(i) for i in idx], "necessity_tokens": [1] * len(idx),
                                      "necessity_flag": [""] * len(idx)}, with_indices=True, batched=True, features=feats)

    def train_or_reuse(rows, *, model, output_dir, **options):
        return train(rows, model=model, output_dir=output_dir), "trained"

    monkeypatch.setattr(models, "train", train)
    monkeypatch.setattr(importlib.import_module("hf_vitcurate.models.cache"), "train_or_reuse", train_or_reuse)
    monkeypatch.setattr(stage, "necessity", necessity)
    monkeypatch.setenv("HF_VITCURATE_TINY_CACHE", "0")  # no model to fingerprint: the stage runs as called


def test_mllm_selector_paper_preset_and_equal_quotas_pass_through(monkeypatch, tmp_path):
    from hf_vitcurate.select.mllm_selector import mllm_selector
    from hf_vitcurate.select.nbgs import PAPER_PRESET, preset_values

    assert PAPER_PRESET == {"n_seed": 100_000, "k": 50_000}
    assert preset_values("paper", n_seed=None, k=None) == (100_000, 50_000)
    assert preset_values("paper", n_seed=10, k=None) == (10, 50_000)  # an explicit value wins
    assert preset_values(None, n_seed=None, k=3) == (None, 3)
    calls = []
    fake_mllm_steps(monkeypatch, calls)
    pool = Dataset.from_dict({"id": [f"r{i:02d}" for i in range(27)]})
    # 27 rows, 2 seed rows, 25 scored, k = 10: groups of 10, 10, 5; n2 = 10 -> equal quotas 4, 3, 3.
    _, manifest = mllm_selector(pool, n=12, model="f_pre", work_dir=tmp_path, n_seed=2, k=10, tau=0.0, quotas="equal")
    assert manifest["nbgs"]["quotas"] == [4, 3, 3] and manifest["params"]["quotas"] == "equal"
    assert calls == [("train", 2)]
    # The paper preset: n1 = 100k exceeds this budget, said before any training.
    with pytest.raises(ValueError, match="n_seed=100000 exceeds the budget m=12"):
        mllm_selector(pool, n=12, model="f_pre", work_dir=tmp_path, preset="paper")
    _, manifest = mllm_selector(pool, n=12, model="f_pre", work_dir=tmp_path, n_seed=2, preset="paper", tau=0.0)
    assert manifest["params"]["k"] == 50_000 and manifest["params"]["preset"] == "paper"
    with pytest.raises(ValueError, match="preset='tiny' must be one of"):
        mllm_selector(pool, n=12, model="f_pre", work_dir=tmp_path, preset="tiny")
    assert calls == [("train", 2), ("train", 2)]


def _pinned_pool(n: int, *, ties: bool) -> Dataset:
    scores = np.random.default_rng(0).normal(50, 10, n)
    scores = np.round(scores) if ties else scores
    return Dataset.from_dict({"id": [f"r{i:05d}" for i in range(n)][::-1], "necessity": scores.tolist()})


# sha256 (first 16 hex digits) of "\n".join(manifest["ids"]) as drawn by the first vectorised
# version (argsort + per-group argpartition, before the packed-key sort): a faster NBGS must
# draw the very same rows for the same seed, with and without tied scores.
PINNED = [
    ({"n": 500, "k": 300, "tau": 1.0, "seed": 0}, "e611557ebea70523", "bdaa65b01a162a20"),
    ({"n": 500, "k": 300, "tau": 5.0, "seed": 3}, "604d31d83a5da233", "d7a366de4401a0b1"),
    ({"n": 500, "k": 300, "tau": 0.0, "seed": 0}, "e3ee86b51c564369", "cb140380e7fade50"),
    ({"n": 500, "k": 300, "tau": float("inf"), "seed": 2}, "a07692f31e763bcc", "a403031a73373c62"),
    ({"n": 500, "k": 300, "tau": 0.7, "seed": 1, "standardize": True}, "fd9b7b88a09fa0c0", "105699561ff915e7"),
    ({"n": 700, "k": 1, "tau": 1.0, "seed": 0}, "0220ede1b4a0c850", "26ebcf18c89a87ef"),
    ({"n": 300, "k": 2, "tau": 3.0, "seed": 5}, "d3394f027f0d7432", "301f0f4922e3a879"),
    ({"fraction": 0.3, "k": 97, "tau": 2.0, "seed": 9, "quotas": "equal"}, "f158e3c48dd31bdd", "c8f1ff7d1ca11db0"),
]


@pytest.mark.parametrize("options, distinct, tied", PINNED)
def test_draws_are_pinned(options, distinct, tied):
    import hashlib

    for ties, expected in ((False, distinct), (True, tied)):
        ids = nbgs(_pinned_pool(3000, ties=ties), **options).manifest["ids"]
        assert hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] == expected


def test_draws_are_pinned_with_many_groups():
    import hashlib

    ids = nbgs(_pinned_pool(24000, ties=False), n=5000, k=2, tau=1.0, seed=4).manifest["ids"]  # 12,000 groups
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] == "78f9728db280241f"


def test_descending_order_is_a_stable_descending_argsort():
    from hf_vitcurate.select.nbgs import descending_order

    rng = np.random.default_rng(0)
    cases = [rng.normal(100, 30, 50_000), rng.random(50_000), rng.integers(0, 500, 50_000).astype(float),
             np.array([0.0, -0.0, 1e-300, -1e-300, 5e300, -np.inf, np.inf, 1.0, 1.0 + 2**-52]), np.zeros(0), np.ones(1)]
    # Scores that agree in their high bits (1 + tiny steps) exercise the re-sorted runs.
    cases.append(1.0 + rng.integers(0, 2**20, 50_000) * 2.0**-52)
    for scores in cases:
        assert descending_order(scores).tolist() == np.argsort(-scores, kind="stable").tolist()
