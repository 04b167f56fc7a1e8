"""Multiple-choice options and answers of MMInstruct items, read one way everywhere.

The data engine's parser (:mod:`hf_vitcurate.engine.parser`) and the MMInstruct format
reader (:mod:`hf_vitcurate.formats.mminstruct`) both use these, so generated and published
items pass the same rule: exactly four options A-D, exactly one named by the answer.

Example:
    >>> split_options("A. U.S. B. Vitamin C. C. Plum D. Kiwi")
    ['A. U.S.', 'B. Vitamin C.', 'C. Plum', 'D. Kiwi']
    >>> opts = ["A. Pear", "B. Banana", "C. Plum", "D. Kiwi"]
    >>> answer_letter("Answer: (C)", opts), answer_letter("A red apple", opts), answer_letter("kiwi", opts)
    ('C', None, 'D')
"""

from __future__ import annotations

import re

OPTION_LETTERS = "ABCD"
# An option mark: "A." "A)" "A:" or "(A)", at the start or after a space, followed by a space.
OPTION_MARK = re.compile(r"(?:^|(?<=\s))(?:\(([A-E])\)|([A-E])[.):])(?=\s|$)")
_MAX_MARKS = 16
_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:correct\s+|right\s+)?(?:answer|option|choice)\s*(?:is\s*)?[:\-]?\s*", re.I)
_MANY = re.compile(r"^\(?[A-D]\)?\s*(?:,|and|or|&|/)\s*\(?[A-D]\)?(?=$|[\s.):,])", re.I)


def option_letter(mark: re.Match) -> str:
    return mark.group(1) or mark.group(2)


def split_options(body: str) -> list[str] | None:
    """``"A. x B. y C. z D. w"`` (one line, or one option a line) -> ``["A. x", ..., "D. w"]``; None unless exactly one reading.

    A mark (``A.``, ``A)``, ``A:``, ``(A)``) counts only at the start or after a space and before
    a space, and the marks must run A, B, C, D with text between them that does not open with
    a mark, so ``"U.S."`` and ``"Vitamin C."`` stay inside their option; a fifth option (``E.``)
    or two readings reject.
    """
    lines = [ln.strip() for ln in (body or "").strip().splitlines() if ln.strip()]
    marks = [OPTION_MARK.match(ln) for ln in lines]
    if len(lines) == len(OPTION_LETTERS) and all(marks) and [option_letter(m) for m in marks] == list(OPTION_LETTERS):
        texts = [ln[m.end() :].strip() for m, ln in zip(marks, lines)]
        return [f"{L}. {t}" for L, t in zip(OPTION_LETTERS, texts)] if all(texts) else None
    text = " ".join(lines)
    marks = list(OPTION_MARK.finditer(text))
    if len(marks) > _MAX_MARKS:  # the search below grows as marks**4: that many marks are no clear reading anyway
        return None
    readings: list[list[re.Match]] = []

    def walk(chosen: list[re.Match]) -> None:
        if len(readings) > 1:
            return
        end = chosen[-1].end() if chosen else 0
        if len(chosen) == len(OPTION_LETTERS):
            fifth = any(option_letter(m) == "E" and m.start() >= end and text[m.end() :].strip() for m in marks)
            if text[end:].strip() and not OPTION_MARK.match(text[end:].strip()) and not fifth:
                readings.append(chosen)
            return
        for m in marks:
            between = text[end : m.start()].strip()  # the previous option's text: not empty, not opening with a mark
            if option_letter(m) == OPTION_LETTERS[len(chosen)] and m.start() >= end and (between and not OPTION_MARK.match(between) if chosen else m.start() == 0):
                walk(chosen + [m])

    walk([])
    if len(readings) != 1:
        return None
    ms = readings[0]
    return [f"{option_letter(m)}. {text[m.end() : ms[k + 1].start() if k + 1 < len(ms) else len(text)].strip()}" for k, m in enumerate(ms)]


def answer_letter(answer: str, options: list[str]) -> str | None:
    """The one option an answer names: ``"C"``, ``"b"``, ``"(C)"``, ``"Answer: C"``, ``"C. Plum"``, ``"Plum"``; else None.

    A leading ``"A "``/``"a "`` followed by words is an article unless the words are option A's
    text ("A red apple" names no option); a letter whose text names another option is ambiguous.
    """
    texts = {o[0]: norm(o[2:]) for o in options}
    ans = _PREFIX.sub("", answer, count=1).strip()
    if _MANY.match(ans):
        return None
    m = re.match(r"\(([A-Da-d])\)|([A-Da-d])(?=$|[.):,])|([A-Da-d])\s+(?=\S)", ans)
    if m:
        letter = next(g for g in m.groups() if g)
        rest = norm(ans[m.end() :])
        rest_names = [L for L, t in texts.items() if rest and t == rest]
        if rest_names and rest_names != [letter.upper()]:
            return None  # the letter and the text name different options
        if rest_names or not m.group(3) or letter in "BCD":  # "A"/"a"/"b" then words: an article, not a letter
            return letter.upper()
    named = [L for L, t in texts.items() if t and t == norm(ans)]
    return named[0] if len(named) == 1 else None


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
