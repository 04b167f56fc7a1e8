"""ShapesWorld: determinism, schema, skews, degradation rates, boxes, benchmark and scoring."""

from __future__ import annotations

import difflib
import json
import random
import re
from collections import Counter

import pytest

from hf_vitcurate.schema import validate
from hf_vitcurate.synthetic import (
    CHANCE,
    LOW_QUALITY_SOURCE,
    SOURCES,
    benchmark,
    make_scene,
    score_benchmark,
    degraded_share,
    degraded_shares,
    pool_and_truth,
    shapesworld,
    statuses,
    training_pool,
)
from hf_vitcurate.errors import ConfigError
from hf_vitcurate.synthetic.language import (
    LEAK_PREFIXES,
    LETTERS,
    SPACES,
    perturb,
    plural,
    wrong_value,
)
from hf_vitcurate.synthetic.world import BENCH, MAX_OBJECTS, object_sizes, png_bytes

N_IMAGES = 120
RATES = {
    "llava_conv": {"hallucination": 0.3, "leak": 0.2, "duplicate": 0.25},
    "mm_short_vqa": {"hallucination": 0.4},
    "svit_referring": {"duplicate": 0.2},
    "llava_detail": {"leak": 0.5},
}


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return shapesworld(N_IMAGES, seed=7, degrade=RATES, benchmark_images=60, cache_dir=str(tmp_path_factory.mktemp("sw")))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return shapesworld(N_IMAGES, seed=7, degrade={}, benchmark_images=0, cache_dir=str(tmp_path_factory.mktemp("swc")))


def _index(image_id: str) -> int:
    return int(image_id.rsplit("-", 1)[1])


def _gpt(conv) -> list[str]:
    return [t["value"] for t in conv if t["from"] == "gpt"]


def test_keys_and_sources(pool):
    assert set(pool) == set(SOURCES) - {LOW_QUALITY_SOURCE} | {"benchmark"}  # the low-quality source is opt-in
    for name, ds in pool.items():
        if name != "benchmark":
            assert set(ds["source"]) == {name}
            assert set(ds["task"]) == {SOURCES[name][0]}


def test_deterministic_per_seed(pool, tmp_path):
    again = shapesworld(N_IMAGES, seed=7, degrade=RATES, benchmark_images=60, cache_dir=str(tmp_path / "a"))
    for name in pool:
        assert again[name].data.table.equals(pool[name].data.table), name
    other = shapesworld(N_IMAGES, seed=8, degrade=RATES, benchmark_images=0, sources=["captions"], cache_dir=str(tmp_path / "b"))
    assert other["captions"]["conversations"] != pool["captions"]["conversations"]


def test_every_source_validates(pool):
    for name, ds in pool.items():
        _, rejected = validate(ds, check_images="verify")
        assert len(rejected) == 0, (name, Counter(rejected["reject_reason"]))
    assert all(len(imgs) == 0 for imgs in pool["text_only"]["images"])
    assert all(len(imgs) == 1 for imgs in pool["llava_conv"]["images"])
    im = pool["captions"][0]["images"][0]
    assert im.size == (64, 64)


def test_images_shared_across_sources_and_row_ids_unique(pool):
    conv = set(pool["llava_conv"]["image_id"])
    vqa = set(pool["mm_short_vqa"]["image_id"])
    assert len(conv & vqa) > 0.8 * len(conv)
    ids = [i for name, ds in pool.items() for i in ds["id"]]
    assert len(ids) == len(set(ids))


def test_scenes_are_learnable():
    sizes = object_sizes(64)
    assert sizes["small"] >= 12 and sizes["large"] >= 18
    for size in (64, 63):  # 63 = 3 patches of 21: each object then lies inside one patch
        cell = size / 3
        for i in range(150):
            for a in make_scene(i, seed=0, image_size=size).objects:
                x0, y0 = int(a.column * cell), int(a.row * cell)
                assert x0 <= a.box[0] and a.box[2] <= x0 + int(cell) and y0 <= a.box[1] and a.box[3] <= y0 + int(cell)
    for i in range(300):
        objs = make_scene(i, seed=0).objects
        assert 1 <= len(objs) <= MAX_OBJECTS
        for a in objs:
            assert 0 <= a.box[0] < a.box[2] <= 64 and 0 <= a.box[1] < a.box[3] <= 64
            for b in objs:  # no overlap
                if a is not b:
                    assert a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] or b.box[3] <= a.box[1]


