"""MMInstruct: raw generator output, its parser, and the published seed questions.

Raw records (JSON/JSONL), one per LLM call::

    {"id": "img7-choice", "image": "img7.jpg", "domain": "image_scene",
     "type": "multiple_choice", "output": "<Q1> Which scene? </Q1> <C1> A. City B. Sea
     C. Farm D. Desert </C1> <A1> B </A1> <Q2> ..."}

(``type`` may be spelled ``instruction_type``; ``output`` may be ``response``). Each
item of the output becomes one row ``"{id}-q{k}"`` (k = 1, 2, ... in output order)
whose question is the item's question, its options (multiple choice) and the type's
indicator suffix (:data:`TYPE_SUFFIX`, docs/methods.md); the answer is kept as written. Type
``multi_round`` (or domain ``multi_round_long_vqa``) makes one multi-turn ``long_vqa``
row ``"{id}"`` of all items. Rows carry ``domain`` and ``instruction_type`` columns;
``task`` is the instruction type.

An output that does not parse, a multiple-choice item without exactly one valid right
option, a judgement not answered yes/no, or an item without question or answer is
never kept: ``errors="raise"`` names file, row, item and field; ``errors="reject"``
moves it to the rejected dataset with a reason code.

:func:`parse_output` is the parser, reusable on its own (the data engine uses it).

Example:
    >>> [(q.question, q.answer) for q in parse_output("<Q1> Is it red? </Q1> <A1> Yes </A1>", "judgement")]
    [('Is it red?', 'Yes')]
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset, Features, List, Value

from .. import provenance
from ..errors import ConfigError, FormatError, ParseError
from .mminstruct_choice import OPTION_LETTERS, answer_letter, split_options
from .common import (
    RowError,
    add_placeholders,
    check_errors,
    default_root,
    default_source,
    finish,
    image_ref,
    map_records,
    root_prefix,
    row_id,
)
from .reading import read_raw

TYPES = ("judgement", "multiple_choice", "short_vqa", "long_vqa")
# Indicator suffix added after each generated question (MMInstruct, arXiv:2407.15838, section 3.4).
TYPE_SUFFIX = {
    "judgement": "Please answer yes or no.",
    "multiple_choice": "Please choose the most appropriate option.",
    "short_vqa": "Answer the question using a single word or phrase.",
    "long_vqa": "",
}
# Spellings met in generator configs and the published seed/end-prompt files.
TYPE_ALIASES = {
    "judgement": "judgement", "judgment": "judgement", "judge": "judgement", "tf": "judgement", "yes_no": "judgement",
    "multiple_choice": "multiple_choice", "choice": "multiple_choice", "select": "multiple_choice", "mc": "multiple_choice",
    "short_vqa": "short_vqa", "shortsentence": "short_vqa", "svqa": "short_vqa",
    "long_vqa": "long_vqa", "longsentence": "long_vqa", "lvqa": "long_vqa",
    "multi_round": "multi_round", "multi_round_long_vqa": "multi_round",
}  # fmt: skip
# Seed files: key -> the instruction types its questions seed ("sentence" seeds both VQA kinds).
SEED_KINDS = {
    "judge": ["judgement"], "judgement": ["judgement"], "judgment": ["judgement"],
    "choice": ["multiple_choice"], "select": ["multiple_choice"],
    "sentence": ["short_vqa", "long_vqa"], "shortsentence": ["short_vqa"], "longsentence": ["long_vqa"],
}  # fmt: skip
LANGUAGES = {"english": "English", "en": "English", "chinese": "Chinese", "zh": "Chinese", "cn": "Chinese"}
TYPE_KEYS = ("type", "instruction_type", "question_type")
OUTPUT_KEYS = ("output", "response")
MULTI_ROUND_DOMAIN = "multi_round_long_vqa"

_TAG = re.compile(r"<([QCA])(\d+)>(.*?)</\1\2>", re.S)
_OPEN_Q = re.compile(r"<Q(\d+)>")


@dataclass
class QA:
    """One generated item; ``reject_reason`` is empty when it passed the type's checks."""

    question: str
    answer: str
    options: list[str] = field(default_factory=list)
    number: int = 0
    reject_reason: str = ""
    reject_detail: str = ""




