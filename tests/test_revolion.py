"""REVO-LION: splits, MQ^D/DQ/SQ formulas, S1/S2/S3, release, answers, and a small tune-cross-evaluation."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from datasets import Dataset, load_from_disk

from hf_vitcurate import provenance
from hf_vitcurate.columns import list_column, numpy_column
from hf_vitcurate.results import DriverSelection, Selection
from hf_vitcurate.select.revolion import (
    DQTable,
    add_sq,
    dq_table,
    dq_vector,
    mq_matrix,
    quota,
    release,
    s1,
    s2,
    s3,
    split_protocol,
)


def conv(q: str, a: str) -> list[dict]:
    return [{"from": "human", "value": q}, {"from": "gpt", "value": a}]


# --- formulas on a small fixed matrix ----------------------------------------------------

# mq__T of each row (rows of dataset T have no mq__T): two rows per dataset.
FIXED = {
    "id": ["a1", "a2", "b1", "b2", "c1", "c2"],
    "source": ["A", "A", "B", "B", "C", "C"],
    "mq__A": [None, None, 0.2, 0.4, 0.1, 0.3],
    "mq__B": [0.5, 0.7, None, None, 0.6, 0.2],
    "mq__C": [0.1, 0.1, 0.8, 0.0, None, None],
}


@pytest.fixture()
def fixed() -> Dataset:
    return Dataset.from_dict(FIXED)


def test_mq_matrix_and_dq_by_hand(fixed):
    names, m = mq_matrix(fixed)
    assert names == ["A", "B", "C"]
    # M[T, i] = mean of mq__T over dataset i; M[T, T] = 1.
    expected = np.array([[1.0, 0.3, 0.2], [0.6, 1.0, 0.4], [0.1, 0.4, 1.0]])
    np.testing.assert_allclose(m, expected, atol=1e-12)
    # DQ_T = 1 + sum over i != T (Eq. 2).
    np.testing.assert_allclose(dq_vector(m), [1.5, 2.0, 1.5], atol=1e-12)
    table = dq_table(fixed)
    assert table.weights() == pytest.approx({"A": 1.5, "B": 2.0, "C": 1.5})
    assert table.rows()[1] == {"tuned on": "B", "A": 0.6, "B": 1.0, "C": 0.4, "DQ": 2.0}
    assert table.to_markdown().splitlines()[0] == "| tuned on | A | B | C | DQ |"
    assert table.to_csv().splitlines()[0] == "tuned on,A,B,C,DQ"


def test_sq_uses_raw_dq_weights(fixed):
    out = add_sq(fixed, dq=dq_table(fixed))
    # SQ of a row of E = sum over i != E of DQ_i * mq__i (DQ = A 1.5, B 2.0, C 1.5).
    expected = [
        2.0 * 0.5 + 1.5 * 0.1,  # a1
        2.0 * 0.7 + 1.5 * 0.1,  # a2
        1.5 * 0.2 + 1.5 * 0.8,  # b1
        1.5 * 0.4 + 1.5 * 0.0,  # b2
        1.5 * 0.1 + 2.0 * 0.6,  # c1
        1.5 * 0.3 + 2.0 * 0.2,  # c2
    ]
    np.testing.assert_allclose(numpy_column(out, "sq"), expected, atol=1e-12)
    assert provenance.steps(out)[-1]["name"] == "sq"
    # Weights given as a plain dict work the same; a missing score is an error naming the row.
    np.testing.assert_allclose(numpy_column(add_sq(fixed, dq={"A": 1.5, "B": 2.0, "C": 1.5}), "sq"), expected)
    broken = Dataset.from_dict({**FIXED, "mq__A": [None, None, None, 0.4, 0.1, 0.3]})
    with pytest.raises(ValueError, match="b1"):
        add_sq(broken, dq={"A": 1.0, "B": 1.0, "C": 1.0})


def test_dq_vector_rejects_missing_cells():
    with pytest.raises(ValueError, match="missing"):
        dq_vector(np.array([[1.0, np.nan], [0.2, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        dq_vector(np.ones((2, 3)))


def test_mq_matrix_sum_reduce_recomputes_corpus_scores():
    from hf_vitcurate.metrics import mq_dataset

    ds = Dataset.from_dict({
        "id": ["a1", "a2", "b1", "b2"], "source": ["A", "A", "B", "B"],
        "conversations": [conv("q", "a red circle"), conv("q", "two squares"),
                          conv("q", "yes it is"), conv("q", "no")],
        "answer__A": [None, None, "yes", "no it is not"],
        "answer__B": ["a red square", "two blue squares", None, None],
    })
    names, m = mq_matrix(ds, reduce="sum")
    assert m[0, 1] == pytest.approx(mq_dataset(["yes", "no it is not"], ["yes it is", "no"], reduce="sum"))
    assert m[1, 0] == pytest.approx(mq_dataset(["a red square", "two blue squares"], ["a red circle", "two squares"],
                                               reduce="sum"))
    assert m[0, 1] > 1 or m[1, 0] > 1  # sums of six scores: Table 6 magnitudes


# --- selections ----------------------------------------------------------------------------


@pytest.fixture()
def scored() -> Dataset:
    # Dataset A: 5 rows with a tie at 0.5; dataset B: 4 rows.
    return Dataset.from_dict({
        "id": ["a5", "a4", "a3", "a2", "a1", "b1", "b2", "b3", "b4"],
        "source": ["A"] * 5 + ["B"] * 4,
        "sq": [0.9, 0.5, 0.5, 0.5, 0.1, 3.0, 1.0, 2.0, 0.0],
    })


def test_quota_rounds_half_up_exactly():
    assert [quota(0.5, n) for n in (4, 5, 7)] == [2, 3, 4]
    assert quota(0.7, 10) == 7 and quota(0.3, 10) == 3 and quota(0.1, 3) == 0 and quota(1.0, 9) == 9
    with pytest.raises(ValueError):
        quota(1.5, 10)


def test_s1_exact_counts_and_ties_by_id(scored):
    sub, manifest = s1(scored, fraction=0.5)
    # A: round(2.5) = 3 rows: 0.9 then two of the three 0.5 ties, by id (a2, a3). B: 2 rows (3.0, 2.0).
    assert sorted(list_column(sub, "id")) == ["a2", "a3", "a5", "b1", "b3"]
    assert manifest["groups"]["A"] == {"n": 5, "quota": 3, "kept": 3, "threshold": 0.5}
    assert manifest["n_selected"] == 5 and manifest["method"] == "revolion_s1"
    # The paper's ">= threshold" keeps every tie.
    sub_t, m_t = s1(scored, fraction=0.5, threshold=True)
    assert sorted(list_column(sub_t, "id")) == ["a2", "a3", "a4", "a5", "b1", "b3"]
    assert m_t["groups"]["A"]["kept"] == 4
    # Pool order is kept; provenance records the selection.
    assert list_column(sub, "id") == ["a5", "a3", "a2", "b1", "b3"]
    assert provenance.steps(sub)[-1]["params"]["fraction"] == 0.5


def test_selections_are_selections_and_keyword_only(scored):
    for result in (s1(scored, fraction=0.5), s2(scored, fraction=0.5), s3(scored, lam=1.0),
                   release(scored, fraction=0.5, eval_size=1), split_protocol(scored, seed=1, eval_size=1)):
        assert isinstance(result, Selection)
        data, manifest = result
        assert data is result.dataset and manifest["method"].startswith("revolion")
    # The paper's P is `fraction`; the release's 0.7 is the default of S1, S2 and the release.
    assert s1(scored)[1]["params"]["fraction"] == s2(scored)[1]["params"]["fraction"] == 0.7
    for call in (lambda: s1(scored, 0.5), lambda: s3(scored, 1.0), lambda: release(scored, 0.7),
                 lambda: split_protocol(scored, "SPLIT1")):
        with pytest.raises(TypeError):
            call()
    with pytest.raises(ValueError, match="fraction=1.5"):
        s1(scored, fraction=1.5)


def test_s2_same_counts_random_and_seeded(scored):
    sub, manifest = s2(scored, fraction=0.5, seed=3)
    assert {k: g["kept"] for k, g in manifest["groups"].items()} == {"A": 3, "B": 2}
    ids = list_column(sub, "id")
    assert sum(i.startswith("a") for i in ids) == 3 and len(ids) == 5
    assert list_column(s2(scored, fraction=0.5, seed=3)[0], "id") == ids
    draws = {tuple(list_column(s2(scored, fraction=0.5, seed=s)[0], "id")) for s in range(10)}
    assert len(draws) > 1


def test_s3_gaussian_band(scored):
    sub, manifest = s3(scored, lam=1.0)
    a = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    mu, sigma = a.mean(), a.std()
    assert manifest["groups"]["A"]["mean"] == pytest.approx(mu) and manifest["groups"]["A"]["std"] == pytest.approx(sigma)
    kept_a = sorted(i for i, v in zip(["a5", "a4", "a3", "a2", "a1"], a) if mu - sigma <= v <= mu + sigma)
    assert sorted(i for i in list_column(sub, "id") if i.startswith("a")) == kept_a
    # Wider bands keep more, never fewer.
    sizes = [s3(scored, lam=lam)[1]["n_selected"] for lam in (1.0, 1.5, 2.0)]
    assert sizes == sorted(sizes) and sizes[-1] <= len(scored)
    assert s3(scored, lam=1.0, ddof=1)[1]["params"]["ddof"] == 1


def test_selection_refuses_missing_scores(scored):
    with pytest.raises(KeyError, match="sq"):
        s1(scored.remove_columns(["sq"]), fraction=0.5)
    bad = Dataset.from_dict({"id": ["x", "y"], "source": ["A", "A"], "sq": [1.0, float("nan")]})
    with pytest.raises(ValueError, match="'y'"):
        s1(bad, fraction=0.5)


# --- splits and release ------------------------------------------------------------------


def pool(sizes: dict[str, int]) -> Dataset:
    ids, src = [], []
    for name, n in sizes.items():
        ids += [f"{name}-{i:03d}" for i in range(n)]
        src += [name] * n
    rng = np.random.default_rng(0)
    return Dataset.from_dict({"id": ids, "source": src, "sq": rng.random(len(ids)).tolist()})


def test_split_sizes_disjoint_and_deterministic():
    ds = pool({"A": 30, "B": 1000, "C": 3})
    parts, manifest = split_protocol(ds, seed="SPLIT1", eval_size=100)
    assert manifest["groups"]["A"] == {"n": 30, "tune": 24, "heldout": 6, "eval": 6}
    assert manifest["groups"]["B"] == {"n": 1000, "tune": 800, "heldout": 200, "eval": 100}
    assert manifest["groups"]["C"] == {"n": 3, "tune": 2, "heldout": 1, "eval": 1}
    tune, ev = set(list_column(parts["tune"], "id")), set(list_column(parts["eval"], "id"))
    assert not tune & ev and len(tune) == 826 and len(ev) == 107
    again, _ = split_protocol(ds, seed="SPLIT1", eval_size=100)
    assert list_column(again["tune"], "id") == list_column(parts["tune"], "id")
    other, m2 = split_protocol(ds, seed="SPLIT2", eval_size=100)
    assert list_column(other["tune"], "id") != list_column(parts["tune"], "id") and m2["seed"] == 2
    # The default Eval600 and a dataset's split do not depend on the other datasets in the pool.
    alone, _ = split_protocol(pool({"B": 1000}), seed="SPLIT1", eval_size=100)
    assert list_column(alone["eval"], "id") == [i for i in list_column(parts["eval"], "id") if i.startswith("B")]
    assert split_protocol(ds, seed=7)[1]["groups"]["B"]["eval"] == 200  # eval_size 600 > 200 held out
    with pytest.raises(ValueError, match="SPLIT"):
        split_protocol(ds, seed="SPLIT3")


def test_release_counts_and_parts():
    ds = pool({"A": 40, "B": 900})
    parts, manifest = release(ds, eval_size=600)
    s1_ids = set(manifest["s1"]["ids"])
    assert manifest["groups"]["A"] == {"refined": 28, "eval": 28, "tune": 0}
    assert manifest["groups"]["B"] == {"refined": 630, "eval": 600, "tune": 30}
    tune, ev = set(list_column(parts["tune"], "id")), set(list_column(parts["eval"], "id"))
    assert not tune & ev and tune | ev == s1_ids
    # S1 kept the highest SQ of each dataset.
    sq = dict(zip(list_column(ds, "id"), numpy_column(ds, "sq")))
    b_kept = [sq[i] for i in s1_ids if i.startswith("B")]
    b_dropped = [v for i, v in sq.items() if i.startswith("B") and i not in s1_ids]
    assert min(b_kept) >= max(b_dropped)
    assert [s["name"] for s in provenance.steps(parts["eval"])][-2:] == ["revolion_s1", "revolion_eval"]


# --- stages: answers and mq ----------------------------------------------------------------


def test_mq_stage_scores_against_last_gpt_turn():
    from hf_vitcurate.metrics import mq_scores
    from hf_vitcurate.stages.mq import mq

    ds = Dataset.from_dict({
        "id": ["r1", "r2", "r3"],
        "conversations": [conv("q", "a red circle"),
                          conv("q1", "first answer") + conv("q2", "two blue squares"),
                          conv("q", "yes")],
        "answer__llava": ["a red circle", "two squares", None],
    })
    out = mq(ds, answer_column="answer__llava", components=True)
    expected = mq_scores(["a red circle", "two squares", ""], ["a red circle", "two blue squares", "yes"])
    np.testing.assert_allclose(numpy_column(out, "mq__llava"), expected["mq"], atol=1e-12)
    np.testing.assert_allclose(numpy_column(out, "mq__llava__meteor"), expected["meteor"], atol=1e-12)
    assert out.column_names[:3] == ds.column_names[:3]
    c3 = mq(ds, answer_column="answer__llava", model_name="m", variant="C3")
    np.testing.assert_allclose(numpy_column(c3, "mq__m"), mq_scores(["a red circle", "two squares", ""],
                               ["a red circle", "two blue squares", "yes"], variant="C3")["mq"], atol=1e-12)
    with pytest.raises(KeyError, match="generate"):
        mq(ds, answer_column="answer__missing")


def test_generate_stage_matches_models_generate_and_resumes(tiny_model_path, toy_vit, tmp_path, monkeypatch):
    from hf_vitcurate.models import generate_answers, loading
    from hf_vitcurate.stages.generate import generate

    rows = toy_vit.select(range(10))
    out = generate(rows, model=tiny_model_path, column="answer__toy", max_new_tokens=3, batch_size=4, chunk_size=4,
                   work_dir=tmp_path / "answers")
    answers = list_column(out, "answer__toy")
    assert answers == generate_answers(rows, model=tiny_model_path, max_new_tokens=3, batch_size=4, progress=False)
    assert provenance.steps(out)[-1]["params"]["max_new_tokens"] == 3

    def no_model(*a, **k):
        raise AssertionError("a finished run must not load the model again")

    real_load = loading.load
    monkeypatch.setattr(loading, "load", no_model)
    again = generate(rows, model=tiny_model_path, column="answer__toy", max_new_tokens=3, batch_size=4, chunk_size=4,
                     work_dir=tmp_path / "answers")
    assert list_column(again, "answer__toy") == answers

    # keep_loaded: one model answering two datasets is loaded once.
    from hf_vitcurate.stages.generate import release_model

    calls = []
    monkeypatch.setattr(loading, "load", lambda *a, **k: calls.append(a) or real_load(*a, **k))
    for part in (rows.select(range(5)), rows.select(range(5, 10))):
        generate(part, model=tiny_model_path, column="a", max_new_tokens=2, keep_loaded=True)
    assert len(calls) == 1
    # A checkpoint rewritten in place, its mtime put back (as ``cp -p`` does), is loaded again.
    import shutil

    copy = shutil.copytree(tiny_model_path, tmp_path / "copy")
    generate(rows.select(range(2)), model=copy, column="a", max_new_tokens=2, keep_loaded=True)
    weights = os.path.join(copy, "model.safetensors")
    before = os.stat(weights)
    shutil.copyfile(weights, weights + ".new")
    os.replace(weights + ".new", weights)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    generate(rows.select(range(2)), model=copy, column="a", max_new_tokens=2, keep_loaded=True)
    release_model()
    assert len(calls) == 3


# --- tune-cross-evaluation end to end --------------------------------------------------------


def three_sources(toy_vit) -> dict[str, Dataset]:
    """Three small protocol datasets about the same toy images, with overlapping wording."""
    styles = {
        "color_qa": lambda c: ("What color is the square?", f"It is {c}."),
        "judge": lambda c: ("Is the square red?", "Yes, it is red." if c == "red" else f"No, it is {c}."),
        "caption": lambda c: ("Describe the image.", f"A {c} square on a white background."),
    }
    images = [r for r in toy_vit if len(r["images"]) == 1 and len(r["conversations"]) == 2]
    out = {}
    for name, style in styles.items():
        rows = {"id": [], "images": [], "conversations": [], "source": [], "task": []}
        for k in range(30):
            r = images[k % len(images)]
            q, a = style(r["conversations"][1]["value"])
            rows["id"].append(f"{name}-{k:02d}")
            rows["images"].append(r["images"])
            rows["conversations"].append(conv("<image>\n" + q, a))
            rows["source"].append(name)
            rows["task"].append("short_vqa")
        out[name] = Dataset.from_dict(rows, features=toy_vit.features)
    return out


RECIPE = dict(max_steps=20, batch_size=8, learning_rate=3e-3, warmup_ratio=0.0, progress=False)


@pytest.mark.slow
def test_tune_cross_evaluate_end_to_end_and_cached(tiny_model_path, toy_vit, tmp_path, monkeypatch):
    from hf_vitcurate.metrics import mq_scores
    from hf_vitcurate.models import loading, training
    from hf_vitcurate.select.revolion_driver import tune_cross_evaluate
    from hf_vitcurate.stages.mq import last_answers

    sources = three_sources(toy_vit)
    work = tmp_path / "revo"
    result = tune_cross_evaluate(sources, model=tiny_model_path, work_dir=work, recipe=RECIPE, max_new_tokens=6,
                                 batch_size=16, chunk_size=32)
    names = ["caption", "color_qa", "judge"]
    assert isinstance(result, DriverSelection)
    pool, manifest = result
    assert manifest["trained"] == names and manifest["reused"] == [] and manifest["by"] == "source"
    assert len(pool) == 90 and {f"{p}__{n}" for p in ("answer", "mq") for n in names} <= set(pool.column_names)
    src = list_column(pool, "source")
    refs = last_answers(pool.select_columns(["conversations"]).with_format("arrow")[:]).to_pylist()
    for model in names:
        answers, values = list_column(pool, f"answer__{model}"), numpy_column(pool, f"mq__{model}")
        own = np.array([s == model for s in src])
        assert all(a is None for a, o in zip(answers, own) if o) and np.isnan(values[own]).all()
        other = np.flatnonzero(~own)
        expected = mq_scores([answers[i] for i in other], [refs[i] for i in other])["mq"]
        np.testing.assert_allclose(values[other], expected, atol=1e-12)
    # DQ from the columns (Eq. 2) and SQ with raw DQ weights (Eq. 3).
    table = result.dq
    for t, model in enumerate(names):
        values = numpy_column(pool, f"mq__{model}")
        for i, name in enumerate(names):
            mean = 1.0 if i == t else values[np.array(src) == name].mean()
            assert table.matrix[t, i] == pytest.approx(mean, abs=1e-12)
    assert table.dq == pytest.approx(1 + table.matrix.sum(1) - 1, abs=1e-12)
    w = table.weights()
    sq = numpy_column(pool, "sq")
    for r in (0, 45, 89):
        expected = sum(w[m] * numpy_column(pool, f"mq__{m}")[r] for m in names if m != src[r])
        assert sq[r] == pytest.approx(expected, abs=1e-12)
    assert (table.matrix[~np.eye(3, dtype=bool)] > 0).any(), "overlapping wording gives some non-zero MQ"
    for f in ("dq.csv", "dq.md", "dq.json", "dq_heatmap.png", "sq_hist.png"):
        assert os.path.getsize(work / f) > 0
    assert json.loads((work / "dq.json").read_text())["trained"] == names

    # Second call: every model comes from the cache and every answer from the finished chunks.
    def forbidden(*a, **k):
        raise AssertionError("nothing may be trained or loaded twice")

    monkeypatch.setattr(training, "train", forbidden)
    monkeypatch.setattr(loading, "load", forbidden)
    again = tune_cross_evaluate(sources, model=tiny_model_path, work_dir=work, recipe=RECIPE, max_new_tokens=6,
                                batch_size=16, chunk_size=32)
    assert again.manifest["trained"] == [] and again.manifest["reused"] == names
    np.testing.assert_array_equal(numpy_column(again.dataset, "sq"), sq)
    # Each model's folder is named by its training run's identity: another recipe is another model.
    from hf_vitcurate.models.training import train_identity

    key = train_identity(sources["judge"], model=tiny_model_path, recipe={"seed": 0, **RECIPE})["key"]
    assert again.manifest["models"]["judge"] == str(work / "models" / f"judge-{key}")
    assert key != train_identity(sources["judge"], model=tiny_model_path, recipe={"seed": 0, **RECIPE, "max_steps": 21})["key"]

    # The selections run on the result; the release publishes with the REVO-LION card.
    parts, manifest = release(pool, fraction=0.7, eval_size=5)
    assert {k: v["eval"] for k, v in manifest["groups"].items()} == {n: 5 for n in names}
    assert len(parts["tune"]) == 3 * (21 - 5)
    from hf_vitcurate.hub import publish
    from hf_vitcurate.select.revolion_report import card_data

    out = publish({"Tune": parts["tune"].remove_columns(["images"]), "Eval": parts["eval"].remove_columns(["images"])},
                  "test/revo-lion", local_dir=str(tmp_path / "hub"), card="revo_lion",
                  card_data=card_data(result, manifest))
    readme = open(os.path.join(out, "README.md")).read()
    assert "REVO-LION" in readme and "DQ" in readme and "dq_heat_map.png" in readme


@pytest.mark.slow
def test_tune_cross_evaluate_never_reuses_a_stale_model_or_answer(tiny_model_path, toy_vit, tmp_path):
    """Issue 19: changed data (images too) or another recipe gives a new fine-tune and new answers."""
    from hf_vitcurate.select.revolion_driver import tune_cross_evaluate

    sources = {k: v.select(range(4)) for k, v in three_sources(toy_vit).items() if k != "judge"}
    recipe = dict(max_steps=1, batch_size=4, warmup_ratio=0.0, progress=False)
    work = tmp_path / "revo"

    def run(srcs, rec):
        result = tune_cross_evaluate(srcs, model=tiny_model_path, work_dir=work, recipe=rec, max_new_tokens=2,
                                     batch_size=4, chunk_size=4)
        return result.manifest, {str(p.relative_to(work)) for p in (work / "answers").glob("*/*")}

    first, answers = run(sources, recipe)
    assert first["trained"] == ["caption", "color_qa"] and len(answers) == 2
    again, same_answers = run(sources, recipe)
    assert again["reused"] == ["caption", "color_qa"] and same_answers == answers
    # Other images under the same ids and conversations: caption's model is trained again, and
    # color_qa's model answers the changed caption rows anew (a new answers folder).
    swapped = Dataset.from_dict({**{k: list_column(sources["caption"], k) for k in ("id", "conversations", "source", "task")},
                                 "images": [r["images"] for r in sources["caption"].select([1, 0, 3, 2])]},
                                features=sources["caption"].features)
    changed, answers2 = run({**sources, "caption": swapped}, recipe)
    assert changed["trained"] == ["caption"] and changed["reused"] == ["color_qa"]
    assert changed["models"]["caption"] != first["models"]["caption"]
    assert len(answers2 - answers) == 2  # both models answered something new
    # Another recipe: every model trained again, every answer new.
    other, answers3 = run(sources, dict(recipe, learning_rate=5e-4))
    assert other["trained"] == ["caption", "color_qa"] and len(answers3 - answers2) == 2


@pytest.mark.slow
def test_an_image_edited_at_its_path_gives_a_new_model_and_new_answers(tiny_model_path, toy_vit, tmp_path):
    """Images stored as paths (as the LLaVA converter stores them): a rerun in the same work_dir after one image
    file was fixed trains that source's model anew and answers its rows anew (both were reused, stale)."""
    from PIL import Image

    from hf_vitcurate.select.revolion_driver import tune_cross_evaluate

    sources, folder = {}, tmp_path / "images"
    folder.mkdir()
    for name, ds in three_sources(toy_vit).items():
        if name == "judge":
            continue
        ds = ds.select(range(4))
        paths = []
        for i, row in enumerate(ds):
            row["images"][0].save(folder / f"{name}-{i}.png")
            paths.append([str(folder / f"{name}-{i}.png")])
        sources[name] = Dataset.from_dict({**ds.remove_columns(["images"]).to_dict(), "images": paths},
                                          features=ds.features)
    work = tmp_path / "revo"

    def run():
        result = tune_cross_evaluate(sources, model=tiny_model_path, work_dir=work, recipe=RECIPE | {"max_steps": 1},
                                     max_new_tokens=2, batch_size=4, chunk_size=4)
        return result.manifest, {str(p.relative_to(work)) for p in (work / "answers").glob("*/*")}

    first, answers = run()
    again, same = run()
    assert again["reused"] == ["caption", "color_qa"] and same == answers
    image = Image.open(folder / "caption-0.png").convert("RGB")
    image.putpixel((0, 0), tuple(255 - v for v in image.getpixel((0, 0))))
    image.save(folder / "caption-0.png")
    changed, answers2 = run()
    assert changed["trained"] == ["caption"] and changed["reused"] == ["color_qa"]
    assert len(answers2 - answers) == 2  # color_qa's model on the fixed rows, and the new caption model