def test_judgement_skew_20_to_1(tmp_path):
    dd = shapesworld(300, seed=1, degrade={}, sources=["svit_judgement"], benchmark_images=0, cache_dir=str(tmp_path))
    first = Counter(_gpt(c)[0].split(",")[0].split(".")[0] for c in dd["svit_judgement"]["conversations"])
    assert set(first) == {"Yes", "No"}
    assert 17 <= first["Yes"] / first["No"] <= 24, first


def test_benchmark_balanced_and_disjoint(pool):
    bench = pool["benchmark"]
    judged = Counter(a for a, t in zip(bench["answer"], bench["task"]) if t == "judgement")
    assert judged["yes"] == judged["no"] == 30
    assert Counter(bench["task"]) == {"judgement": 60, "multiple_choice": 60, "short_vqa": 60, "caption": 60}
    train_ids = {i for name, ds in pool.items() if name != "benchmark" for i in ds["image_id"]} - {""}
    assert not train_ids & set(bench["image_id"])
    # Content, not only ids: no benchmark image is pixel-identical to a training image.
    train_png = {png_bytes(make_scene(i, seed=7)) for i in range(N_IMAGES)}
    bench_png = {png_bytes(make_scene(i, seed=7, stream=BENCH)) for i in range(60)}
    assert not train_png & bench_png
    # Stored images are the scenes' renderings.
    row = pool["llava_conv"].with_format("arrow")[0]
    assert row.column("images").to_pylist()[0][0]["bytes"] == png_bytes(make_scene(_index(row.column("image_id")[0].as_py()), seed=7))


def test_degradation_rates_match_configuration(pool):
    for name, rates in RATES.items():
        truth = Counter(pool[name]["_truth"])
        n = sum(truth.values())
        dup = rates.get("duplicate", 0)
        assert abs(truth["duplicate"] / n - dup) < 0.03, (name, truth)
        originals = n - truth["duplicate"]
        for kind in ("hallucination", "leak"):
            assert abs(truth[kind] / originals - rates.get(kind, 0)) < 0.02, (name, kind, truth)
    for name in set(SOURCES) - set(RATES) - {LOW_QUALITY_SOURCE}:
        assert set(pool[name]["_truth"]) == {"clean"}


def test_degraded_rows_are_what_they_say(pool, clean):
    # Hallucinations: same question as the clean pool's row, a different (wrong) answer.
    for name in ("llava_conv", "mm_short_vqa"):
        ref = {r["id"]: r["conversations"] for r in clean[name]}
        bad = [r for r in pool[name] if r["_truth"] == "hallucination"]
        assert bad
        for r in bad:
            assert r["conversations"][0] == ref[r["id"]][0]
            assert _gpt(r["conversations"]) != _gpt(ref[r["id"]])
        for r in pool[name]:
            if r["_truth"] == "clean":
                assert r["conversations"] == ref[r["id"]]
    # Leaks mention the annotation; clean answers never do.
    leak_words = re.compile(r"caption|description|given information", re.IGNORECASE)
    for name in RATES:
        for r in pool[name]:
            said = " ".join(_gpt(r["conversations"]))
            if r["_truth"] == "leak":
                assert leak_words.search(said)
            elif r["_truth"] == "clean":
                assert not leak_words.search(said), said
    # Near-duplicates: an original of the same image with the same answers, near-identical question.
    for name in ("llava_conv", "svit_referring"):
        rows = list(pool[name])
        for d in (r for r in rows if r["_truth"] == "duplicate"):
            twins = [r for r in rows if r["image_id"] == d["image_id"] and r["_truth"] != "duplicate"
                     and _gpt(r["conversations"]) == _gpt(d["conversations"])]
            assert twins
            q = " ".join(t["value"] for t in d["conversations"] if t["from"] == "human")
            q2 = " ".join(t["value"] for t in twins[0]["conversations"] if t["from"] == "human")
            assert q != q2 and difflib.SequenceMatcher(None, q, q2).ratio() > 0.8


