"""The ShapesWorld benchmark: held-out images, four task kinds, and its scoring.

Each benchmark image (its own seed stream and content space, never a training image)
gives four rows: a judgement (yes:no exactly 1:1 per question kind), a multiple-choice
item (4 options, one right), a short-VQA question and a caption request. Columns: the
canonical ones (the reference answer is the ``gpt`` turn) plus ``image_id``,
``answer_kind`` (``color``, ``shape``, ``count``, ``size``, ``position``, ``existence``
or ``caption``), ``answer`` (the normalized reference: ``yes``/``no``, a letter, a
value, or the caption) and ``scene`` (the image's ground truth as JSON, for caption
scoring).

Input contract of :func:`score_benchmark`: ``predictions[i]`` is the model's answer to
the *human* turn of row ``i`` of the benchmark, in row order, as raw generated text.

Chance levels (:data:`CHANCE`, uniform guessing among valid answers): judgement 50,
multiple choice 25, short VQA ≈ 23 (color 1/6, shape 1/4, count 1/7, size 1/2,
position 1/9, averaged over kinds), caption object-F1 ≈ 11 (the caption of another
random benchmark image; measured on 600 images, see tests).

Example:
    >>> bench = benchmark(10, seed=0)
    >>> scores = score_benchmark(bench, [t[-1]["value"] for t in bench["conversations"]])
    >>> scores["average"]
    100.0
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from datasets import Dataset, Features, Value

from .. import provenance
from ..errors import ConfigError
from ..schema import FEATURES
from .language import (
    JUDGE_SUFFIX,
    LETTERS,
    NUMBER_WORDS,
    SHORT_SUFFIX,
    ask,
    judge,
    mc_question,
    options,
)
from .world import BENCH, COLOR_NAMES, SHAPES, make_scene, png_bytes
from .writers import caption

SOURCE = "shapesworld_benchmark"
TASKS = ("judgement", "multiple_choice", "short_vqa", "caption")
JUDGE_KINDS = ("existence", "color", "shape", "count", "size", "position")
MC_KINDS = ("color", "shape", "count", "position")
VQA_KINDS = ("color", "shape", "count", "size", "position")
CAPTION_PROMPT = "Provide a brief description of the given image."
BENCH_FEATURES = Features(
    {**FEATURES, "image_id": Value("string"), "answer_kind": Value("string"), "answer": Value("string"), "scene": Value("string")}
)
CHANCE = {
    "judgement": 50.0,
    "multiple_choice": 25.0,
    "short_vqa": round(100 * (1 / 6 + 1 / 4 + 1 / 7 + 1 / 2 + 1 / 9) / 5, 1),
    "caption": 11.0,
}


def _bench_rows(n_images: int, seed: int, image_size: int, code: str) -> Iterator[dict[str, Any]]:
    for i in range(n_images):
        scene = make_scene(i, seed, image_size, BENCH)
        png = [{"bytes": png_bytes(scene), "path": None}]
        rng = random.Random(f"bench:{seed}:{i}")
        sc = json.dumps(scene.to_dict(), sort_keys=True)

        base = {"images": png, "source": SOURCE, "image_id": scene.image_id, "scene": sc}

        def row(task: str, kind: str, question: str, answer: str, reference: str, base: dict = base) -> dict[str, Any]:
            conv = [{"from": "human", "value": "<image>\n" + question}, {"from": "gpt", "value": reference}]
            return {**base, "id": f"{base['image_id']}-{task}", "task": task, "conversations": conv, "answer_kind": kind, "answer": answer}

        # Judgement: kinds cycle, and within each kind yes/no alternate (exactly 1:1).
        yes = (i // len(JUDGE_KINDS)) % 2 == 0
        qa = judge(scene, JUDGE_KINDS[i % len(JUDGE_KINDS)], yes, rng) or judge(scene, "existence", yes, rng)
        ans = "yes" if yes else "no"
        yield row("judgement", qa.kind, f"{qa.question} {JUDGE_SUFFIX}", ans, ans.capitalize())

        qa = ask(scene, MC_KINDS[i % len(MC_KINDS)], rng) or ask(scene, "count", rng)
        opts = options(qa, rng)
        letter = LETTERS[opts.index(qa.truth)]
        yield row("multiple_choice", qa.kind, mc_question(qa, opts), letter, letter)

        qa = ask(scene, VQA_KINDS[i % len(VQA_KINDS)], rng) or ask(scene, "count", rng)
        yield row("short_vqa", qa.kind, f"{qa.question}\n{SHORT_SUFFIX}", qa.truth, qa.truth)

        cap = caption(scene)
        yield row("caption", "caption", CAPTION_PROMPT, cap, cap)


def benchmark(n_images: int = 200, seed: int = 0, image_size: int = 64, cache_dir: str | None = None) -> Dataset:
    """The held-out benchmark: ``4 * n_images`` rows (see module docstring).

    Example:
        >>> b = benchmark(6)
        >>> len(b), sorted(set(b["task"]))
        (24, ['caption', 'judgement', 'multiple_choice', 'short_vqa'])
    """
    from .sources import _code_version, _generate

    kwargs = {"n_images": n_images, "seed": seed, "image_size": image_size, "code": _code_version()}
    ds = _generate(_bench_rows, kwargs, BENCH_FEATURES, cache_dir)
    return provenance.record(ds, "shapesworld:benchmark", kind="generate", rows_in=0, params=kwargs, seed=seed)


_WORD = re.compile(r"[a-z0-9]+")
_ARTICLES = {"a", "an", "the"}


def normalize(text: str) -> str:
    """Lowercase, punctuation to spaces, number words to digits, articles dropped."""
    words = _WORD.findall(text.lower())
    words = [str(NUMBER_WORDS.index(w)) if w in NUMBER_WORDS else w for w in words]
    return " ".join(w for w in words if w not in _ARTICLES)


def parse_yes_no(text: str) -> str:
    """``"yes"``/``"no"`` from the first word of an answer, else ``""``."""
    words = _WORD.findall(text.lower())
    return words[0] if words and words[0] in ("yes", "no") else ""


def parse_choice(text: str, opts: list[str]) -> str:
    """Option letter from ``"B"``, ``"(B)"``, ``"B. red"`` or the option's text, else ``""``."""
    m = re.match(r"\s*\(?([A-Da-d])\s*(?:[).:,]|$|\s)", text)
    if m:
        return m.group(1).upper()
    norm = normalize(text)
    for letter, opt in zip(LETTERS, opts):
        if norm == normalize(opt):
            return letter
    return ""