def normalize_type(name: str) -> str:
    """Canonical instruction type of a spelling (``"choice"`` -> ``"multiple_choice"``).

    Example:
        >>> normalize_type("Judge")
        'judgement'
    """
    key = re.sub(r"[\s-]+", "_", str(name).strip().lower())
    if key not in TYPE_ALIASES:
        raise ConfigError(f"unknown instruction type {name!r}; known: {sorted(set(TYPE_ALIASES.values()))}")
    return TYPE_ALIASES[key]


def domain_name(name: str) -> str:
    """Domain key: lower case, underscores, numeric file prefix dropped.

    Example:
        >>> domain_name("00017_artwork"), domain_name("Multi-Round Long VQA")
        ('artwork', 'multi_round_long_vqa')
    """
    key = re.sub(r"[\s-]+", "_", str(name).strip().lower())
    return re.sub(r"^\d+_", "", key)


def parse_output(text: str, instruction_type: str) -> list[QA]:
    """Items of one raw output (``<Qn>..</Qn><Cn>..</Cn><An>..</An>`` or a JSON list), each checked.

    Raises :class:`ParseError` when nothing parses. Each returned :class:`QA` has
    ``reject_reason`` set when it fails the checks of ``instruction_type`` (see module doc).
    """
    kind = normalize_type(instruction_type)
    if not isinstance(text, str) or not text.strip():
        raise ParseError("empty_output", "the generator output is empty")
    items = _parse_tags(text) if "<Q" in text or "<A" in text else _parse_json(text)
    for item in items:
        _check(item, kind)
    return items


def _parse_tags(text: str) -> list[QA]:
    parts: dict[int, dict[str, str]] = {}
    order: list[int] = []
    for tag, num, body in _TAG.findall(text):
        n = int(num)
        if n not in parts:
            parts[n] = {}
            order.append(n)
        parts[n].setdefault(tag, body.strip())
    opened = [int(n) for n in _OPEN_Q.findall(text)]
    for n in opened:  # a <Qn> that never closed still counts, so it gets rejected, not lost
        if n not in parts:
            parts[n] = {}
            order.append(n)
    if not order:
        raise ParseError("unparsable", f"no <Qn>..</Qn> items in output {text[:80]!r}")
    items = []
    for n in order:
        p = parts[n]
        item = QA(question=p.get("Q", ""), answer=p.get("A", ""), options=_split_options(p.get("C", "")), number=n)
        if "Q" not in p:
            item.reject_reason, item.reject_detail = ("unclosed_tag", f"<Q{n}> is not closed") if n in opened else ("missing_question", f"item {n} has no <Q{n}>")
        items.append(item)
    return items


def _parse_json(text: str) -> list[QA]:
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ParseError("unparsable", f"neither <Qn> tags nor JSON ({exc.msg}) in output {text[:80]!r}") from None
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [data])
    if not isinstance(data, list) or not data:
        raise ParseError("unparsable", "JSON output holds no list of items")
    items = []
    for n, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            items.append(QA("", "", number=n, reject_reason="unparsable", reject_detail=f"item {n} is not an object"))
            continue
        options = obj.get("options", obj.get("choices", []))
        options = _split_options(options) if isinstance(options, str) else [str(o).strip() for o in options or []]
        q = obj.get("question", obj.get("q", ""))
        a = obj.get("answer", obj.get("a", ""))
        items.append(QA(str(q).strip(), str(a).strip(), options, n))
    return items


def _split_options(text: str) -> list[str]:
    """``"A. x B. y C. z D. w"`` -> ``["A. x", ..., "D. w"]`` by the one rule (:func:`.mminstruct_choice.split_options`); ``[]`` when unclear."""
    return split_options(text) or []


def _check(item: QA, kind: str) -> None:
    if item.reject_reason:
        return
    if not item.question:
        item.reject_reason, item.reject_detail = "missing_question", f"item {item.number} has an empty question"
    elif not item.answer:
        item.reject_reason, item.reject_detail = "missing_answer", f"item {item.number} has no answer"
    elif kind == "judgement" and re.sub(r"[^a-z]", "", item.answer.split()[0].lower()) not in ("yes", "no"):
        item.reject_reason, item.reject_detail = "judgement_not_yes_no", f"item {item.number} answer {item.answer[:40]!r} is not yes/no"
    elif kind == "multiple_choice":
        letters = [o[0] for o in item.options]
        if letters != list(OPTION_LETTERS):
            item.reject_reason, item.reject_detail = "bad_options", f"item {item.number} options are {letters}, not A-D"
        elif answer_letter(item.answer, item.options) is None:
            item.reject_reason = "answer_not_one_option"
            item.reject_detail = f"item {item.number} answer {item.answer[:40]!r} is not exactly one of A-D"


