"""Step (f), manual correction (MMInstruct, arXiv:2407.15838, §3.6): export rows for review, import the decisions.

:func:`export_review` writes one record per row, JSON lines (``.jsonl``) or CSV
(``.csv``), with what a reviewer needs (the paper shows annotators ``<image, caption,
instruction, answer>``): ``id``, ``domain``, ``instruction_type``, ``caption``,
``question``/``answer`` (the first turn pair, image placeholder removed),
``conversation`` (all turns as JSON, for multi-round rows), ``image_file`` (when
``image_dir`` is given, the image is written there) and empty decision columns
``decision`` (accept / reject / edit), ``reviewer``, ``reason``.

:func:`import_review` reads the file back. ``edit`` takes the edited ``question`` /
``answer`` (single pair) or ``conversation`` (multi-round), re-checks the edited row with
the type's rules (a judgement must still be answered yes/no, ...), and keeps it;
``reject`` moves the row to the rejected rows (``reject_reason="review_rejected"``,
the reviewer's reason in ``reject_detail``); ``accept`` keeps it. Rows get
``review_decision``, ``review_reviewer``, ``review_reason``. Rows without a decision are
kept as ``pending`` (or rejected / refused, see ``undecided``).

Example:
    >>> path = export_review(rows, "review.csv", image_dir="review_images")   # doctest: +SKIP
    >>> kept, rejected = import_review(rows, "review.csv")                       # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import Dataset, Features, Value
from datasets.arrow_dataset import update_metadata_with_features
from datasets.table import InMemoryTable

from .. import provenance
from ..columns import arrow_column, list_column
from ..errors import ConfigError, FormatError
from ..results import Split
from ..schema import IMAGE_TOKEN
from .parser import parse
from .taxonomy import CAPTION, TYPE_SUFFIX

DECISIONS = ("accept", "reject", "edit")
FIELDS = ("id", "domain", "instruction_type", "caption", "question", "answer", "conversation", "image_file",
          "decision", "reviewer", "reason")
REVIEW_FEATURES = {"review_decision": Value("string"), "review_reviewer": Value("string"), "review_reason": Value("string")}


def _strip_image(text: str) -> str:
    return text.replace(IMAGE_TOKEN + "\n", "").replace(IMAGE_TOKEN, "").strip()


def _fmt(path: str) -> str:
    if path.endswith(".jsonl"):
        return "jsonl"
    if path.endswith(".csv"):
        return "csv"
    raise ConfigError(f"review file {path!r} must end in .jsonl or .csv")


def export_review(ds: Dataset, path: str | os.PathLike, *, image_dir: str | os.PathLike | None = None) -> str:
    """Write ``ds`` for review (see module doc); return the path."""
    path = os.fspath(path)
    fmt = _fmt(path)
    cols = [c for c in ("id", "domain", "instruction_type", "task", "caption", "conversations") if c in ds.column_names]
    text = ds.select_columns(cols).to_dict()
    n = len(ds)
    image_files = [""] * n
    if image_dir is not None:
        os.makedirs(image_dir, exist_ok=True)
        for k, row in enumerate(ds.select_columns(["id", "images"])):
            if row["images"]:
                name = f"{row['id'].replace('/', '_')}.png"
                row["images"][0].save(os.path.join(image_dir, name))
                image_files[k] = os.path.relpath(os.path.join(image_dir, name), os.path.dirname(os.path.abspath(path)))
    records = []
    for k in range(n):
        conv = text["conversations"][k]
        first_q = _strip_image(conv[0]["value"]) if conv else ""
        first_a = conv[1]["value"] if len(conv) > 1 else ""
        records.append({
            "id": text["id"][k],
            "domain": (text.get("domain") or [""] * n)[k] or "",
            "instruction_type": (text.get("instruction_type") or text.get("task") or [""] * n)[k] or "",
            "caption": (text.get("caption") or [""] * n)[k] or "",
            "question": first_q,
            "answer": first_a,
            "conversation": json.dumps([{"from": t["from"], "value": _strip_image(t["value"]) if t["from"] == "human" else t["value"]}
                                        for t in conv], ensure_ascii=False),
            "image_file": image_files[k],
            "decision": "", "reviewer": "", "reason": "",
        })
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(FIELDS))
            w.writeheader()
            w.writerows(records)
    return path


def read_review(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of a review file (JSON lines or CSV), each with the line it came from."""
    path = os.fspath(path)
    fmt = _fmt(path)
    out = []
    with open(path, encoding="utf-8", newline="" if fmt == "csv" else None) as f:
        if fmt == "jsonl":
            for line_no, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        out.append({**json.loads(line), "_line": line_no})
                    except json.JSONDecodeError as exc:
                        raise FormatError(f"{path}: line {line_no}: not JSON ({exc.msg})") from None
        else:
            for line_no, rec in enumerate(csv.DictReader(f), start=2):
                out.append({**rec, "_line": line_no})
    return out


