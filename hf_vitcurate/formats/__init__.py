"""Foreign VIT formats to the canonical schema, and back.

Formats (module: what a record looks like; * = has ``save``):

- ``llava``*: ``{id, image (path | list of paths | absent), conversations: [{from, value}]}``,
  also LLaVA-Bench ``{id, image, instruction, output, type}``;
- ``svit``: native ``{image_id, conversations: [{content: [{from, value}]}]}``, or its
  LLaVA-v1.5 files (read with the LLaVA rules);
- ``mminstruct``: ``{id, image, domain, type, output}``, ``output`` the raw generator text
  ``<Q1>..</Q1><C1>..</C1><A1>..</A1>`` (seed questions: ``mminstruct.load_seeds``);
- ``cauldron``: ``{images, texts: [{user, assistant}]}`` (the_cauldron);
- ``sharegpt``*: ``{messages: [{role, content: str | [parts]}], images?}`` or
  ``{conversations: [{from, value}], images}``;
- ``captions``: ``{image_id, caption}`` (MiniGPT-4's CC-SBU-Align ``{"annotations": [...]}``,
  COCO captions ``{"images": [...], "annotations": [...]}``), one caption row each;
- ``canonical``: already the schema (``id, images, conversations, source, task``).

:func:`load_vit` reads a local file (``.json``, ``.jsonl``, ``.parquet``, ``.arrow``), a
folder (``save_to_disk`` or data files) or a Hub repo id, detects the format from the
first record's keys (:func:`detect_format`), converts it with the format's ``convert``
and records a ``convert`` provenance step. Images stay lazy: paths or bytes in the
``Image`` struct, decoded only when a row is read. Errors name the file, the row
(0-based index of the input record), the id and the field.

Example:
    >>> from hf_vitcurate import load_vit
    >>> ds = load_vit("llava_v1_5_mix665k.json", image_root="playground/data")  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from typing import Any

from datasets import Dataset, Features

from ..errors import FormatError
from ..results import Split
from . import captions, cauldron, llava, mminstruct, sharegpt, svit
from .common import (
    ROW,
    check_errors,
    has_canonical_columns,
    default_root,
    default_source,
    finish,
)
from .reading import first_record, read_raw
from .explode import explode_turns

FORMATS = ("llava", "svit", "mminstruct", "cauldron", "sharegpt", "captions", "canonical")
SAVERS = {"llava": llava.save, "sharegpt": sharegpt.save}
_SEED_KEYS = set(mminstruct.SEED_KINDS)
logger = logging.getLogger(__name__)
_SEED_MESSAGE = (
    "an MMInstruct seed-question file (questions without answers, not VIT rows); "
    "read it with hf_vitcurate.formats.mminstruct.load_seeds"
)


def detect_format(record: dict[str, Any]) -> str:
    """Name of the format a record is in, from its keys; raises FormatError when unknown.

    Example:
        >>> detect_format({"id": "1", "image": "a.jpg", "conversations": []})
        'llava'
        >>> detect_format({"messages": []})
        'sharegpt'
    """
    keys = set(record)
    conv = record.get("conversations")
    first_turn = conv[0] if isinstance(conv, list) and conv else None
    if "messages" in keys:
        return "sharegpt"
    if {"texts", "images"} <= keys:
        return "cauldron"
    if "image_id" in keys and isinstance(first_turn, dict) and "content" in first_turn:
        return "svit"
    if "domain" in keys and keys & set(mminstruct.OUTPUT_KEYS) and keys & set(mminstruct.TYPE_KEYS):
        return "mminstruct"
    if has_canonical_columns(keys):
        return "canonical"
    if {"image_id", "caption"} <= keys:
        return "captions"
    if "conversations" in keys and "images" in keys:
        return "sharegpt"
    if "conversations" in keys or {"instruction", "output"} <= keys:
        return "llava"
    if keys and keys <= _SEED_KEYS:
        raise FormatError(f"this is {_SEED_MESSAGE}")
    raise FormatError(f"unknown format: record keys {sorted(keys)} match none of {list(FORMATS)}")


def _peek_file(path: str, field: str | None = None) -> dict[str, Any]:
    """Fail early, with a clear message, on JSON files that are one object, not records.

    Returns what reading needs to know: ``{"field": "annotations", "image_files": {...}}``
    for a caption file (MiniGPT-4, COCO), else ``{}``.
    """
    if not path.lower().endswith(".json") or not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
        head = f.read(1 << 16).lstrip()
    if not head.startswith("{"):
        return {}
    try:
        obj, end = json.JSONDecoder().raw_decode(head)
    except (json.JSONDecodeError, RecursionError):
        with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
            try:
                obj = json.load(f)
            except (json.JSONDecodeError, RecursionError):
                return {}  # JSON Lines with a long first line: datasets reads it
        end = None
    if end is not None and head[end:].lstrip().startswith("{"):
        return {}  # JSON Lines stored as .json
    lists = [k for k, v in obj.items() if isinstance(v, list)] if isinstance(obj, dict) else []
    if field is not None:
        if field not in lists:
            raise FormatError(f"{path}: field={field!r} is not a list of records in this file (lists: {lists})")
        found = field
    elif captions.is_caption_file(obj):
        found = "annotations"
    else:
        found = None
    if found is not None:
        files = captions.image_files(obj) if found == "annotations" and captions.is_caption_file(obj) else None
        return {"field": found, **({"image_files": files} if files is not None else {})}
    if isinstance(obj, dict) and set(obj) <= _SEED_KEYS:
        raise FormatError(f"{path}: this is {_SEED_MESSAGE}")
    raise FormatError(f"{path}: one JSON object, not a list of records; records under a key? pass field= (one of {lists})")


def load_vit(
    path_or_repo_id: str,
    *,
    format: str = "auto",
    image_root: str | None = None,
    source: str | None = None,
    task: str | None = None,
    errors: str = "raise",
    allow_outside_root: bool | None = None,
    name: str | None = None,
    split: str | None = None,
    **load_kwargs: Any,
) -> Dataset | Split:
    """Load a VIT dataset in any supported format into the canonical schema.

    Args:
        path_or_repo_id: a ``.json``/``.jsonl``/``.parquet`` file, a folder (saved with
            ``save_to_disk`` or holding data files) or a Hub dataset repo id (read with
            ``datasets.load_dataset(path, name, split=split)``).
        format: one of :data:`FORMATS` or ``"auto"`` (detect from the first record).
        image_root: folder that relative image paths are under (default: the folder of
            a local file; folders and repo ids keep paths as stored).
        source: value of the ``source`` column (default: a ``source`` field of the
            records, else the file stem / config name / repo name).
        task: value of the ``task`` column for every row (default: per format).
        errors: ``"raise"`` (FormatError naming file, row, id and field of the first
            malformed record) or ``"reject"`` (returns a :class:`~hf_vitcurate.results.Split`
            ``(kept, rejected)``; rejected
            rows carry ``row``, ``reject_reason`` and ``reject_detail``). A JSON Lines
            line that does not read (malformed JSON, not an object, bytes that are not
            UTF-8, a lone surrogate escape) is one bad record named by its line; the rest
            loads.
        allow_outside_root: read image paths that resolve outside ``image_root``
            (``../``, absolute paths elsewhere, symlinks pointing out). ``None``
            (default): refused (reason ``image_outside_root``) in foreign formats, allowed
            in canonical files, which this package writes with the paths as stored.
            Local files only: folders and repo ids have no root.
        **load_kwargs: passed to ``datasets.load_dataset`` (``cache_dir``, ``revision``,
            ``field``: the list of records inside one JSON object, ...); format options
            (``system=`` for sharegpt, ``instruction=`` and ``image_name=`` for captions)
            go to the format's ``convert``.

    Example:
        >>> ds = load_vit("HuggingFaceM4/the_cauldron", name="ai2d")  # doctest: +SKIP
        >>> kept, rejected = load_vit("gen.jsonl", format="mminstruct", errors="reject")  # doctest: +SKIP
    """
    check_errors(errors)
    if format != "auto" and format not in FORMATS:
        raise FormatError(f"unknown format {format!r}; formats are {list(FORMATS)} or 'auto'")
    peek = _peek_file(path_or_repo_id, load_kwargs.get("field"))
    if "field" in peek:
        load_kwargs["field"] = peek["field"]
    module_kwargs = {k: load_kwargs.pop(k) for k in list(load_kwargs) if k in _FORMAT_OPTIONS}
    raw = with_saved_steps(read_raw(path_or_repo_id, name=name, split=split, **load_kwargs), path_or_repo_id)
    if format == "auto" and len(raw):
        try:
            format = detect_format(first_record(raw))
        except FormatError as err:
            raise FormatError(f"{path_or_repo_id}: {err}") from None
    root = default_root(path_or_repo_id) if image_root is None else image_root
    fallback = name or default_source(path_or_repo_id)
    common = dict(file=path_or_repo_id, image_root=root, source=source, default_source=fallback, task=task, errors=errors)
    if len(raw) == 0:
        return _empty(path_or_repo_id, errors=errors, params={"source": source, "task": task})
    if format == "canonical":
        return with_license(_canonical(raw, **common, allow_outside_root=True if allow_outside_root is None else allow_outside_root),
                            raw.info.license)
    common["allow_outside_root"] = bool(allow_outside_root)
    module = {"llava": llava, "svit": svit, "mminstruct": mminstruct, "cauldron": cauldron, "sharegpt": sharegpt, "captions": captions}[format]
    if format == "captions" and "image_files" in peek:
        module_kwargs.setdefault("image_files", peek["image_files"])
    unknown = set(module_kwargs) - set(inspect.signature(module.convert).parameters)
    if unknown:
        raise TypeError(f"option(s) {sorted(unknown)} do not apply to format {format!r}")
    return with_license(module.convert(raw, **common, **module_kwargs), raw.info.license)


def with_saved_steps(raw: Dataset, path: str) -> Dataset:
    """``raw`` carrying the provenance a local Parquet file holds (written by the CLI's ``--output x.parquet``)."""
    if not (isinstance(path, str) and path.endswith(".parquet") and os.path.isfile(path)):
        return raw
    import pyarrow.parquet as pq

    from .. import provenance

    saved = provenance.steps_from_parquet_metadata(pq.read_metadata(path).metadata)
    return provenance.with_steps(raw, saved) if saved else raw


def with_license(out: Dataset | Split, license: str | None) -> Dataset | Split:
    """The convert step of ``out`` noting the source's license (a Hub dataset's card declares it), for the card."""
    if not license:
        return out
    from .. import provenance

    def note(ds: Dataset) -> Dataset:
        found = provenance.steps(ds)
        if found and found[-1].get("kind") == "convert":
            found[-1] = {**found[-1], "params": {**found[-1].get("params", {}), "license": license}}
        return provenance.with_steps(ds, found)

    return Split(note(out.kept), note(out.rejected)) if isinstance(out, Split) else note(out)


# Options of one format's convert() that load_vit passes through (the rest go to load_dataset).
_FORMAT_OPTIONS = {"system", "layout", "image_name", "add_suffix", "instruction"}


def _canonical(raw: Dataset, *, file: str, image_root: str | None, source: str | None, task: str | None, errors: str,
               allow_outside_root: bool = True, **_: Any):
    """Input already in the schema: relative image paths joined to ``image_root``, cast, optionally override source/task, record the step."""
    from ..schema import CORE_COLUMNS
    from .relocate import resolve_images

    ds = resolve_images(raw, image_root)
    for col, value in (("source", source), ("task", task)):
        if value:
            ds = ds.remove_columns(col).add_column(col, [value] * len(ds))
    ds = ds.select_columns(list(CORE_COLUMNS) + [c for c in ds.column_names if c not in CORE_COLUMNS])
    ds = ds.add_column("_row", list(range(len(ds)))).add_column("reject_reason", [""] * len(ds)).add_column("reject_detail", [""] * len(ds))
    return finish(ds, fmt="canonical", file=file, rows_in=len(raw), errors=errors, params={"source": source, "task": task}, parent=raw,
                  image_root=image_root, allow_outside_root=allow_outside_root)


def _empty(file: str, *, errors: str, params: dict[str, Any]) -> Dataset | Split:
    """0 records (an empty file, ``[]``, a 0-row output of another command): 0 canonical rows."""
    from .. import provenance
    from ..schema import FEATURES
    from .common import BOOKKEEPING

    logger.warning("%s: 0 records", file)
    kept = provenance.record(Dataset.from_dict({k: [] for k in FEATURES}, features=FEATURES), "canonical", kind="convert",
                             rows_in=0, params={"file": file, "errors": errors, **params})
    if errors != "reject":
        return kept
    features = {**FEATURES, "row": BOOKKEEPING[ROW], "reject_reason": BOOKKEEPING["reject_reason"], "reject_detail": BOOKKEEPING["reject_detail"]}
    return Split(kept, Dataset.from_dict({k: [] for k in features}, features=Features(features)))


def save_vit(ds: Dataset, path: str, *, format: str = "llava", **kwargs: Any) -> str:
    """Write ``ds`` in a foreign format (``llava`` or ``sharegpt``); see each module's ``save``."""
    if format not in SAVERS:
        raise FormatError(f"cannot save as {format!r}; savers exist for {sorted(SAVERS)}")
    return SAVERS[format](ds, path, **kwargs)


__all__ = ["FORMATS", "detect_format", "explode_turns", "load_vit", "save_vit"]