def instruction_text(item: QA, instruction_type: str, add_suffix: bool = True) -> str:
    """The human turn for an item: question, options (one a line), indicator suffix.

    Example:
        >>> instruction_text(QA("Is it red?", "Yes"), "judgement")
        'Is it red?\\nPlease answer yes or no.'
    """
    suffix = TYPE_SUFFIX.get(normalize_type(instruction_type), "") if add_suffix else ""
    return "\n".join(p for p in [item.question, *item.options, suffix] if p)


# ---------------------------------------------------------------- raw outputs -> rows


def load(
    path: str,
    *,
    image_root: str | None = None,
    source: str | None = None,
    task: str | None = None,
    errors: str = "raise",
    add_suffix: bool = True,
    **load_kwargs: Any,
) -> Dataset | tuple[Dataset, Dataset]:
    """Load raw MMInstruct generator records (see module doc) into the canonical schema."""
    raw = read_raw(path, **load_kwargs)
    root = default_root(path) if image_root is None else image_root
    return convert(raw, file=path, image_root=root, source=source, default_source=default_source(path), task=task, errors=errors, add_suffix=add_suffix)


def convert(
    raw: Dataset,
    *,
    file: str,
    image_root: str | None = None,
    source: str | None = None,
    default_source: str = "mminstruct",
    task: str | None = None,
    errors: str = "raise",
    allow_outside_root: bool = False,
    add_suffix: bool = True,
) -> Dataset | tuple[Dataset, Dataset]:
    """Canonical rows from raw generator records already read into ``raw``."""
    check_errors(errors)
    prefix = root_prefix(image_root)

    def one(rec: dict[str, Any], row: int) -> list[dict[str, Any]]:
        src = source or rec.get("source") or default_source
        rid = str(rec.get("id") or row_id(src, row))
        domain = rec.get("domain")
        if not isinstance(domain, str) or not domain.strip():
            raise RowError("domain", "missing_field", "record has no domain")
        domain = domain_name(domain)
        type_key = next((k for k in TYPE_KEYS if rec.get(k)), None)
        if type_key is None:
            raise RowError("type", "missing_field", f"record has none of {list(TYPE_KEYS)}")
        try:
            kind = normalize_type(rec[type_key])
        except ValueError as exc:
            raise RowError(type_key, "unknown_type", str(exc)) from None
        if domain == MULTI_ROUND_DOMAIN:
            kind = "multi_round"
        out_key = next((k for k in OUTPUT_KEYS if k in rec), "output")
        try:
            items = parse_output(rec.get(out_key), "long_vqa" if kind == "multi_round" else kind)
        except ParseError as exc:
            raise RowError(out_key, exc.code, str(exc)) from None
        images = _images(rec.get("image"), prefix)
        base = {"images": images, "source": src, "domain": domain}
        if kind == "multi_round":
            bad = next((it for it in items if it.reject_reason), None)
            if bad:
                raise RowError(f"{out_key}[item {bad.number}]", bad.reject_reason, bad.reject_detail)
            turns = [t for it in items for t in _pair(it, "long_vqa", add_suffix)]
            return [{**base, "id": rid, "conversations": add_placeholders(turns, len(images)), "task": task or "long_vqa", "instruction_type": "long_vqa"}]
        rows = []
        for k, it in enumerate(items, start=1):
            row = {**base, "id": f"{rid}-q{k}", "task": task or kind, "instruction_type": kind}
            if it.reject_reason:
                # One bad item does not spoil its siblings: it becomes its own rejected row.
                row.update(conversations=[], reject_reason=it.reject_reason, reject_detail=f"{out_key}[item {it.number}]: {it.reject_detail}")
            else:
                row["conversations"] = add_placeholders(_pair(it, kind, add_suffix), len(images))
            rows.append(row)
        return rows

    ds = map_records(raw, one, extra=EXTRA, reject_row=lambda rec, row: {"id": str(rec.get("id") or row_id(source or default_source, row))}, desc="converting mminstruct")
    params = {"image_root": image_root, "source": source or default_source, "task": task, "add_suffix": add_suffix}
    return finish(ds, fmt="mminstruct", file=file, rows_in=len(raw), errors=errors, params=params, parent=raw, image_root=image_root, allow_outside_root=allow_outside_root)