_BOX = re.compile(r"<st>([^<]+)<ed>\[([0-9.]+), ([0-9.]+), ([0-9.]+), ([0-9.]+)\]")


def test_referring_boxes_inside_image_and_on_objects(pool):
    n_boxes = 0
    for r in pool["svit_referring"]:
        scene = make_scene(_index(r["image_id"]), seed=7)
        text = " ".join(t["value"] for t in r["conversations"])
        for m in _BOX.finditer(text):
            x1, y1, x2, y2 = map(float, m.groups()[1:])
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
            assert len(m.group(2).split(".")[1]) == 2  # 2 decimals like SVIT
            assert any(scene.norm_box(o) == (x1, y1, x2, y2) for o in scene.objects)
            n_boxes += 1
        # A clean "What is <box>?" answer names the boxed object right.
        q, a = r["conversations"][0]["value"], r["conversations"][1]["value"]
        m = _BOX.search(q)
        if r["_truth"] == "clean" and m and q.startswith("<image>\nWhat is"):
            box = tuple(map(float, m.groups()[1:]))
            o = next(o for o in scene.objects if scene.norm_box(o) == box)
            assert a.endswith(f"{o.size} {o.color} {o.shape}.")
    assert n_boxes > 50


def _count(scene, subject: str) -> int:
    """Objects matching a count subject such as "objects", "red crosses", "small objects"."""
    shape = color = size = None
    for w in subject.split():
        if w in SPACES["color"]:
            color = w
        elif w in SPACES["size"]:
            size = w
        elif w != "objects":
            shape = w[:-2] if w.endswith("es") and w[:-2] in SPACES["shape"] else w[:-1]
    return sum((shape is None or o.shape == shape) and (color is None or o.color == color) and (size is None or o.size == size)
               for o in scene.objects)


def test_clean_answers_are_true(clean):
    checked = 0
    for r in clean["mm_short_vqa"]:
        if r["_truth"] != "clean":
            continue
        q, a = r["conversations"][0]["value"], r["conversations"][1]["value"]
        m = re.search(r"How many (.+?) are (?:there|in the image)\?|Count the (.+?) in the image\.", q)
        if m:
            assert int(a) == _count(make_scene(_index(r["image_id"]), seed=7), m.group(1) or m.group(2)), q
            checked += 1
        m = re.search(r"What color is the (\w+)\?", q)
        if m:
            scene = make_scene(_index(r["image_id"]), seed=7)
            assert [o.color for o in scene.objects if o.shape == m.group(1)] == [a]
            checked += 1
    assert checked > 20


def test_multiple_choice_has_exactly_one_right_option(pool):
    for name in ("mm_multiple_choice", "benchmark"):
        for r in pool[name]:
            if name == "benchmark" and r["task"] != "multiple_choice":
                continue
            q, a = r["conversations"][0]["value"], r["conversations"][1]["value"]
            assert q.endswith("Please choose the most appropriate option.")
            opts = re.findall(r"^([A-D])\. (.*)$", q, flags=re.MULTILINE)
            assert [l for l, _ in opts] == list(LETTERS)
            assert len({v for _, v in opts}) == 4  # distinct, so only one can be right
            assert a in LETTERS
    bench = pool["benchmark"]
    for r in bench:  # the right option is the row's truth; count items checked against the scene
        if r["task"] == "multiple_choice" and r["answer_kind"] == "count":
            q = r["conversations"][0]["value"]
            value = dict(re.findall(r"^([A-D])\. (.*)$", q, flags=re.MULTILINE))[r["answer"]]
            m = re.search(r"How many (.+?) are (?:there|in the image)\?|Count the (.+?) in the image\.", q)
            scene = make_scene(_index(r["image_id"]), seed=7, stream=BENCH)
            assert int(value) == _count(scene, m.group(1) or m.group(2))


