"""One writer per source: scene + status -> a LLaVA conversation, in that source's style.

A writer is ``write(scene, rng, status, style) -> list[turn]``; ``status`` is ``"clean"``,
``"hallucination"`` (some answers state wrong colors/shapes/counts/...) or ``"leak"``
(an answer mentions "the caption"/"the description"/"the given information"). The
first human turn starts with ``<image>\\n`` as in LLaVA. Text-only rows come from
:func:`write_text_only` (no scene, no image).

Example:
    >>> import random
    >>> from hf_vitcurate.synthetic.world import make_scene
    >>> turns = WRITERS["mm_short_vqa"](make_scene(1), random.Random(0), "clean", "confusion")
    >>> [t["from"] for t in turns]
    ['human', 'gpt']
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from .language import (
    JUDGE_SUFFIX,
    LETTERS,
    QA,
    SHORT_SUFFIX,
    article,
    ask,
    judge,
    judgement_answer,
    leak,
    location,
    mc_question,
    noun_phrase,
    options,
    plural,
    refer,
    wrong_value,
)
from .world import COLOR_NAMES, SHAPES, Obj, Scene

Turns = list[dict[str, str]]
Writer = Callable[[Scene, random.Random, str, str], Turns]


def turns(pairs: list[tuple[str, str]], image: bool = True) -> Turns:
    """LLaVA turns from (question, answer) pairs; ``<image>`` goes before the first question."""
    out: Turns = []
    for k, (q, a) in enumerate(pairs):
        out.append({"from": "human", "value": ("<image>\n" + q) if (k == 0 and image) else q})
        out.append({"from": "gpt", "value": a})
    return out


def _asks(scene: Scene, kinds: list[str], rng: random.Random) -> list[QA]:
    qas = []
    for kind in kinds:
        qa = ask(scene, kind, rng)
        if qa is not None:
            qas.append(qa)
    return qas or [ask(scene, "count", rng)]  # counting can always be asked


def _wrong_mask(n: int, status: str, rng: random.Random) -> list[bool]:
    """Which answers of a hallucinated row are wrong: at least one, each other one half the time."""
    if status != "hallucination":
        return [False] * n
    mask = [rng.random() < 0.5 for _ in range(n)]
    mask[rng.randrange(n)] = True
    return mask


def _apply_leak(pairs: list[tuple[str, str]], status: str, rng: random.Random) -> list[tuple[str, str]]:
    if status != "leak":
        return pairs
    k = rng.randrange(len(pairs))
    return [(q, leak(a, rng) if i == k else a) for i, (q, a) in enumerate(pairs)]


def write_conversation(scene: Scene, rng: random.Random, status: str, style: str) -> Turns:
    """LLaVA-Instruct conversation: 2-4 questions of different kinds, sentence answers."""
    kinds = rng.sample(["color", "shape", "count", "size", "position", "existence"], rng.randint(2, 4))
    qas = _asks(scene, kinds, rng)
    wrong = _wrong_mask(len(qas), status, rng)
    pairs = [(qa.question, qa.sentence(wrong_value(qa.kind, qa.truth, rng, style) if w else qa.truth)) for qa, w in zip(qas, wrong)]
    return turns(_apply_leak(pairs, status, rng))


_DETAIL_PROMPTS = (
    "Describe the image in detail.",
    "Give a detailed account of what you see in the image.",
    "What is in this picture? Explain in detail.",
    "Describe every object in the image, including its color, shape, size and location.",
)


def describe(scene: Scene, objects: list[Obj] | None = None, total: int | None = None) -> str:
    """Detailed description: the count, one sentence per object (by position), a summary."""
    objs = list(scene.objects if objects is None else objects)
    n = len(objs) if total is None else total
    head = "The image shows a single object on a plain light background." if n == 1 else (
        f"The image shows {n} objects on a plain light background.")
    parts = [head]
    for o in objs:
        where = "In the center" if o.position == "center" else f"At the {o.position}"
        parts.append(f"{where} there is {article(o.size)} {o.size} {o.color} {o.shape}.")
    shapes = Counter(o.shape for o in objs)
    common, k = shapes.most_common(1)[0]
    if k > 1:
        parts.append(f"{k} of the objects are {plural(common)}.")
    return " ".join(parts)


def write_detail(scene: Scene, rng: random.Random, status: str, style: str) -> Turns:
    """LLaVA detail_23k: one prompt, a paragraph naming every object with its attributes."""
    objs = list(scene.objects)
    total = None
    if status == "hallucination":
        mode = rng.choice(("color", "shape", "count"))
        if mode == "count":
            total = int(wrong_value("count", str(len(objs)), rng, style))
        else:
            i = rng.randrange(len(objs))
            o = objs[i]
            new = wrong_value(mode, getattr(o, mode), rng, style)
            objs[i] = Obj(new if mode == "shape" else o.shape, new if mode == "color" else o.color, o.size, o.cell, o.box)
    pairs = [(rng.choice(_DETAIL_PROMPTS), describe(scene, objs, total))]
    return turns(_apply_leak(pairs, status, rng))


def _reason_compare(scene: Scene, rng: random.Random, wrong: bool, style: str) -> tuple[str, str]:
    a, b = rng.sample(SHAPES, 2)
    na = sum(o.shape == a for o in scene.objects)
    nb = sum(o.shape == b for o in scene.objects)
    if wrong:
        na = int(wrong_value("count", str(na), rng, style))
    q = f"Are there more {plural(a)} than {plural(b)} in the image?"
    facts = f"There {'is' if na == 1 else 'are'} {na} {a if na == 1 else plural(a)} and {nb} {b if nb == 1 else plural(b)}"
    if na > nb:
        return q, f"Yes. {facts}, so there are more {plural(a)} than {plural(b)}."
    if na < nb:
        return q, f"No. {facts}, so there are fewer {plural(a)} than {plural(b)}."
    return q, f"No. {facts}, so there are equally many."


def _reason_spatial(scene: Scene, rng: random.Random, wrong: bool, style: str) -> tuple[str, str] | None:
    pairs = [(p, o) for p in scene.objects for o in scene.objects if p.column < o.column]
    rng.shuffle(pairs)
    for p, o in pairs:
        rp, ro = refer(scene, p, "position"), refer(scene, o, "position")
        if rp and ro:
            break
    else:
        return None
    if rng.random() < 0.5:  # ask both ways round so "yes" is not always right
        p, o, rp, ro = o, p, ro, rp
    pp, po = p.position, o.position
    if wrong:
        pp = wrong_value("position", pp, rng, style)
    cols = {"left": 0, "right": 2}
    col_p = next((c for w, c in cols.items() if pp.endswith(w)), 1)
    col_o = o.column
    q = f"Is the {rp} to the left of the {ro}?"
    where = f"The {rp} is {location(pp)} and the {ro} is {location(po)}"
    if col_p < col_o:
        return q, f"Yes. {where}, so the {rp} is to the left of the {ro}."
    if col_p > col_o:
        return q, f"No. {where}, so the {rp} is to the right of the {ro}."
    return q, f"No. {where}, so they are in the same column."


def _reason_totals(scene: Scene, rng: random.Random, wrong: bool, style: str) -> tuple[str, str]:
    size = rng.choice(("small", "large"))
    n = len(scene.objects)
    k = sum(o.size == size for o in scene.objects)
    if wrong:
        n = int(wrong_value("count", str(n), rng, style))
        k = min(k, n)
    q = f"How many objects are there in total, and how many of them are {size}?"
    return q, f"There {'is' if n == 1 else 'are'} {n} {'object' if n == 1 else 'objects'} in total, and {k} of them {'is' if k == 1 else 'are'} {size}."


def _reason_color(scene: Scene, rng: random.Random, wrong: bool, style: str) -> tuple[str, str] | None:
    counts = Counter(o.color for o in scene.objects).most_common()
    if len(scene.objects) < 2 or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    color, k = counts[0]
    if wrong:
        color = wrong_value("color", color, rng, style)
    q = "Which color appears most often among the objects?"
    return q, f"{color.capitalize()} appears most often: {k} of the {len(scene.objects)} objects are {color}."


def write_complex(scene: Scene, rng: random.Random, status: str, style: str) -> Turns:
    """LLaVA complex_reasoning_77k: one question that needs counting, comparing or spatial reasoning."""
    makers = [_reason_compare, _reason_spatial, _reason_totals, _reason_color]
    rng.shuffle(makers)
    wrong = status == "hallucination"
    for make in makers:
        pair = make(scene, rng, wrong, style)
        if pair is not None:
            return turns(_apply_leak([pair], status, rng))
    raise AssertionError("_reason_totals always answers")  # pragma: no cover


def box_text(scene: Scene, o: Obj, phrase: str) -> str:
    """Shikra/SVIT grounding: ``<st>phrase<ed>[x1, y1, x2, y2]`` in [0, 1] with 2 decimals."""
    x1, y1, x2, y2 = scene.norm_box(o)
    return f"<st>{phrase}<ed>[{x1:.2f}, {y1:.2f}, {x2:.2f}, {y2:.2f}]"


def write_referring(scene: Scene, rng: random.Random, status: str, style: str) -> Turns:
    """SVIT referring QA: 1-3 questions that name objects by boxes or ask for boxes."""
    objs = list(scene.objects)
    rng.shuffle(objs)
    pairs = []
    for o in objs[: rng.randint(1, 3)]:
        mode = rng.choice(("ground", "what", "color"))
        wrong = status == "hallucination"
        if mode == "ground" and refer(scene, o, "position"):
            ref = refer(scene, o, "position")
            where = location(o.position)
            pairs.append((f"Where is the {ref}? Answer with its bounding box.", f"{box_text(scene, o, 'The ' + ref)} is {where}."))
        elif mode == "color":
            color = wrong_value("color", o.color, rng, style) if wrong else o.color
            pairs.append((f"What color is {box_text(scene, o, 'this object')}?", f"{box_text(scene, o, 'The object')} is {color}."))
        else:
            shape = wrong_value("shape", o.shape, rng, style) if wrong else o.shape
            pairs.append((f"What is {box_text(scene, o, 'the object')}?", f"It is {article(o.size)} {o.size} {o.color} {shape}."))
    return turns(_apply_leak(pairs, status, rng))


def write_judgement(scene: Scene, rng: random.Random, status: str, style: str, yes: bool = True) -> Turns:
    """SVIT-style yes/no question; ``yes`` is the true answer (the source skews it)."""
    qa = None
    while qa is None:
        qa = judge(scene, rng.choice(["existence", "color", "shape", "count", "size", "position"]), yes, rng)
    said_yes = yes if status != "hallucination" else not yes
    pairs = [(f"{qa.question} {JUDGE_SUFFIX}", judgement_answer(qa, said_yes, rng, style))]
    return turns(_apply_leak(pairs, status, rng))


def write_multiple_choice(scene: Scene, rng: random.Random, status: str, style: str) -> Turns:
    """MMInstruct multiple choice: 4 options A-D, one right, answered with its letter."""
    qa = _asks(scene, [rng.choice(["color", "shape", "count", "position"])], rng)[0]
    opts = options(qa, rng, style)
    value = wrong_value(qa.kind, qa.truth, rng, style) if status == "hallucination" else qa.truth
    if value not in opts:  # only with style="random": keep the answer among the options
        value = rng.choice([v for v in opts if v != qa.truth])
    return turns([(mc_question(qa, opts), LETTERS[opts.index(value)])])


def write_short_vqa(scene: Scene, rng: random.Random, status: str, style: str) -> Turns:
    """MMInstruct / VQAv2-style short answer: a single word or phrase."""
    qa = _asks(scene, [rng.choice(["color", "shape", "count", "size", "position"])], rng)[0]
    value = wrong_value(qa.kind, qa.truth, rng, style) if status == "hallucination" else qa.truth
    return turns([(f"{qa.question}\n{SHORT_SUFFIX}", value)])


_CAPTION_PROMPTS = (
    "Provide a brief description of the given image.",
    "Describe the image concisely.",
    "Write a terse but informative summary of the picture.",
    "Summarize the visual content of the image.",
    "Share a concise interpretation of the image provided.",
)


def caption(scene: Scene, objects: list[Obj] | None = None) -> str:
    """Short caption listing every object, e.g. ``"A large red circle and a small blue cross."``"""
    names = [f"{article(o.size)} {noun_phrase(o, ('size', 'color', 'shape'))}" for o in (objects or scene.objects)]
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return text[0].upper() + text[1:] + "."


_GROUPED_PROMPTS = {
    "shape": ("List the objects in the image by shape.", "Group the objects in the image by their shape."),
    "color": ("List the objects in the image by color.", "Group the objects in the image by their color."),
}


def grouped_caption(objects: list[Obj], by: str) -> str:
    """Objects grouped by ``"shape"`` or ``"color"``, each with its other attributes and cell.

    E.g. ``"Circles: a large red one at the top left. Crosses: a small blue one in the center."``
    A dense grounded caption: writing each group means finding every object with one
    attribute and reading the others, which is what questions like "What color is the
    small cross?" need (research/RESULTS.md, "Tiny models": plain captions alone left
    that binding unlearned).

    >>> objs = [Obj("circle", "red", "large", 0, (0, 0, 20, 20)), Obj("cross", "blue", "small", 4, (25, 25, 38, 38))]
    >>> grouped_caption(objs, "shape")
    'Circles: a large red one at the top left. Crosses: a small blue one in the center.'
    """
    keys = SHAPES if by == "shape" else COLOR_NAMES
    parts = []
    for key in keys:
        objs = [o for o in objects if getattr(o, by) == key]
        if not objs:
            continue
        head = plural(key).capitalize() if by == "shape" else key.capitalize()
        if by == "shape":
            items = [f"{article(o.size)} {o.size} {o.color} one {location(o.position)}" for o in objs]
        else:
            items = [f"{article(o.size)} {o.size} {o.shape} {location(o.position)}" for o in objs]
        parts.append(f"{head}: " + ", ".join(items) + ".")
    return " ".join(parts)

def write_caption(scene: Scene, rng: random.Random, status: str, style: str, grouped: float = 0.0) -> Turns:
    """LLaVA pretraining caption: a brief prompt and a one-sentence caption (LCS-558K), or,
    with probability ``grouped``, a grouped description (:func:`grouped_caption`)."""
    objs = list(scene.objects)
    if status == "hallucination":
        i = rng.randrange(len(objs))
        o = objs[i]
        mode = rng.choice(("color", "shape"))
        new = wrong_value(mode, getattr(o, mode), rng, style)
        objs[i] = Obj(new if mode == "shape" else o.shape, new if mode == "color" else o.color, o.size, o.cell, o.box)
    if grouped and rng.random() < grouped:
        by = rng.choice(("shape", "color"))
        pair = (rng.choice(_GROUPED_PROMPTS[by]), grouped_caption(objs, by))
    else:
        pair = (rng.choice(_CAPTION_PROMPTS), caption(scene, objs))
    return turns(_apply_leak([pair], status, rng))


def write_text_only(rng: random.Random, status: str, style: str) -> Turns:
    """ShareGPT-like text-only turns (arithmetic, shape facts) with no image."""
    pairs = []
    for _ in range(rng.randint(1, 2)):
        mode = rng.choice(("add", "compare", "sides", "sentence"))
        if mode == "add":
            a, b = rng.randint(0, 20), rng.randint(0, 20)
            pairs.append((f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."))
        elif mode == "compare":
            a, b = rng.sample(range(50), 2)
            pairs.append((f"Which number is larger, {a} or {b}?", f"{max(a, b)} is larger than {min(a, b)}."))
        elif mode == "sides":
            shape, fact = rng.choice(_SHAPE_FACTS)
            pairs.append((f"How many corners does a {shape} have?", fact))
        else:
            color, shape = rng.choice(("red", "green", "blue", "yellow")), rng.choice(SHAPES)
            pairs.append((f"Write one sentence about a {color} {shape}.", f"A {color} {shape} is drawn in flat {color} paint."))
    return turns(_apply_leak(pairs, status, rng), image=False)


_SHAPE_FACTS = (
    ("circle", "A circle has no corners; it is perfectly round."),
    ("square", "A square has four corners and four equal sides."),
    ("triangle", "A triangle has three corners and three sides."),
    ("cross", "A plus-shaped cross has twelve corners: four arms of equal length."),
)

WRITERS: dict[str, Writer] = {
    "llava_conv": write_conversation,
    "llava_detail": write_detail,
    "llava_complex": write_complex,
    "svit_referring": write_referring,
    "svit_judgement": write_judgement,
    "mm_multiple_choice": write_multiple_choice,
    "mm_short_vqa": write_short_vqa,
    "captions": write_caption,
}
