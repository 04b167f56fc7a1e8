"""Reading a generator's answer into items, each kept or rejected with a reason.

The reading itself is the MMInstruct format module's
(:func:`hf_vitcurate.formats.mminstruct.parse_output`: ``<Qn>..</Qn><Cn>..</Cn><An>..</An>``
or a JSON list); this module adds what the engine needs on top:

- the engine's reason codes (:data:`REASONS`), one per requested item, so that
  *items requested = items kept + items rejected* holds for every call;
- ``n``: a call asked for ``n`` items; missing ones are rejected as
  ``too_few_questions``, extra ones are ignored and counted;
- JSON options without letters (``["red", "blue", ...]``) are lettered A-D first;
- what is recoverable without ambiguity is read: lowercase or spaced tags (``<q1>``,
  ``< Q1 >``), JSON after a preamble line or in a fence, ``(A)``-style options, answers
  ``"b"``, ``"(C)"``, ``"Answer: C"``, ``"C. Plum"`` or the option's text. A leading
  ``"A "`` followed by words is an article ("A red apple" names no option), and option text
  such as ``"U.S."`` or ``"Vitamin C."`` never splits into extra options (:func:`~hf_vitcurate.formats.mminstruct_choice.split_options`).

Reason codes: ``no_parse`` (nothing or this item unreadable), ``empty_question``,
``empty_answer``, ``not_one_right_option`` (options are not A-D, two options say the
same, or the answer names not exactly one of them), ``judgement_not_yes_no``, ``too_few_questions``; the engine
adds ``leakage`` (answer mentions the caption, stages.cleanup), ``bad_response`` (the
server's reply was unreadable), ``request_failed`` (no reply after the retries),
``caption_failed`` (the image has no caption to generate from).

Example:
    >>> out = parse("<Q1> Is it red? </Q1> <A1> Yes </A1> <Q2> Is it big? </Q2> <A2> Maybe </A2>", "judgement", n=3)
    >>> [(i.question, i.reject_reason) for i in out.items]
    [('Is it red?', ''), ('Is it big?', 'judgement_not_yes_no'), ('', 'too_few_questions')]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..formats.mminstruct import (
    OPTION_LETTERS,
    ParseError,
    normalize_type,
    parse_output,
)
from ..formats.mminstruct_choice import OPTION_MARK, answer_letter, option_letter, split_options

REASONS = (
    "no_parse",
    "empty_question",
    "empty_answer",
    "not_one_right_option",
    "judgement_not_yes_no",
    "too_few_questions",
    "leakage",
    "bad_response",
    "request_failed",
    "caption_failed",
)
# The format module's codes -> the engine's.
_CODES = {
    "empty_output": "no_parse",
    "unparsable": "no_parse",
    "unclosed_tag": "no_parse",
    "missing_question": "empty_question",
    "missing_answer": "empty_answer",
    "bad_options": "not_one_right_option",
    "answer_not_one_option": "not_one_right_option",
    "judgement_not_yes_no": "judgement_not_yes_no",
}
_LETTERED = re.compile(r"^\s*\(?[A-Z][.)]\s")
_SPACED_TAG = re.compile(r"<\s*(/?)\s*([QCAqca])\s*(\d+)\s*>")
_C_BODY = re.compile(r"<C(\d+)>(.*?)</C\1>", re.S)


@dataclass
class Item:
    """One requested item; ``reject_reason`` empty means it passed every check of its type."""

    number: int
    question: str = ""
    answer: str = ""
    options: list[str] = field(default_factory=list)
    reject_reason: str = ""
    reject_detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.reject_reason


@dataclass
class Parsed:
    """Exactly ``n`` items (parsed, then missing slots) and how many extra items were ignored."""

    items: list[Item]
    extra: int = 0

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.items)

    @property
    def n_ok(self) -> int:
        return sum(i.ok for i in self.items)

    def reasons(self) -> list[str]:
        return [i.reject_reason for i in self.items if not i.ok]


_JSON_KEYS = ("question", "q", "answer", "a")


def _json_body(text: str) -> str:
    """The JSON part of an answer: the whole text, a fenced block, or from the first line opening with ``[``/``{``."""
    if text.lstrip().startswith(("[", "{")):
        return text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fence:
        return fence.group(1).strip()
    start = re.search(r"^\s*[\[{]", text, re.M)
    return text[start.end() - 1 :].strip() if start else text


def _letter_json_options(text: str) -> tuple[str, set[int]]:
    """JSON output (after a preamble line or in a fence) with its options lettered ``A. ``..``D. ``.

    Other text is returned as is. Also returns the numbers of objects with no question/answer
    key at all: unreadable items.
    """
    try:
        data, _ = json.JSONDecoder().raw_decode(_json_body(text))
    except json.JSONDecodeError:
        return text, set()
    items = data if isinstance(data, list) else next((v for v in data.values() if isinstance(v, list)), [data]) if isinstance(data, dict) else None
    if not items:
        return text, set()
    unreadable = {k for k, obj in enumerate(items, start=1) if not isinstance(obj, dict) or not any(key in obj for key in _JSON_KEYS)}
    for obj in items:
        key = next((k for k in ("options", "choices") if isinstance(obj, dict) and k in obj), None)
        opts = obj.get(key) if key else None
        if isinstance(opts, str):
            opts = split_options(opts) or opts
        if isinstance(opts, list):
            obj[key] = _json_options(opts) or opts
    # "<" escaped so that a question quoting "<Q..." never sends JSON down the tag reader.
    return json.dumps(items, ensure_ascii=False).replace("<", "\\u003c"), unreadable


def _json_options(opts: list) -> list[str] | None:
    """A JSON option list as ``["A. x", ...]``: all lettered (any mark style) or none (lettered in order)."""
    texts = [str(o).strip() for o in opts]
    marks = [OPTION_MARK.match(t) for t in texts]
    if all(marks):
        return [f"{option_letter(m)}. {t[m.end():].strip()}" for m, t in zip(marks, texts)]
    if not any(marks) and 0 < len(texts) <= len(OPTION_LETTERS):
        return [f"{OPTION_LETTERS[k]}. {t}" for k, t in enumerate(texts)]
    return None


def parse(text: str | None, instruction_type: str, *, n: int = 3) -> Parsed:
    """Items of one generator answer for a call that asked for ``n`` items of ``instruction_type``.

    Never raises on bad model output: every problem becomes a reason on an item.
    """
    kind = normalize_type(instruction_type)
    if kind == "multi_round":
        kind = "long_vqa"
    text = _SPACED_TAG.sub(lambda m: f"<{m[1]}{m[2].upper()}{m[3]}>", text or "")  # "<q1>", "< Q1 >" -> "<Q1>"
    unreadable: set[int] = set()
    if text.strip().startswith(("[", "{", "```")) or "<Q" not in text and "<A" not in text:
        text, unreadable = _letter_json_options(text)
    bodies = {int(k): body for k, body in reversed(_C_BODY.findall(text))} if "<Q" in text or "<A" in text else None
    try:
        found = parse_output(text, kind)
    except ParseError as exc:
        detail = str(exc)[:200]
        return Parsed([Item(k, reject_reason="no_parse", reject_detail=detail) for k in range(1, n + 1)])
    items = [
        Item(
            number=k,
            question=q.question,
            answer=q.answer,
            options=list(q.options),
            reject_reason=_CODES.get(q.reject_reason, q.reject_reason),
            reject_detail=q.reject_detail,
        )
        for k, q in enumerate(found[:n], start=1)
    ]
    for item, q in zip(items, found):
        if kind == "multiple_choice":
            _check_choice(item, None if bodies is None else bodies.get(q.number, ""))
        if kind == "multiple_choice" and item.ok and _repeats(item.options):
            # Two options with the same text: the right answer is not one option (MMInstruct §3.4).
            item.reject_reason, item.reject_detail = "not_one_right_option", f"item {item.number} repeats an option: {item.options}"
        if item.number in unreadable:
            item.reject_reason, item.reject_detail = "no_parse", f"JSON item {item.number} has no question or answer"
    if items and all(i.reject_reason == "no_parse" for i in items):  # nothing readable: the whole answer is unparsable
        return failed("no_parse", items[0].reject_detail, n)
    for k in range(len(items) + 1, n + 1):
        items.append(Item(k, reject_reason="too_few_questions", reject_detail=f"{len(found)} item(s) in the output, {n} asked"))
    return Parsed(items, extra=max(0, len(found) - n))


def _check_choice(item: Item, body: str | None) -> None:
    """Options re-read from the ``<Cn>`` body (``body``) or the JSON list, and the answer's one option, checked again."""
    if item.reject_reason not in ("", "not_one_right_option"):
        return
    options = split_options(body) if body is not None else _json_options(item.options)
    if options is None or [o[0] for o in options] != list(OPTION_LETTERS):
        shown = body if body is not None else item.options
        item.reject_reason, item.reject_detail = "not_one_right_option", f"item {item.number} options are not one reading of A-D: {str(shown)[:80]!r}"
    elif answer_letter(item.answer, options) is None:
        item.options = options
        item.reject_reason, item.reject_detail = "not_one_right_option", f"item {item.number} answer {item.answer[:40]!r} is not exactly one of A-D"
    else:
        item.options, item.reject_reason, item.reject_detail = options, "", ""


def _repeats(options: list[str]) -> bool:
    texts = [re.sub(r"[^a-z0-9]+", " ", o[2:].lower()).strip() for o in options]
    return len(set(texts)) < len(texts)


def failed(reason: str, detail: str, n: int) -> Parsed:
    """``n`` items all rejected with one call-level reason (bad response, failed request, no caption)."""
    return Parsed([Item(k, reject_reason=reason, reject_detail=detail) for k in range(1, n + 1)])


__all__ = ["REASONS", "Item", "Parsed", "failed", "parse"]