def test_score_benchmark_references_and_chance(tmp_path):
    bench = benchmark(240, seed=3, cache_dir=str(tmp_path))
    refs = [c[-1]["value"] for c in bench["conversations"]]
    scores = score_benchmark(bench, refs)
    for key in ("judgement", "multiple_choice", "short_vqa", "caption", "average", "kind/shape", "kind/color", "kind/count"):
        assert scores[key] == 100.0, key
    assert scores["judgement_yes_rate"] == 50.0
    # Sentence answers and option text are accepted too.
    assert score_benchmark(bench.select([0]), ["Yes, there is."])["judgement"] in (0.0, 100.0)
    rng = random.Random(0)
    captions = [c for c, t in zip(refs, bench["task"]) if t == "caption"]
    guesses = []
    for r in bench:
        t, k = r["task"], r["answer_kind"]
        guesses.append(rng.choice(["Yes", "No"]) if t == "judgement" else rng.choice(LETTERS) if t == "multiple_choice"
                       else rng.choice(SPACES[k]) if t == "short_vqa" else rng.choice(captions))
    scores = score_benchmark(bench, guesses)
    for task in ("judgement", "multiple_choice", "short_vqa", "caption"):
        assert abs(scores[task] - CHANCE[task]) < 12, (task, scores[task])
    assert all(0 <= v <= 100 for v in scores.values())
    with pytest.raises(ValueError):
        score_benchmark(bench, refs[:-1])


def test_score_parsing():
    from hf_vitcurate.synthetic.benchmark import caption_prf, normalize, parse_choice

    assert normalize("The Top-Left.") == "top left" and normalize("Three") == "3"
    assert parse_choice("(B) red", ["blue", "red", "green", "cross"]) == "B"
    assert parse_choice("green", ["blue", "red", "green", "cross"]) == "C"
    assert parse_choice("I think so", ["blue", "red", "green", "cross"]) == ""
    scene = '{"objects": [{"color": "red", "shape": "circle"}, {"color": "blue", "shape": "square"}]}'
    assert caption_prf("A large red circle and a small blue square.", scene) == (1.0, 1.0, 1.0)
    assert caption_prf("A blue circle and a red square.", scene)[2] == 0.0  # colors bound to the wrong shapes
    assert caption_prf("Red, orange, yellow, green, blue, circles, squares.", scene)[2] == 0.0


def test_corruption_helpers():
    rng = random.Random(0)
    for kind, space in SPACES.items():
        for v in space:
            assert wrong_value(kind, v, rng) != v and wrong_value(kind, v, rng, "random") in space
    for text in ("What is the color?", "Describe the image.", "x"):
        assert perturb(text, rng) != text
    assert all("caption" in p or "description" in p or "given information" in p for p in LEAK_PREFIXES)


def test_training_pools_equal_size(tmp_path):
    good = training_pool("clean", 150, seed=2, cache_dir=str(tmp_path))
    bad = training_pool("degraded", 150, seed=2, cache_dir=str(tmp_path))
    assert len(good) == len(bad) == 150
    assert set(good["_truth"]) == {"clean"}
    assert Counter(bad["_truth"])["clean"] < 0.6 * 150
    assert "text_only" not in set(good["source"])
    with pytest.raises(ValueError):
        training_pool("noisy", 10)