EXTRA = {"domain": Value("string"), "instruction_type": Value("string")}


def _pair(item: QA, kind: str, add_suffix: bool) -> list[dict[str, str]]:
    return [{"from": "human", "value": instruction_text(item, kind, add_suffix)}, {"from": "gpt", "value": item.answer}]


def _images(value: Any, prefix: str | None) -> list[dict[str, Any]]:
    if value in (None, "", []):
        return []
    return [image_ref(v, prefix, "image") for v in (value if isinstance(value, list) else [value])]


# ---------------------------------------------------------------- seed questions


def load_seeds(path: str, *, languages: tuple[str, ...] = ("English",)) -> Dataset:
    """The published seed questions: one row per question (not VIT rows: no answers).

    ``path`` is one seed file or the folder of them (``end_prompt.json``, which holds
    answer-style suffixes, not seeds, is skipped there). Files are ``{kind: {language:
    [questions]}}`` with ``kind`` spelled judge/choice/select/sentence/...; empty files
    (four are published empty) give no rows and are listed in the provenance step.
    Columns: ``id`` (``"{domain}-{kind}-{language}-{k}"``), ``domain``, ``seed_kind``
    (as spelled in the file), ``instruction_types`` (the types it seeds, see
    :data:`SEED_KINDS`), ``language``, ``question``.

    Example:
        >>> seeds = load_seeds("mminstruct_seeds")  # doctest: +SKIP
        >>> seeds.filter(lambda r: r["domain"] == "landmark")["question"][:1]  # doctest: +SKIP
    """
    files = sorted(glob.glob(os.path.join(path, "*.json"))) if os.path.isdir(path) else [path]
    files = [f for f in files if not (os.path.isdir(path) and os.path.basename(f) == "end_prompt.json")]
    if not files:
        raise FormatError(f"{path}: no seed files (*.json)")
    wanted = {LANGUAGES.get(lang.lower(), lang) for lang in languages}
    rows: dict[str, list] = {k: [] for k in ("id", "domain", "seed_kind", "instruction_types", "language", "question")}
    empty = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        if not text.strip():
            empty.append(os.path.basename(f))
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{f}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise FormatError(f"{f}: expected {{kind: {{language: [questions]}}}}, got {type(data).__name__}")
        domain = domain_name(os.path.splitext(os.path.basename(f))[0])
        for kind, by_lang in data.items():
            kind_key = kind.strip().lower()
            if kind_key not in SEED_KINDS:
                raise FormatError(f"{f}: field {kind!r}: unknown seed kind; known: {sorted(SEED_KINDS)}")
            if not isinstance(by_lang, dict):
                raise FormatError(f"{f}: field {kind!r}: expected {{language: [questions]}}")
            for lang, questions in by_lang.items():
                language = LANGUAGES.get(lang.strip().lower(), lang.strip())
                if language not in wanted:
                    continue
                if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
                    raise FormatError(f"{f}: field {kind!r}.{lang!r}: expected a list of strings")
                for k, q in enumerate(questions):
                    rows["id"].append(f"{domain}-{kind_key}-{language.lower()}-{k}")
                    rows["domain"].append(domain)
                    rows["seed_kind"].append(kind_key)
                    rows["instruction_types"].append(SEED_KINDS[kind_key])
                    rows["language"].append(language)
                    rows["question"].append(q.strip())
    features = {k: Value("string") for k in rows}
    features["instruction_types"] = List(Value("string"))
    ds = Dataset.from_dict(rows, features=Features(features))
    params = {"path": path, "languages": sorted(wanted), "files": len(files), "empty_files": empty}
    return provenance.record(ds, "mminstruct_seeds", kind="convert", params=params)
