"""Steps (d) and (e) of the data engine: run the planned calls, parse and check every item, regenerate, reject.

MMInstruct (arXiv:2407.15838, §3.4-3.5): a call asks for 3 questions of one type with
their answers, on a text backend. Every item is parsed and checked (:mod:`.parser`), and
answers are checked for leaking the caption (``stages.cleanup.leakage``). A call with a
broken or missing item is regenerated (``attempt`` + 1, sampled at the engine's
``retry_temperature``) up to ``max_attempts``; then its broken items are rejected with
their reason. The linked questions of a multi-round call stand or fall together: fewer
good pairs than asked, or a leak anywhere, regenerates, then rejects, the whole
conversation. For every call, *rows requested = rows kept + rows rejected*.

Example:
    >>> kept, rejected = generate(engine, plan(engine, captioned))     # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datasets import Dataset

from ..columns import list_column
from ..formats.common import add_placeholders
from ..results import Split
from .calls import call_round
from .parser import Item, Parsed, failed, parse
from .prompts import instruction, suffix_for
from .request import Request
from .rows import MULTI, CallState, finish

if TYPE_CHECKING:
    from .engine import Engine


def generate(engine: Engine, calls: Dataset) -> Split:
    """Steps (d)/(e): run the planned ``calls``, parse, check, regenerate; kept and rejected rows (no images yet)."""
    cols = {c: list_column(calls, c) for c in ("id", "instruction_type", "n", "caption_ok", "caption")}
    states = [CallState() for _ in range(len(calls))]
    todo = []
    for k in range(len(calls)):
        if cols["caption_ok"][k]:
            todo.append(k)
        else:  # nothing to generate from: every requested row is rejected, nothing is paid
            states[k].best = failed("caption_failed", "the image has no caption", _rows_of(cols, k))
    for attempt in range(engine.max_attempts):
        if not todo:
            break
        # Step (e)'s calls are a round of their own, in the ledger and in ``work_dir``.
        step = "long_vqa" if cols["instruction_type"][todo[0]] == MULTI else "questions"
        responses = call_round(engine, calls.select(todo), step, attempt, engine.backend,
                               lambda row: Request(row["prompt"], max_tokens=engine.max_tokens))
        parsed = {k: _parse(resp, cols["instruction_type"][k], cols["n"][k]) for k, resp in zip(todo, responses)}
        for k, resp in zip(todo, responses):
            states[k].pay(resp)
        check_answers(engine, parsed, cols)
        todo = []
        for k, (p, raw) in parsed.items():
            states[k].update(p, raw)
            if not states[k].best.ok:
                todo.append(k)
    rows = call_rows(engine, calls, cols, states)
    params = {**engine.params(), "types": sorted(set(cols["instruction_type"]))}
    return finish(rows, calls, "mminstruct_generate", params, engine.backend.model)


def _parse(resp: dict[str, Any], kind: str, n: int) -> tuple[Parsed, str]:
    """A response parsed into items, and its raw text."""
    if resp["error"] == "bad_response":
        p = failed("bad_response", resp["error_detail"], n)
    elif resp["error"]:
        p = failed("request_failed", resp["error_detail"] or resp["error"], n)
    else:
        p = parse(resp["text"], "long_vqa" if kind == MULTI else kind, n=n)
    return p, resp["text"] or ""


def check_answers(engine: Engine, parsed: dict[int, tuple[Parsed, str]], cols: dict[str, list]) -> None:
    """Reject items whose answers leak the caption (``stages.cleanup.leakage``, one pass per round).

    A linked conversation is checked as one row: a leak anywhere rejects all of it.
    """
    if not engine.leak_phrases:
        return
    from ..stages.cleanup import leakage

    convs, where = [], []
    for k, (p, _) in parsed.items():
        groups = [p.items] if cols["instruction_type"][k] == MULTI else [[i] for i in p.items]
        for g in groups:
            good = [i for i in g if i.ok]
            if good:
                convs.append([t for i in good for t in ({"from": "human", "value": i.question}, {"from": "gpt", "value": i.answer})])
                where.append(good)
    if not convs:
        return
    ds = Dataset.from_dict({"id": [str(j) for j in range(len(convs))], "conversations": convs})
    for good, phrases in zip(where, list_column(leakage(ds, phrases=engine.leak_phrases), "leakage_phrases")):
        if phrases:
            for i in good:
                i.reject_reason, i.reject_detail = "leakage", f"answer mentions {phrases}"


def call_rows(engine: Engine, calls: Dataset, cols: dict[str, list], states: list[CallState]) -> list[dict[str, Any]]:
    """Final rows of every call: kept items and rejected items, the call's cost shared among them."""
    extra = {c: list_column(calls, c) for c in ("image_id", "_image", "domain", "n_images")}
    rows = []
    for k, st in enumerate(states):
        kind, cid = cols["instruction_type"][k], cols["id"][k]
        base = {"_image": extra["_image"][k], "source": "mminstruct_engine", "domain": extra["domain"][k],
                "caption": cols["caption"][k], "engine_call": cid, "engine_attempts": st.attempts, "raw_output": ""}
        n_images = extra["n_images"][k]
        if kind == MULTI:
            group = [_multi_round_row(engine, base, st, f"{extra['image_id'][k]}-{MULTI}", n_images)]
        else:
            group = [_item_row(engine, base, st, item, kind, n_images) for item in st.best.items]
        # Each row carries its share of the call (all attempts): kept rows share it, or, when
        # none was kept, the rejected ones do; the rows' costs then add up to the ledger's.
        payers = [r for r in group if not r["reject_reason"]] or group
        for r in group:
            share = 1 / len(payers) if r in payers else 0.0
            r.update(cost_usd=st.cost * share, prompt_tokens=st.prompt_tokens * share,
                     completion_tokens=st.completion_tokens * share)
        rows += group
    return rows