@pytest.mark.slow
def test_pretrain_vision_tower_learns_cells_and_saves(tmp_path, toy_vit):
    """A few steps already beat chance on the held-out cells; the tower is saved and reloads."""
    import torch
    from transformers import AutoModelForImageTextToText

    from hf_vitcurate.testing import tiny_checkpoint
    from hf_vitcurate.testing.vision import REPORT_FILE, pretrain_vision_tower

    base = tiny_checkpoint(toy_vit, output_dir=tmp_path / "b", vision_width=32, vision_mlp=64, vision_heads=2,
                           text_width=32, text_layers=1, text_heads=2, text_mlp=64, vocab_size=300)
    before = AutoModelForImageTextToText.from_pretrained(base).model.vision_tower.state_dict()
    report = pretrain_vision_tower(base, output_dir=tmp_path / "v", steps=60, batch_size=32, held_out=64, progress=False)
    assert set(report["held_out"]) == {"shape", "color", "size", "count"}
    # Chance: shape incl. empty ~ 1/5 per cell, color 1/6, size 1/2.
    assert report["held_out"]["color"] > 0.6 and report["held_out"]["shape"] > 0.5
    after = AutoModelForImageTextToText.from_pretrained(tmp_path / "v").model.vision_tower.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (tmp_path / "v" / REPORT_FILE).exists() and (tmp_path / "v" / "tokenizer.json").exists()
    with pytest.raises(ValueError, match="steps and batch_size"):
        pretrain_vision_tower(base, steps=0, progress=False)
    with pytest.raises(ValueError, match="one patch per ShapesWorld cell"):
        pretrain_vision_tower(tiny_checkpoint(toy_vit, output_dir=tmp_path / "p8", image_size=32, patch_size=8, vision_width=32,
                                              vision_heads=2, text_width=32, text_layers=1, text_heads=2), progress=False)


def test_training_pool_yes_ratio_balances_judgement():
    from hf_vitcurate.synthetic import training_pool

    def yes_share(pool):
        judged = pool.filter(lambda s: s == "svit_judgement", input_columns="source")
        answers = [c[-1]["value"].lower() for c in judged["conversations"]]
        return sum(a.startswith("yes") for a in answers) / len(answers)

    skewed = training_pool("clean", 600, seed=0, sources=["svit_judgement", "mm_short_vqa"])
    balanced = training_pool("clean", 600, seed=0, sources=["svit_judgement", "mm_short_vqa"], yes_ratio=1.0)
    assert yes_share(skewed) > 0.9 and 0.35 < yes_share(balanced) < 0.65


_SINGULAR = {plural(s).capitalize(): s for s in SPACES["shape"]}
_GROUP_ITEM = re.compile(r"an? (small|large) (\w+)(?: one)? (?:at the|in the) (\w+(?: \w+)?)")


def _grouped_objects(question: str, answer: str) -> list[tuple[str, str, str, str]]:
    """(shape, color, size, position) of each object a grouped caption states."""
    by = "shape" if "shape" in question else "color"
    said = []
    for head, items in re.findall(r"(\w+): ([^.]+)\.", answer):
        for size, word, where in _GROUP_ITEM.findall(items):
            key = _SINGULAR[head] if by == "shape" else head.lower()
            said.append((key, word, size, where) if by == "shape" else (word, key, size, where))
    return said


