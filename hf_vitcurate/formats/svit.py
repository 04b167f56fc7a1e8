"""SVIT (*SVIT: Scaling up Visual Instruction Tuning*, arXiv:2307.04087): its native release files and its LLaVA-v1.5 files.

Native layout (``conversation.json``, ``complex_reasoning.json``,
``detail_description.json``, ``referring_qa.json``): a list of
``{"image_id": 2345, "conversations": [{"content": [{"from": "user", "value": ...},
{"from": "gpt", "value": ...}, ...]}, ...]}``. Each entry of ``conversations`` becomes
one row ``"{image_id}-{task}-{k}"`` (k from 0): a conversation of 5 QAs, one complex
reasoning QA, one referring QA or one description. The image is
``image_name.format(image_id=...)`` under ``image_root`` (Visual Genome names files
``{image_id}.jpg``, split over ``VG_100K`` and ``VG_100K_2``: pass a callable
``image_name(image_id) -> path`` to pick the folder). ``<image>\\n`` is put in front of
the first question as LLaVA does. Text is copied untouched, so referring boxes
``<st>obj<ed>[x1, y1, x2, y2]`` stay exactly as written.

Task: ``task=`` if given, else the file stem when it names an SVIT task, else
``referring_qa`` for rows whose first question holds ``<st>`` and ``conversation``
otherwise. The LLaVA-v1.5 files (SVIT-mix-665K, SVIT-core-150K) are LLaVA format and
are read by :mod:`~hf_vitcurate.formats.llava` with the same rules.

Example:
    >>> ds = load("svit/referring_qa.json", image_root="vg/VG_100K")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any, Callable

from datasets import Dataset

from ..errors import ConfigError
from . import llava
from .common import (
    RowError,
    add_placeholders,
    check_errors,
    default_root,
    default_source,
    finish,
    image_ref,
    map_records,
    parse_turns,
    root_prefix,
)
from .reading import first_record, read_raw

TASKS = ("conversation", "complex_reasoning", "detail_description", "referring_qa")
_STEM_TASKS = {**{t: t for t in TASKS}, "referring_qas": "referring_qa", "detail": "detail_description"}


def load(
    path: str,
    *,
    image_root: str | None = None,
    source: str | None = None,
    task: str | None = None,
    image_name: str | Callable[[Any], str] = "{image_id}.jpg",
    layout: str = "auto",
    errors: str = "raise",
    **load_kwargs: Any,
) -> Dataset | tuple[Dataset, Dataset]:
    """Load an SVIT file, native or LLaVA-v1.5 (``layout="auto"|"native"|"llava"``)."""
    raw = read_raw(path, **load_kwargs)
    root = default_root(path) if image_root is None else image_root
    return convert(
        raw, file=path, image_root=root, source=source, default_source=default_source(path),
        task=task, image_name=image_name, layout=layout, errors=errors,
    )  # fmt: skip


def convert(
    raw: Dataset,
    *,
    file: str,
    image_root: str | None = None,
    source: str | None = None,
    default_source: str = "svit",
    task: str | None = None,
    image_name: str | Callable[[Any], str] = "{image_id}.jpg",
    layout: str = "auto",
    errors: str = "raise",
    allow_outside_root: bool = False,
) -> Dataset | tuple[Dataset, Dataset]:
    """Canonical rows from SVIT records already read into ``raw`` (see module doc)."""
    check_errors(errors)
    if layout == "auto":
        layout = "native" if "image_id" in raw.column_names else "llava"
    if layout == "llava":
        return llava.convert(raw, file=file, image_root=image_root, source=source, default_source=default_source, task=task, errors=errors, fmt="svit", allow_outside_root=allow_outside_root)
    if layout != "native":
        raise ConfigError(f"layout must be 'auto', 'native' or 'llava', got {layout!r}")
    first_record(raw)  # a clear error on an empty file
    prefix = root_prefix(image_root)
    file_task = task or _STEM_TASKS.get(os.path.splitext(os.path.basename(file))[0].lower())

    def one(rec: dict[str, Any], row: int) -> list[dict[str, Any]]:
        image_id = rec.get("image_id")
        if image_id in (None, ""):
            raise RowError("image_id", "missing_field", "record has no image_id")
        convs = rec.get("conversations")
        if not isinstance(convs, list) or not convs:
            raise RowError("conversations", "missing_field", "record has no list of conversations")
        name = image_name(image_id) if callable(image_name) else image_name.format(image_id=image_id)
        images = [image_ref(name, prefix, "image_id")]
        rows = []
        for k, conv in enumerate(convs):
            content = conv.get("content") if isinstance(conv, dict) else None
            turns = parse_turns(content, field=f"conversations[{k}].content")
            kind = file_task or llava.infer_task(turns[0]["value"] if turns else None)
            rows.append({
                "id": f"{image_id}-{kind}-{k}",
                "images": images,
                "conversations": add_placeholders(turns, 1),
                "source": source or default_source,
                "task": kind,
            })  # fmt: skip
        return rows

    ds = map_records(raw, one, reject_row=lambda rec, row: {"id": f"{rec.get('image_id')}"}, desc="converting svit")
    params = {"image_root": image_root, "source": source or default_source, "task": file_task, "layout": "native", "image_name": image_name}
    return finish(ds, fmt="svit", file=file, rows_in=len(raw), errors=errors, params=params, parent=raw, image_root=image_root, allow_outside_root=allow_outside_root)