def _edited_turns(rec: dict[str, Any], original: list[dict[str, str]], where: str) -> list[dict[str, str]]:
    """The conversation after an edit, with the original's image placeholders put back."""
    before = [{"from": t["from"], "value": _strip_image(t["value"]) if t["from"] == "human" else t["value"]} for t in original]
    conv = rec.get("conversation")
    turns = json.loads(conv) if isinstance(conv, str) and conv.strip() else conv or before
    if not isinstance(turns, list) or not all(isinstance(t, dict) and {"from", "value"} <= set(t) for t in turns):
        raise FormatError(f"{where}: field 'conversation': expected a JSON list of {{from, value}} turns")
    turns = [{"from": str(t["from"]), "value": str(t["value"])} for t in turns]
    if turns == before and len(turns) >= 2:  # the conversation was not touched: take question/answer
        turns[0] = {"from": "human", "value": str(rec.get("question", turns[0]["value"]))}
        turns[1] = {"from": "gpt", "value": str(rec.get("answer", turns[1]["value"]))}
    # The placeholders lead the first human turn (formats.common.add_placeholders): restore them.
    n_img = original[0]["value"].count(IMAGE_TOKEN) if original else 0
    if n_img and turns:
        turns[0] = {"from": turns[0]["from"], "value": (IMAGE_TOKEN + "\n") * n_img + _strip_image(turns[0]["value"])}
    return turns


def _check_edit(turns: list[dict[str, str]], kind: str, where: str) -> None:
    """An edited row must still be a valid item of its type."""
    if len(turns) < 2 or len(turns) % 2 or any(t["from"] != ("human" if i % 2 == 0 else "gpt") for i, t in enumerate(turns)):
        raise FormatError(f"{where}: edited conversation must alternate human/gpt and end with gpt")
    if any(not t["value"].strip() for t in turns):
        raise FormatError(f"{where}: edited conversation has an empty turn")
    if kind in ("judgement", "multiple_choice", "short_vqa") and len(turns) == 2:
        q = _strip_image(turns[0]["value"])
        suffix = TYPE_SUFFIX.get(kind, "")
        q = q[: -len(suffix)].rstrip() if suffix and q.endswith(suffix) else q
        lines = q.split("\n")
        options = [ln for ln in lines[1:] if len(ln) > 2 and ln[0] in "ABCD" and ln[1] in ".)"]
        question = "\n".join(ln for ln in lines if ln not in options)
        tags = f"<Q1> {question} </Q1>" + (f" <C1> {' '.join(options)} </C1>" if options else "") + f" <A1> {turns[1]['value']} </A1>"
        item = parse(tags, kind, n=1).items[0]
        if not item.ok:
            raise FormatError(f"{where}: edited row fails the {kind} check: {item.reject_reason} ({item.reject_detail})")