def test_captions_are_true_in_both_styles(clean, tmp_path):
    from hf_vitcurate.synthetic import stage1_captions
    from hf_vitcurate.synthetic.benchmark import caption_prf

    # The pool's captions stay LCS-558K one-sentence captions unless grouped_captions is set.
    assert not any(" by " in c[0]["value"] for c in clean["captions"]["conversations"])
    caps = shapesworld(N_IMAGES, seed=7, sources=["captions"], degrade={}, grouped_captions=0.5,
                       benchmark_images=0, cache_dir=str(tmp_path))["captions"]
    styles = Counter()
    for r in caps:
        scene = make_scene(_index(r["image_id"]), seed=7)
        q, a = r["conversations"][0]["value"], r["conversations"][1]["value"]
        truth = sorted((o.shape, o.color, o.size, o.position) for o in scene.objects)
        if " by " in q:  # grouped: "Circles: a large red one at the top left, ... Crosses: ..."
            assert sorted(_grouped_objects(q, a)) == truth, (q, a)
            styles["shape" if "shape" in q else "color"] += 1
        else:
            assert caption_prf(a, json.dumps(scene.to_dict()))[2] == 1.0, a
            styles["plain"] += 1
    # About half the rows are grouped, by shape and by color.
    assert min(styles.values()) > 10 and 0.3 < styles["plain"] / sum(styles.values()) < 0.7, styles
    # Stage-1 captions: one clean row per image, images apart from the pool's.
    stage1 = stage1_captions(30, seed=7, cache_dir=str(tmp_path))
    assert len(stage1) == 30 and set(stage1["_truth"]) == {"clean"}
    assert not any(" by " in c[0]["value"] for c in stage1["conversations"])
    assert not set(stage1["image_id"]) & set(clean["captions"]["image_id"])
    with pytest.raises(ValueError, match="grouped_captions"):
        shapesworld(4, grouped_captions=1.5)
    with pytest.raises(ValueError, match="rows_per_image"):
        shapesworld(4, rows_per_image={"caption": 2.0})  # a typo of "captions" must not pass silently
    # A hallucinated grouped caption states one object's color or shape wrong.
    bad = shapesworld(N_IMAGES, seed=7, sources=["captions"], degrade={"captions": {"hallucination": 0.5}},
                      grouped_captions=0.5, benchmark_images=0, cache_dir=str(tmp_path))["captions"]
    wrong = [r for r in bad if r["_truth"] == "hallucination" and " by " in r["conversations"][0]["value"]]
    assert len(wrong) > 5
    for r in wrong:
        truth = sorted((o.shape, o.color, o.size, o.position) for o in make_scene(_index(r["image_id"]), seed=7).objects)
        said = _grouped_objects(r["conversations"][0]["value"], r["conversations"][1]["value"])
        assert len(said) == len(truth) and len(set(said) - set(truth)) == 1, r["conversations"]


def test_training_pool_keeps_the_default_mix_only():
    """The research options (rows per image, grouped captions) are ``shapesworld``'s, not ``training_pool``'s."""
    import inspect

    params = inspect.signature(training_pool).parameters
    assert "rows_per_image" not in params and "grouped_captions" not in params
    assert {"rows_per_image", "grouped_captions"} <= set(inspect.signature(shapesworld).parameters)


def test_engine_shapes_write_with_the_shapesworld_writers():
    """One ShapesWorld text writer: the engine's image tags and answers are ``synthetic.writers``'."""
    import random

    from hf_vitcurate.engine import shapes
    from hf_vitcurate.synthetic.writers import describe

    images = shapes.shapes_images(4, seed=3)
    scenes = [make_scene(i, seed=3) for i in range(4)]
    assert list(images["image_tag"]) == [describe(s) for s in scenes]
    assert not hasattr(shapes, "describe")
    items = shapes._questions(scenes[0], random.Random(0))
    assert ("image_description", "long_vqa", "Please describe the details of this image.", [], describe(scenes[0])) in items


@pytest.fixture(scope="module")
def sick(tmp_path_factory):
    """A world with every pathology on, at rates the tests check."""
    return pool_and_truth(N_IMAGES, seed=3, easy=1.5, low_quality=0.5, yes_ratio=5.0, benchmark_images=0,
                          cache_dir=str(tmp_path_factory.mktemp("sick")))


def test_pathologies_appear_at_the_rates_set(sick):
    pool, truth = sick
    status = dict(zip(pool["id"], pool["source"]))
    easy = [i for i, s in truth.items() if s == "easy"]
    assert abs(len(easy) - 1.5 * N_IMAGES) <= 2, len(easy)  # low-discrepancy: within a row or two
    assert {status[i] for i in easy} == {"mm_short_vqa"}
    web = [i for i, s in status.items() if s == LOW_QUALITY_SOURCE]
    assert abs(len(web) - 0.5 * N_IMAGES) <= 20, len(web)  # rows per image vary per image, as for every source
    wrong = sum(truth[i] == "hallucination" for i in web)
    assert abs(wrong - 0.8 * len(web)) <= 2, (wrong, len(web))
    assert sum(truth[i] == "duplicate" for i in truth) > 0  # the default near-duplicates stay
    shares = degraded_shares(pool, truth)
    assert set(shares) == {"hallucination", "leak", "duplicate", "easy"}
    assert shares["easy"] == pytest.approx(len(easy) / len(pool))
    assert degraded_share(pool, truth) == pytest.approx(sum(shares.values()))