def _item_row(engine: Engine, base: dict[str, Any], st: CallState, item: Item, kind: str, n_images: int) -> dict[str, Any]:
    """The row of one question of a call: its QA pair, or its reject reason."""
    row = {**base, "id": f"{base['engine_call']}-q{item.number}", "task": kind, "instruction_type": kind}
    if item.ok:
        row.update(conversations=add_placeholders(pair(engine, item, kind, row["id"]), n_images), reject_reason="", reject_detail="")
    else:
        row.update(conversations=[], reject_reason=item.reject_reason, reject_detail=item.reject_detail, raw_output=st.raw)
    return row


def _multi_round_row(engine: Engine, base: dict[str, Any], st: CallState, row_id: str, n_images: int) -> dict[str, Any]:
    """The one row of a multi-round call: all its linked pairs, or the first broken item's reason."""
    row = {**base, "id": row_id, "task": "long_vqa", "instruction_type": "long_vqa"}
    p = st.best
    if p.ok:
        turns = [t for i in p.items for t in pair(engine, i, "long_vqa", f"{base['engine_call']}-q{i.number}")]
        row.update(conversations=add_placeholders(turns, n_images), reject_reason="", reject_detail="")
    else:
        bad = next(i for i in p.items if not i.ok)
        row.update(conversations=[], reject_reason=bad.reject_reason, reject_detail=f"item {bad.number}: {bad.reject_detail}",
                   raw_output=st.raw)
    return row


def pair(engine: Engine, item: Item, kind: str, key: str) -> list[dict[str, str]]:
    """The human and gpt turns of one item, with the type's indicator suffix."""
    suffix = suffix_for(kind, engine.suffixes, engine.end_prompts, key)
    return [{"from": "human", "value": instruction(item.question, kind, item.options, suffix)},
            {"from": "gpt", "value": item.answer}]


def _rows_of(cols: dict[str, list], k: int) -> int:
    return 1 if cols["instruction_type"][k] == MULTI else cols["n"][k]


__all__ = ["call_rows", "check_answers", "generate", "pair"]
