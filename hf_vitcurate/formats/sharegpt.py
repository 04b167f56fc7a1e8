"""ShareGPT / OpenAI-style chat records.

Read both shapes:

* ``{"messages": [{"role": "user"|"assistant"|"system", "content": ...}], "images": [...]}``
  where ``content`` is a string or a list of parts ``{"type": "text", "text": ...}`` /
  ``{"type": "image"|"image_url", ...}``;
* ``{"conversations": [{"from": ..., "value": ...}], "images": [...]}`` (ShareGPT).

An image part becomes an ``<image>`` mark where it stands (parts are joined with
``"\\n"``); its reference (``image``, ``path``, ``url`` or ``image_url.url``) is used
when the record has no ``images`` list. When no turn has a mark but there are images,
one ``<image>\\n`` per image goes in front of the first question. ``system`` messages
(and a top-level ``system`` field): ``system="drop"`` (default, the schema has no
system turn), ``"prepend"`` (to the first question) or ``"reject"``. Ids: ``id`` if
present, else ``"{source}-{row}"``. Task: ``task=``, a ``task`` field, else inferred
from the first question (:func:`~hf_vitcurate.formats.llava.infer_task`).

Example:
    >>> ds = load("chat.jsonl", image_root="imgs")  # doctest: +SKIP
    >>> save(ds, "chat_out.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Iterable

from datasets import Dataset

from ..errors import ConfigError
from ..schema import IMAGE_TOKEN
from .common import (
    RowError,
    add_placeholders,
    check_errors,
    default_root,
    default_source,
    finish,
    image_list,
    map_records,
    parse_turns,
    root_prefix,
    row_id,
)
from .writing import write_records
from .reading import read_raw
from .llava import infer_task

SYSTEM_POLICIES = ("drop", "prepend", "reject")
_ROLE_OUT = {"human": "user", "gpt": "assistant"}


def load(
    path: str,
    *,
    image_root: str | None = None,
    source: str | None = None,
    task: str | None = None,
    system: str = "drop",
    errors: str = "raise",
    **load_kwargs: Any,
) -> Dataset | tuple[Dataset, Dataset]:
    """Load ShareGPT/OpenAI-style records into the canonical schema."""
    raw = read_raw(path, **load_kwargs)
    root = default_root(path) if image_root is None else image_root
    return convert(raw, file=path, image_root=root, source=source, default_source=default_source(path), task=task, system=system, errors=errors)


def convert(
    raw: Dataset,
    *,
    file: str,
    image_root: str | None = None,
    source: str | None = None,
    default_source: str = "sharegpt",
    task: str | None = None,
    system: str = "drop",
    errors: str = "raise",
    allow_outside_root: bool = False,
) -> Dataset | tuple[Dataset, Dataset]:
    """Canonical rows from chat records already read into ``raw``."""
    check_errors(errors)
    if system not in SYSTEM_POLICIES:
        raise ConfigError(f"system must be one of {SYSTEM_POLICIES}, got {system!r}")
    prefix = root_prefix(image_root)

    def one(rec: dict[str, Any], row: int) -> list[dict[str, Any]]:
        src = source or rec.get("source") or default_source
        if "messages" in rec:
            field, items = "messages", rec["messages"]
            if not isinstance(items, list):
                raise RowError(field, "bad_conversations", f"expected a list of messages, got {type(items).__name__}")
            inline: list[Any] = []
            items = [_flatten_message(m, k, inline) for k, m in enumerate(items)]
            role_key, text_key = "role", "content"
        else:
            field, items, inline = "conversations", rec.get("conversations"), []
            role_key, text_key = "from", "value"
        system_texts = [rec["system"]] if isinstance(rec.get("system"), str) and rec["system"].strip() else []
        system_texts += [m.get(text_key) for m in items or [] if isinstance(m, dict) and m.get(role_key) == "system"]
        if system_texts and system == "reject":
            raise RowError(field, "system_message", "record has a system message (system='reject')")
        turns = parse_turns(items, role_key=role_key, text_key=text_key, field=field, drop_roles=("system",))
        if system_texts and system == "prepend" and turns:
            turns[0] = {**turns[0], "value": "\n".join(str(t) for t in system_texts) + "\n" + turns[0]["value"]}
        refs = rec.get("images") or inline
        images = image_list(refs, prefix)
        return [{
            "id": str(rec.get("id") or row_id(src, row)),
            "images": images,
            "conversations": add_placeholders(turns, len(images)),
            "source": src,
            "task": task or rec.get("task") or infer_task(turns[0]["value"] if turns else None),
        }]  # fmt: skip

    ds = map_records(raw, one, reject_row=lambda rec, row: {"id": str(rec.get("id") or "")}, desc="converting sharegpt")
    params = {"image_root": image_root, "source": source or default_source, "task": task, "system": system}
    return finish(ds, fmt="sharegpt", file=file, rows_in=len(raw), errors=errors, params=params, parent=raw, image_root=image_root, allow_outside_root=allow_outside_root)


def _flatten_message(message: Any, k: int, inline: list[Any]) -> Any:
    """A message whose ``content`` is a list of parts -> the same message with text content."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    pieces = []
    for j, part in enumerate(message["content"]):
        where = f"messages[{k}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise RowError(f"{where}.text", "non_text_value", "text part has no 'text' string")
            pieces.append(part["text"])
        elif kind in ("image", "image_url"):
            pieces.append(IMAGE_TOKEN)
            ref = part.get("image") or part.get("path") or part.get("url") or part.get("image_url")
            if isinstance(ref, dict):
                ref = ref.get("url") or ref
            if ref:
                inline.append(ref)
        else:
            raise RowError(f"{where}.type", "unknown_part", f"part type {kind!r} is not text, image or image_url")
    return {**message, "content": "\n".join(pieces)}


def save(
    ds: Dataset,
    path: str,
    *,
    image_root: str | None = None,
    image_dir: str | None = None,
    extra_keys: Iterable[str] = ("source", "task"),
    map_batch_size: int = 10_000,
    image_paths: str = "under_root",
) -> str:
    """Write ``ds`` as ``{"id", "messages": [{"role", "content"}], "images": [paths]}`` JSON/JSONL.

    ``content`` is a string with the ``<image>`` marks kept; image paths and ``extra_keys``
    follow :func:`hf_vitcurate.formats.llava.save`.
    """
    def to_record(row: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        messages = [{"role": _ROLE_OUT.get(t["from"], t["from"]), "content": t["value"]} for t in row["conversations"]]
        return {"id": row["id"], "messages": messages, "images": paths}

    return write_records(ds, path, to_record, image_root=image_root, image_dir=image_dir, extra_keys=extra_keys, map_batch_size=map_batch_size, image_paths=image_paths)
