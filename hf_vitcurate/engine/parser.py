"""Reading a generator's answer into items, each kept or rejected with a reason.

The reading itself is the MMInstruct format module's
(:func:`hf_vitcurate.formats.mminstruct.parse_output`: ``<Qn>..</Qn><Cn>..</Cn><An>..</An>``
or a JSON list); this module adds what the engine needs on top:

- the engine's reason codes (:data:`REASONS`), one per requested item, so that
  *items requested = items kept + items rejected* holds for every call;
- ``n``: a call asked for ``n`` items; missing ones are rejected as
  ``too_few_questions``, extra ones are ignored and counted;
- JSON options without letters (``["red", "blue", ...]``) are lettered A-D first.

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


def _letter_json_options(text: str) -> tuple[str, set[int]]:
    """JSON output with unlettered options gets ``A. ``..``D. `` prefixes; other text is returned as is.

    Also returns the numbers of objects with no question/answer key at all: unreadable items.
    """
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return text, set()
    items = data if isinstance(data, list) else next((v for v in data.values() if isinstance(v, list)), [data]) if isinstance(data, dict) else None
    if not items:
        return text, set()
    unreadable = {k for k, obj in enumerate(items, start=1) if not isinstance(obj, dict) or not any(key in obj for key in _JSON_KEYS)}
    for obj in items:
        if not isinstance(obj, dict):
            continue
        key = "options" if "options" in obj else "choices" if "choices" in obj else None
        opts = obj.get(key) if key else None
        if isinstance(opts, list) and 0 < len(opts) <= len(OPTION_LETTERS) and not any(_LETTERED.match(str(o)) for o in opts):
            obj[key] = [f"{OPTION_LETTERS[k]}. {str(o).strip()}" for k, o in enumerate(opts)]
    # "<" escaped so that a question quoting "<Q..." never sends JSON down the tag reader.
    return json.dumps(items, ensure_ascii=False).replace("<", "\\u003c"), unreadable


def parse(text: str | None, instruction_type: str, *, n: int = 3) -> Parsed:
    """Items of one generator answer for a call that asked for ``n`` items of ``instruction_type``.

    Never raises on bad model output: every problem becomes a reason on an item.
    """
    kind = normalize_type(instruction_type)
    if kind == "multi_round":
        kind = "long_vqa"
    text = text or ""
    unreadable: set[int] = set()
    if text.strip().startswith(("[", "{", "```")):
        text, unreadable = _letter_json_options(text)
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
    for item in items:
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


def _repeats(options: list[str]) -> bool:
    texts = [re.sub(r"[^a-z0-9]+", " ", o[2:].lower()).strip() for o in options]
    return len(set(texts)) < len(texts)


def failed(reason: str, detail: str, n: int) -> Parsed:
    """``n`` items all rejected with one call-level reason (bad response, failed request, no caption)."""
    return Parsed([Item(k, reject_reason=reason, reject_detail=detail) for k in range(1, n + 1)])


__all__ = ["REASONS", "Item", "Parsed", "failed", "parse"]
