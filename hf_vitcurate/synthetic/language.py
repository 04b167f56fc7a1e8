"""Words about a scene: referring expressions, questions, answers and their corruptions.

A :class:`QA` is one question about a scene with its true value and the value space of
its kind (``color``, ``shape``, ``count``, ``size``, ``position``, ``existence``). Sources
and the benchmark phrase the same QA differently (sentence, short answer, option letter).
A hallucinated answer states :func:`wrong_value` instead of the truth.

Example:
    >>> import random
    >>> from hf_vitcurate.synthetic.world import make_scene
    >>> qa = ask(make_scene(0), "count", random.Random(0))
    >>> qa.kind, qa.truth in qa.space
    ('count', True)
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from .world import CELLS, COLOR_NAMES, COUNTS, SHAPES, SIZES, Obj, Scene

# MMInstruct indicator suffixes (MMInstruct, arXiv:2407.15838), also used by the benchmark.
MC_SUFFIX = "Please choose the most appropriate option."
JUDGE_SUFFIX = "Please answer yes or no."
SHORT_SUFFIX = "Answer the question using a single word or phrase."
LETTERS = ("A", "B", "C", "D")

KINDS = ("color", "shape", "count", "size", "position", "existence")
SPACES = {
    "color": COLOR_NAMES,
    "shape": SHAPES,
    "count": COUNTS,
    "size": SIZES,
    "position": CELLS,
    "existence": ("yes", "no"),
}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Phrases that reveal the text annotation an answer was written from (SVIT §3.3 clean-up).
LEAK_PREFIXES = (
    "According to the caption, ",
    "Based on the given information, ",
    "As the description says, ",
    "As mentioned in the caption, ",
    "From the description provided, ",
)


def plural(shape: str) -> str:
    return shape + ("es" if shape.endswith(("s", "x")) else "s")


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def location(position: str) -> str:
    """Where a cell is, as answers say it: ``"in the center"`` or ``"at the top left"``."""
    return "in the center" if position == "center" else f"at the {position}"


def noun_phrase(o: Obj, attrs: tuple[str, ...]) -> str:
    """E.g. ``("size", "color", "shape")`` -> ``"large red circle"``; no shape -> ``"… object"``."""
    words = [o.size if "size" in attrs else "", o.color if "color" in attrs else ""]
    words.append(o.shape if "shape" in attrs else "object")
    text = " ".join(w for w in words if w)
    if "position" in attrs:
        text += f" {location(o.position)}"
    return text


# Attribute sets tried, in order, to name an object without the attribute being asked.
_REFS = (
    ("shape",), ("color", "shape"), ("size", "shape"), ("size", "color", "shape"),
    ("color",), ("size", "color"), ("shape", "position"), ("position",),
)


def refer(scene: Scene, o: Obj, exclude: str = "") -> str | None:
    """Shortest unique description of ``o`` not using ``exclude``, e.g. ``"red circle"``."""
    for attrs in _REFS:
        if exclude in attrs:
            continue
        if sum(1 for p in scene.objects if _matches(p, o, attrs)) == 1:
            return noun_phrase(o, attrs)
    return None


def _matches(p: Obj, o: Obj, attrs: tuple[str, ...]) -> bool:
    return all((p.cell if a == "position" else getattr(p, a)) == (o.cell if a == "position" else getattr(o, a)) for a in attrs)


@dataclass
class QA:
    """One question about a scene: ``kind``, the ``subject`` it is about, the truth and its value space."""

    kind: str
    question: str
    truth: str
    subject: str = ""  # noun phrase, e.g. "red circle" or "triangles"
    space: tuple[str, ...] = field(default=())
    claim: str = ""  # judgement only: the value the yes/no question asserts
    actual: str = ""  # judgement only: the true value of the attribute asked about

    def sentence(self, value: str) -> str:
        """A full-sentence answer stating ``value`` (the truth, or a hallucination)."""
        s = self.subject
        if self.kind == "color":
            return f"The {s} is {value}."
        if self.kind == "shape":
            return f"The {s} is {article(value)} {value}."
        if self.kind == "size":
            return f"The {s} is {value}."
        if self.kind == "position":
            return f"The {s} is in the center of the image." if value == "center" else f"The {s} is at the {value} of the image."
        if self.kind == "count":
            n = int(value)
            if n == 0:
                return f"There are no {s} in the image."
            noun = s if n != 1 else _singular(s)
            return f"There {'is' if n == 1 else 'are'} {n} {noun} in the image."
        if self.kind == "existence":
            return f"Yes, there is {article(s)} {s} in the image." if value == "yes" else f"No, there is no {s} in the image."
        raise ValueError(self.kind)


def _singular(noun: str) -> str:
    if noun.endswith("objects"):
        return noun[:-1]
    for shape in SHAPES:
        if noun.endswith(plural(shape)):
            return noun[: -len(plural(shape))] + shape
    return noun


def wrong_value(kind: str, truth: str, rng: random.Random, style: str = "confusion") -> str:
    """A value of ``kind`` other than ``truth``.

    ``style="confusion"`` is systematic (red→orange, circle→square, n→n+1, one cell to
    the right, yes↔no), like a captioner's consistent mistakes, so a model trained on
    enough of it learns the wrong answer; ``"random"`` draws any other value.
    """
    space = SPACES[kind]
    if style == "random":
        return rng.choice([v for v in space if v != truth])
    if kind == "count":
        n = int(truth)
        return str(n + 1 if n < len(COUNTS) - 1 else n - 1)
    if kind == "position":
        i = CELLS.index(truth)
        return CELLS[(i // 3) * 3 + (i % 3 + 1) % 3]
    return space[(space.index(truth) + 1) % len(space)]


def ask(scene: Scene, kind: str, rng: random.Random) -> QA | None:
    """A random question of ``kind`` about ``scene`` (``None`` when none can be asked)."""
    objs = list(scene.objects)
    rng.shuffle(objs)
    if kind == "count":
        return _ask_count(scene, rng)
    if kind == "existence":
        return _ask_existence(scene, rng, rng.random() < 0.5)
    for o in objs:
        ref = refer(scene, o, exclude=kind)
        if ref is None:
            continue
        q = rng.choice(_TEMPLATES[kind]).format(ref=ref)
        return QA(kind, q, getattr(o, kind) if kind != "position" else o.position, ref, SPACES[kind])
    return None


_TEMPLATES = {
    "color": ("What color is the {ref}?", "What is the color of the {ref}?", "Which color does the {ref} have?"),
    "shape": ("What shape is the {ref}?", "What is the shape of the {ref}?", "Which shape is the {ref}?"),
    "size": ("What size is the {ref}?", "Is the {ref} small or large?", "How big is the {ref}, small or large?"),
    "position": ("Where is the {ref}?", "Where is the {ref} located in the image?", "In which part of the image is the {ref}?"),
}


def _ask_count(scene: Scene, rng: random.Random) -> QA:
    o = rng.choice(scene.objects)
    mode = rng.choice(("all", "shape", "shape", "color", "color_shape", "size", "absent"))
    if mode == "all":
        subject, pred = "objects", lambda p: True
    elif mode == "shape":
        subject, pred = plural(o.shape), lambda p: p.shape == o.shape
    elif mode == "color":
        subject, pred = f"{o.color} objects", lambda p: p.color == o.color
    elif mode == "color_shape":
        subject, pred = f"{o.color} {plural(o.shape)}", lambda p: p.color == o.color and p.shape == o.shape
    elif mode == "size":
        subject, pred = f"{o.size} objects", lambda p: p.size == o.size
    else:
        shape = rng.choice(SHAPES)
        subject, pred = plural(shape), lambda p: p.shape == shape
    n = sum(1 for p in scene.objects if pred(p))
    q = rng.choice(("How many {s} are there?", "How many {s} are in the image?", "Count the {s} in the image."))
    return QA("count", q.format(s=subject), str(n), subject, COUNTS)


def _ask_existence(scene: Scene, rng: random.Random, present: bool) -> QA:
    """"Is there a <color> <shape>?" - absent items differ from a present object in one attribute."""
    o = rng.choice(scene.objects)
    if present:
        color, shape = o.color, o.shape
    else:
        have = {(p.color, p.shape) for p in scene.objects}
        options = [(c, o.shape) for c in COLOR_NAMES] + [(o.color, s) for s in SHAPES]
        options = [x for x in options if x not in have] or [
            (c, s) for c in COLOR_NAMES for s in SHAPES if (c, s) not in have
        ]
        color, shape = rng.choice(options)
    subject = f"{color} {shape}"
    q = rng.choice(("Is there {a} {s} in the image?", "Does the image contain {a} {s}?", "Can you see {a} {s} in the image?"))
    return QA("existence", q.format(a=article(subject), s=subject), "yes" if present else "no", subject, SPACES["existence"])


def judge(scene: Scene, kind: str, answer_yes: bool, rng: random.Random) -> QA | None:
    """A yes/no question of ``kind`` whose true answer is ``answer_yes``.

    For attribute kinds the question claims a value (``Is the circle red?``); a "no"
    question claims a wrong value.
    """
    if kind == "existence":
        return _ask_existence(scene, rng, answer_yes)
    base = ask(scene, kind, rng)
    if base is None:
        return None
    claim = base.truth if answer_yes else wrong_value(kind, base.truth, rng, "random")
    s = base.subject
    if kind == "color":
        q = f"Is the {s} {claim}?"
    elif kind == "shape":
        q = f"Is the {s} {article(claim)} {claim}?"
    elif kind == "size":
        q = f"Is the {s} {claim}?"
    elif kind == "position":
        q = f"Is the {s} in the center of the image?" if claim == "center" else f"Is the {s} at the {claim} of the image?"
    elif claim == "0":
        q = f"Are there no {s} in the image?"
    elif claim == "1":
        q = f"Is there exactly one {_singular(s)} in the image?"
    else:
        q = f"Are there {claim} {s} in the image?"
    return QA(kind, q, "yes" if answer_yes else "no", s, SPACES["existence"], claim=claim, actual=base.truth)


def judgement_answer(qa: QA, said_yes: bool, rng: random.Random, style: str = "confusion") -> str:
    """SVIT-style answer: "Yes"/"No", then the fact it implies.

    A correct answer states the truth; a hallucinated one (``said_yes`` differs from
    ``qa.truth``) states a consistent but wrong fact.
    """
    if qa.kind == "existence":
        return qa.sentence("yes" if said_yes else "no")
    plain = QA(qa.kind, "", "", qa.subject)
    if said_yes:
        return "Yes, " + _lower_first(plain.sentence(qa.claim))
    if qa.truth == "no":
        return "No, " + _lower_first(plain.sentence(qa.actual))
    return "No, " + _lower_first(plain.sentence(wrong_value(qa.kind, qa.claim, rng, style)))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def leak(answer: str, rng: random.Random) -> str:
    """Make an answer mention its annotation source (``"According to the caption, …"``)."""
    return rng.choice(LEAK_PREFIXES) + _lower_first(answer)


# Small surface edits for near-duplicates: (pattern, replacement).
_EDITS = (
    (r"^What is ", "What's "), (r"^What's ", "What is "), (r"\bthe image\b", "this image"),
    (r"\bthis image\b", "the image"), (r"\?$", " ?"), (r"\.$", ""), (r"\bare there\b", "can you see"),
    (r"\bIs there\b", "Is there also"), (r"^Describe", "Please describe"), (r"^How many", "how many"),
)


def perturb(text: str, rng: random.Random) -> str:
    """A near-identical rewrite of ``text`` (one or two small edits; never equal to it)."""
    out = text
    edits = list(_EDITS)
    rng.shuffle(edits)
    done = 0
    for pat, rep in edits:
        new = re.sub(pat, rep, out, count=1, flags=re.MULTILINE)
        if new != out and new.strip():
            out, done = new, done + 1
            if done >= rng.randint(1, 2):
                break
    if out == text:
        out = text.rstrip() + " Thanks." if not text.endswith("Thanks.") else text[: -len(" Thanks.")]
    return out


def options(qa: QA, rng: random.Random, style: str = "confusion") -> list[str]:
    """Four distinct options for a multiple-choice item: the truth, its confusion, two others."""
    space = list(qa.space)
    opts = [qa.truth, wrong_value(qa.kind, qa.truth, rng, style)]
    rest = [v for v in space if v not in opts]
    opts += rng.sample(rest, 4 - len(opts))
    rng.shuffle(opts)
    return opts


def mc_question(qa: QA, opts: list[str]) -> str:
    """MMInstruct-style item: question, ``A. …`` lines, indicator suffix."""
    lines = [qa.question] + [f"{letter}. {v}" for letter, v in zip(LETTERS, opts)] + [MC_SUFFIX]
    return "\n".join(lines)