def test_easy_rows_are_redundant_and_sloppy_rows_are_sloppy(sick):
    pool, truth = sick
    rows = [r for r in pool.select_columns(["id", "conversations", "source"]) if truth[r["id"]] == "easy"]
    answers = Counter(r["conversations"][1]["value"] for r in rows)
    assert set(answers) == {"white", "drawing", "shapes"}  # one answer per kind, whatever the image
    per_image = Counter((r["id"].split("-", 1)[1].rsplit("-", 1)[0], r["conversations"][1]["value"]) for r in rows)
    assert max(per_image.values()) == 1  # never one kind twice on an image: no accidental near-duplicates
    web = [r for r in pool.select_columns(["id", "conversations", "source"]) if r["source"] == LOW_QUALITY_SOURCE]
    for r in web:
        q = r["conversations"][0]["value"]
        assert q == q.lower() and not q.endswith("?")


def test_truth_never_leaks_into_the_pool_columns(sick):
    pool, truth = sick
    assert not [c for c in pool.column_names if c.startswith("_")]
    texts = {t["value"] for conv in pool["conversations"] for t in conv}
    ids = set(pool["id"])
    for word in ("hallucination", "easy", "duplicate", "_truth"):
        assert not any(word in t for t in texts), word
        assert not any(word in i for i in ids), word  # ids are opaque: nothing tells a copy or an easy row


def test_pathologies_off_by_default_and_options_checked(clean, tmp_path):
    assert LOW_QUALITY_SOURCE not in clean
    assert "easy" not in set(clean["mm_short_vqa"]["_truth"])
    with pytest.raises(ConfigError, match="easy"):
        shapesworld(4, easy=-1)
    with pytest.raises(ConfigError, match="mm_short_vqa"):
        shapesworld(4, easy=1.0, sources=["captions"])
    clean_web = shapesworld(30, seed=1, low_quality=1.0, degrade={LOW_QUALITY_SOURCE: {}}, benchmark_images=0,
                            sources=[LOW_QUALITY_SOURCE], cache_dir=str(tmp_path))
    assert set(clean_web[LOW_QUALITY_SOURCE]["_truth"]) == {"clean"}
    # Named but off (0 rows per image, as every-source lists name it): an empty table, not an error.
    off = shapesworld(5, seed=1, sources=[LOW_QUALITY_SOURCE, "captions"], benchmark_images=0, cache_dir=str(tmp_path))
    assert len(off[LOW_QUALITY_SOURCE]) == 0 and off[LOW_QUALITY_SOURCE].features == off["captions"].features


def test_exploded_turns_keep_their_rows_truth(sick):
    from hf_vitcurate.formats.explode import explode_turns

    pool, truth = sick
    conv = pool.filter(lambda s: s == "llava_conv", input_columns="source")
    turns = explode_turns(conv)
    assert len(turns) > len(conv)
    assert statuses(turns["id"], truth) == [truth[p] for p in turns["parent_id"]]
    assert degraded_share(turns, truth) > 0


def test_pathologies_add_rows_without_changing_the_others(sick, tmp_path):
    pool, truth = sick
    plain, plain_truth = pool_and_truth(N_IMAGES, seed=3, yes_ratio=5.0, benchmark_images=0, cache_dir=str(tmp_path))
    rest = pool.filter(lambda i, s: truth[i] != "easy" and s != LOW_QUALITY_SOURCE, input_columns=["id", "source"])
    assert rest["id"] == plain["id"]
    assert rest["conversations"] == plain["conversations"]
    assert {i: truth[i] for i in rest["id"]} == plain_truth