def import_review(
    ds: Dataset,
    path: str | os.PathLike,
    *,
    undecided: str = "keep",
) -> Split:
    """Apply a review file's decisions to ``ds``: a :class:`~hf_vitcurate.results.Split`, rows in = kept + rejected.

    ``undecided``: ``"keep"`` (default; ``review_decision == "pending"``), ``"reject"``
    (reason ``review_pending``) or ``"error"`` (raise naming the first undecided row).
    A decision for an id not in ``ds``, an unknown decision or an invalid edit raises
    :class:`~hf_vitcurate.FormatError` naming file, line and field.
    """
    if undecided not in ("keep", "reject", "error"):
        raise ConfigError(f"undecided must be keep, reject or error; got {undecided!r}")
    path = os.fspath(path)
    ids = list_column(ds, "id")
    index = {i: k for k, i in enumerate(ids)}
    kinds = list_column(ds, "instruction_type") if "instruction_type" in ds.column_names else list_column(ds, "task")
    convs = list_column(ds, "conversations")
    decision = ["pending"] * len(ds)
    reviewer = [""] * len(ds)
    reason = [""] * len(ds)
    new_convs = list(convs)
    for rec in read_review(path):
        where = f"{path}: line {rec['_line']}"
        rid = str(rec.get("id", ""))
        if rid not in index:
            raise FormatError(f"{where}: field 'id': {rid!r} is not a row of the dataset")
        dec = str(rec.get("decision") or "").strip().lower()
        if not dec:
            continue
        if dec not in DECISIONS:
            raise FormatError(f"{where}: field 'decision': {dec!r} is not one of {DECISIONS}")
        k = index[rid]
        decision[k], reviewer[k], reason[k] = dec, str(rec.get("reviewer") or ""), str(rec.get("reason") or "")
        if dec == "edit":
            turns = _edited_turns(rec, convs[k], where)
            if kinds[k] != CAPTION:
                _check_edit(turns, kinds[k], where)
            new_convs[k] = turns
    pending = [k for k, d in enumerate(decision) if d == "pending"]
    if pending and undecided == "error":
        raise FormatError(f"{path}: row id={ids[pending[0]]!r} has no decision ({len(pending)} undecided)")
    edited = new_convs if any(d == "edit" for d in decision) else None
    table, features = _reviewed_table(ds, edited, {"review_decision": decision, "review_reviewer": reviewer,
                                                   "review_reason": reason})
    rejected_idx = [k for k, d in enumerate(decision) if d == "reject" or (d == "pending" and undecided == "reject")]
    rejected_mask = np.zeros(len(ds), dtype=bool)
    rejected_mask[rejected_idx] = True
    reasons = ["review_rejected" if decision[k] == "reject" else "review_pending" for k in rejected_idx]
    details = [f"{reviewer[k] or 'reviewer'}: {reason[k]}" if decision[k] == "reject" else "no decision" for k in rejected_idx]
    fingerprint = _fingerprint(ds, path, undecided)
    kept = _dataset(table.filter(pa.array(~rejected_mask)), features, ds, fingerprint + "-kept")
    rej_table, rej_features = _with_columns(table.filter(pa.array(rejected_mask)), features,
                                            {"reject_reason": reasons, "reject_detail": details})
    rejected = _dataset(rej_table, rej_features, ds, fingerprint + "-rejected")
    counts = dict(Counter(reasons))
    params = {"file": os.path.basename(path), "undecided": undecided, "decisions": dict(Counter(decision)),
              "reviewers": sorted({r for r in reviewer if r})}
    kept = provenance.record(kept, "mminstruct_review", kind="review", rows_in=len(ds), rejected=counts, params=params, parent=ds)
    rejected = provenance.record(rejected, "mminstruct_review", kind="review", rows_in=len(ds), rejected=counts, params=params, parent=ds)
    return Split(kept, rejected)


def _with_columns(table: pa.Table, features: Features, columns: dict[str, list[str]]) -> tuple[pa.Table, Features]:
    """``table`` with string ``columns`` set (replaced where they exist), built in Arrow in one pass each."""
    features = Features(features)
    for name, values in columns.items():
        arr = pa.array(values, type=pa.string())
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, arr)
        else:
            table = table.append_column(name, arr)
        features[name] = Value("string")
    return table, features


def _reviewed_table(ds: Dataset, conversations: list | None, columns: dict[str, list[str]]) -> tuple[pa.Table, Features]:
    """All rows of ``ds`` as one Arrow table (indices applied), edited conversations and review columns set.

    Whole columns go to Arrow at once: ``Dataset.add_column`` would hash each Python list for a
    fingerprint and cast it again, which costs seconds per 10k rows.
    """
    table = pa.table({name: arrow_column(ds, name) for name in ds.column_names})
    if conversations is not None:
        arr = pa.array(conversations, type=ds.features.arrow_schema.field("conversations").type)
        table = table.set_column(table.column_names.index("conversations"), "conversations", arr)
    return _with_columns(table, ds.features, columns)


def _fingerprint(ds: Dataset, path: str, undecided: str) -> str:
    """A fingerprint from the input's and the review file's contents (no hashing of row lists)."""
    h = hashlib.sha256(f"{ds._fingerprint}|{undecided}|".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _dataset(table: pa.Table, features: Features, parent: Dataset, fingerprint: str) -> Dataset:
    """A ``Dataset`` over ``table`` with ``features`` and the parent's info (provenance)."""
    info = parent.info.copy()
    info.features = features
    table = update_metadata_with_features(InMemoryTable(table.combine_chunks()), features)
    return Dataset(table, info=info, split=parent.split, fingerprint=fingerprint)


__all__ = ["DECISIONS", "export_review", "import_review", "read_review"]