def test_cli_select_release_and_split(tmp_path, scored):
    from hf_vitcurate.cli import main

    scored.save_to_disk(str(tmp_path / "scored"))
    assert main(["revolion", "select", "s1", str(tmp_path / "scored"), "--fraction", "0.5", "--output",
                 str(tmp_path / "s1"), "--manifest", str(tmp_path / "s1.json")]) == 0
    assert sorted(load_from_disk(str(tmp_path / "s1"))["id"]) == ["a2", "a3", "a5", "b1", "b3"]
    assert json.loads((tmp_path / "s1.json").read_text())["groups"]["B"]["kept"] == 2
    assert main(["revolion", "release", str(tmp_path / "scored"), "--fraction", "0.5", "--eval-size", "1",
                 "--output", str(tmp_path / "rel")]) == 0
    rel = load_from_disk(str(tmp_path / "rel"))
    assert len(rel["eval"]) == 2 and len(rel["tune"]) == 3
    assert main(["revolion", "split", str(tmp_path / "scored"), "--seed", "SPLIT2", "--eval-size", "1",
                 "--output", str(tmp_path / "split")]) == 0
    assert len(load_from_disk(str(tmp_path / "split"))["eval"]) == 2


def test_dq_table_roundtrip_and_heatmap(fixed, tmp_path):
    from hf_vitcurate.select.revolion_report import dq_heatmap, save_png, sq_histograms

    table = DQTable.from_matrix(*mq_matrix(fixed))
    save_png(dq_heatmap(table), str(tmp_path / "dq.png"))
    save_png(sq_histograms(add_sq(fixed, dq=table)), str(tmp_path / "sq.png"))
    assert (tmp_path / "dq.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "sq.png").stat().st_size > 0
    assert table.to_dict()["dq"] == pytest.approx([1.5, 2.0, 1.5])


def test_model_and_answer_keys_and_dataset_names(tiny_model_path, tmp_path):
    from hf_vitcurate.models.training import train_identity
    from hf_vitcurate.select.revolion_driver import answers_key, fine_tune, pool_sources

    a = Dataset.from_dict({"id": ["x", "y"], "source": ["A", "A"], "conversations": [conv("q", "a"), conv("q", "b")]})
    b = Dataset.from_dict({"id": ["x", "y"], "source": ["A", "A"], "conversations": [conv("q", "a"), conv("q", "c")]})
    same = a.select([0, 1])  # the same rows by another route (another datasets fingerprint): the same key

    def key(ds, **recipe):
        return train_identity(ds, model=tiny_model_path, recipe={"max_steps": 2, **recipe})["key"]

    assert key(a) == key(same) and key(a) != key(b) and key(a) != key(a, max_steps=3)
    # The key fine_tune names model_T's folder with: a finished run there is found, not trained again.
    ident = train_identity(same, model=tiny_model_path, recipe={"max_steps": 2})
    folder = tmp_path / "models" / f"A-{key(a)}"
    folder.mkdir(parents=True)
    (folder / "train_log.json").write_text(json.dumps({"complete": True, "identity": ident}))
    assert fine_tune(a, model=tiny_model_path, name="A", work_dir=str(tmp_path), recipe={"max_steps": 2},
                     cache=False) == (str(folder), "found")
    assert answers_key(a, {"max_new_tokens": 4}) == answers_key(same, {"max_new_tokens": 4})
    assert answers_key(a, {"max_new_tokens": 4}) not in (answers_key(b, {"max_new_tokens": 4}),
                                                        answers_key(a, {"max_new_tokens": 5}))
    assert pool_sources({"A": a, "B": b.map(lambda r: {"source": "B"})}) == (["A", "B"], "source")
    # Rows whose `source` is not their dataset's name get a `dataset` column instead.
    assert pool_sources({"first": a, "second": b}) == (["first", "second"], "dataset")


def test_a_source_fingerprint_is_what_training_and_answering_hash(tiny_model_path, toy_vit):
    """The driver computes each source's fingerprint once and passes it on: it must be the very value that
    training and generate's chunks would compute themselves, so passing it never changes a key."""
    from hf_vitcurate.distributed import run_identity
    from hf_vitcurate.models.training import train_identity
    from hf_vitcurate.select.revolion_driver import READ, source_fingerprint

    for ds in (toy_vit.select(range(4)), toy_vit.select(range(4)).remove_columns(["images"])):
        read = ds.select_columns([c for c in READ if c in ds.column_names])  # what generate keys its chunks by
        assert source_fingerprint(ds) == train_identity(ds, model=tiny_model_path, recipe={})["data"] == \
            run_identity(read, {})["data"]
    assert source_fingerprint(toy_vit.select(range(4))) != source_fingerprint(toy_vit.select([1, 0, 2, 3]))


def test_release_threshold_keeps_every_tie_at_the_s1_threshold(scored):
    # A at P = 0.5: three 0.5 ties straddle the cut; threshold=True keeps all of them (S1's ">= tau").
    parts, manifest = release(scored, fraction=0.5, eval_size=1, threshold=True)
    assert manifest["s1"]["groups"]["A"]["kept"] == 4 and manifest["params"]["threshold"] is True
    assert sorted(manifest["s1"]["ids"]) == ["a2", "a3", "a4", "a5", "b1", "b3"]
    assert len(parts["tune"]) + len(parts["eval"]) == 6
    _, exact = release(scored, fraction=0.5, eval_size=1)
    assert exact["s1"]["groups"]["A"]["kept"] == 3 and exact["params"]["threshold"] is False


def test_cli_sq_from_mq_columns_and_mq_score_files(fixed, tmp_path, capsys):
    """`revolion sq` gives DQ and SQ from mq__* columns without training; `mq-score` reads files."""
    from hf_vitcurate.cli import main
    from hf_vitcurate.metrics import mq_scores

    fixed.save_to_disk(str(tmp_path / "answered"))
    assert main(["-q", "revolion", "sq", str(tmp_path / "answered"), "--output", str(tmp_path / "scored")]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{"):])  # the DQ table, then the summary
    assert summary["dq"] == pytest.approx({"A": 1.5, "B": 2.0, "C": 1.5})
    np.testing.assert_allclose(numpy_column(load_from_disk(str(tmp_path / "scored")), "sq"),
                               numpy_column(add_sq(fixed, dq=dq_table(fixed)), "sq"), atol=1e-12)
    # Then S1 straight from the CLI's output.
    assert main(["-q", "revolion", "select", "s1", str(tmp_path / "scored"), "--fraction", "0.5",
                 "--output", str(tmp_path / "s1")]) == 0
    capsys.readouterr()
    preds, refs = ["a red circle", "two squares", "a blue dot"], ["a red circle on the left", "two squares", "a dot"]
    (tmp_path / "p.txt").write_text("\n".join(preds) + "\n")
    (tmp_path / "r.json").write_text(json.dumps(refs))
    assert main(["-q", "revolion", "mq-score", "--predictions-file", str(tmp_path / "p.txt"),
                 "--references-file", str(tmp_path / "r.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 3 and out["mq"] == pytest.approx(mq_scores(preds, refs)["mq"])
    assert out["mean"]["mq"] == pytest.approx(float(np.mean(mq_scores(preds, refs)["mq"])))
    # Texts and a file for the same side is one clear error.
    assert main(["revolion", "mq-score", "--predictions", "a", "--predictions-file", str(tmp_path / "p.txt"),
                 "--references", "a"]) == 2
    assert "either --predictions or --predictions-file" in capsys.readouterr().err


@pytest.mark.slow
def test_tune_cross_evaluate_scores_every_turn_of_multi_turn_rows(tiny_model_path, toy_vit, tmp_path, caplog):
    """Issue 18 item 6: multi-turn rows become single-turn triplets by default (the paper's unit)."""
    from hf_vitcurate.schema import FEATURES
    from hf_vitcurate.select.revolion_driver import tune_cross_evaluate

    sources = {k: v.select(range(3)) for k, v in three_sources(toy_vit).items() if k != "judge"}
    first = next(iter(sorted(sources)))
    rows = sources[first].to_list()
    rows[0]["conversations"] = rows[0]["conversations"] + [{"from": "human", "value": "And again?"},
                                                          {"from": "gpt", "value": "yes"}]
    sources[first] = Dataset.from_list(rows, features=sources[first].features)
    assert FEATURES.keys() <= set(sources[first].features)
    recipe = dict(max_steps=1, batch_size=4, warmup_ratio=0.0, progress=False)
    pool, manifest = tune_cross_evaluate(sources, model=tiny_model_path, work_dir=tmp_path / "a", recipe=recipe,
                                         max_new_tokens=2, batch_size=4, chunk_size=4)
    ids = list_column(pool, "id")
    parent = rows[0]["id"]
    assert f"{parent}#t0" in ids and f"{parent}#t1" in ids and parent not in ids
    assert len(pool) == sum(len(v) for v in sources.values()) + 1  # one more row: the second turn
    other = next(n for n in sorted(sources) if n != first)
    scores = dict(zip(ids, numpy_column(pool, f"mq__{other}")))
    assert np.isfinite(scores[f"{parent}#t0"]) and np.isfinite(scores[f"{parent}#t1"])
    assert manifest["params"]["explode"] is True
    # explode=False keeps rows whole and says that only the last turn is scored.
    with caplog.at_level("INFO", logger="hf_vitcurate"):
        whole, _ = tune_cross_evaluate(sources, model=tiny_model_path, work_dir=tmp_path / "b", recipe=recipe,
                                       max_new_tokens=2, batch_size=4, chunk_size=4, explode=False)
    assert parent in list_column(whole, "id") and "only their last turn" in caplog.text