_SIZES = {"small", "large", "big", "little", "tiny"}


def _shape_word(w: str) -> str:
    for cand in (w, w[:-1], w[:-2]):  # plurals folded: circles -> circle, crosses -> cross
        if cand in SHAPES:
            return cand
    return ""


def mentioned_objects(text: str) -> Counter:
    """(color, shape) pairs a caption states: a shape word preceded by a color word,
    with at most a size word between (``"a large red circle"``, ``"two blue squares"``).

    A number right before the phrase multiplies it (``"2 red circles"``).
    """
    words = normalize(text).split()
    out: Counter = Counter()
    for i, w in enumerate(words):
        shape = _shape_word(w)
        if not shape:
            continue
        j = i - 1
        if j >= 0 and words[j] in _SIZES:
            j -= 1
        if j >= 0 and words[j] in COLOR_NAMES:
            color = words[j]
            j -= 1
            if j >= 0 and words[j] in _SIZES:
                j -= 1
            n = int(words[j]) if j >= 0 and words[j].isdigit() and 0 < int(words[j]) <= 9 else 1
            out[(color, shape)] += n
    return out


def caption_prf(prediction: str, scene_json: str) -> tuple[float, float, float]:
    """Precision, recall, F1 of the objects a caption names against the scene's objects.

    Objects are (color, shape) pairs counted as multisets (:func:`mentioned_objects`), so
    a caption must bind each color to the right shape and name each object once; listing
    every color and shape does not help.
    """
    scene = json.loads(scene_json)
    truth = Counter((o["color"], o["shape"]) for o in scene["objects"])
    said = mentioned_objects(prediction)
    hit = sum((said & truth).values())
    p = hit / sum(said.values()) if said else 0.0
    r = hit / sum(truth.values())
    return p, r, (2 * p * r / (p + r) if hit else 0.0)


def score_benchmark(benchmark_ds: Dataset, predictions: list[str]) -> dict[str, float]:
    """Named scores in 0-100 for ``predictions`` (one per benchmark row, in row order).

    Keys: ``judgement`` (accuracy), ``multiple_choice`` (accuracy), ``short_vqa`` (exact
    match after :func:`normalize`), ``caption`` (mean object F1 of :func:`caption_prf`:
    (color, shape) pairs named vs present), and
    ``average`` of those present; per question kind ``kind/<kind>`` (accuracy over the
    judgement, multiple-choice and short-VQA rows of that kind: ``kind/shape`` shows
    whether shapes are learned) and ``<task>/<kind>``; ``judgement_yes_rate`` (share of
    judgement predictions that say yes; 50 for an unbiased model) and
    ``caption_precision``/``caption_recall``. Compare with :data:`CHANCE`.
    """
    if len(predictions) != len(benchmark_ds):
        raise ConfigError(f"got {len(predictions)} predictions for {len(benchmark_ds)} benchmark rows")
    cols = benchmark_ds.select_columns(["task", "answer_kind", "answer", "scene", "conversations"])
    hits: dict[str, list[float]] = defaultdict(list)
    yes_said = []
    prs: list[tuple[float, float]] = []
    for row, pred in zip(cols, predictions):
        task, kind, ref = row["task"], row["answer_kind"], row["answer"]
        pred = pred or ""
        if task == "caption":
            p, r, f = caption_prf(pred, row["scene"])
            hits["caption"].append(f)
            prs.append((p, r))
            continue
        if task == "judgement":
            said = parse_yes_no(pred)
            yes_said.append(said == "yes")
            ok = said == ref
        elif task == "multiple_choice":
            question = row["conversations"][0]["value"]
            opts = [m.group(1) for m in re.finditer(r"^[A-D]\. (.*)$", question, flags=re.MULTILINE)]
            ok = parse_choice(pred, opts) == ref
        else:
            ok = normalize(pred) == normalize(ref)
        for key in (task, f"kind/{kind}", f"{task}/{kind}"):
            hits[key].append(float(ok))
    scores = {k: 100.0 * sum(v) / len(v) for k, v in sorted(hits.items())}
    present = [t for t in TASKS if t in scores]
    if present:
        scores["average"] = sum(scores[t] for t in present) / len(present)
    if yes_said:
        scores["judgement_yes_rate"] = 100.0 * sum(yes_said) / len(yes_said)
    if prs:
        scores["caption_precision"] = 100.0 * sum(p for p, _ in prs) / len(prs)
        scores["caption_recall"] = 100.0 * sum(r for _, r in prs) / len(prs)
    return scores
