"""LLaVA JSON/JSONL: ``{"id", "image", "conversations": [{"from", "value"}]}``.

``image`` is a path relative to ``image_root`` (default: the folder of the file), a
list of paths (multi-image rows), or absent (text-only rows). Paths are joined to the
root and stored in the ``Image`` struct; nothing is opened or decoded while loading.
The LLaVA-Bench layout ``{"id", "image", "instruction", "output", "type"}`` is read too.

Conversion is Arrow-native: ``load_dataset("json")`` reads the file into memory-mapped
Arrow, then one batched ``map`` builds the canonical columns with ``pyarrow.compute``
(no Python loop over rows unless a column has mixed JSON types, e.g. ``image`` being a
string in some rows and a list in others).

Ids: the record's ``id`` (numbers become strings); a missing or empty id becomes
``"{source}-{row}"`` (row = index of the record in the file). LLaVA-Bench repeats ids
(one image, three questions), so its ids are ``"{id}-{type}"``.

Task: ``task=`` if given, else a ``task`` key of the record, else LLaVA-Bench ``type``
(conv/detail/complex -> conversation/detail_description/complex_reasoning), else
inferred from the first question by :data:`TASK_RULES` (the fixed prompts LLaVA-1.5,
SVIT and MMInstruct append), else ``"conversation"`` (LLaVA-Instruct's conversation,
detail and reasoning rows cannot be told apart from their text).

Source: ``source=`` if given, else a ``source`` key of the record, else the file stem.

Example:
    >>> ds = load("llava_instruct.json", image_root="coco/train2017")  # doctest: +SKIP
    >>> save(ds, "out.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Features

from ..errors import FormatError
from ..schema import IMAGE_TOKEN
from .common import (
    ROLE_NAMES,
    ROW,
    BatchRejects,
    RowError,
    check_errors,
    const_strings,
    default_root,
    default_source,
    finish,
    is_json_column,
    output_features,
    parse_turns,
    resolve_paths,
    root_prefix,
    string_column,
)
from .writing import write_records
from .reading import read_raw

# (text in the first question, task). The rule whose text comes first in the question wins.
TASK_RULES: list[tuple[str, str]] = [
    ("<st>", "referring_qa"),  # SVIT referring QAs wrap objects as <st>obj<ed>[x1, y1, x2, y2]
    ("Please provide the bounding box coordinate of the region this sentence describes", "referring_qa"),
    ("Please provide a short description for this region", "referring_qa"),
    ("Answer the question using a single word or phrase", "short_vqa"),
    ("Answer with the option's letter from the given choices directly", "multiple_choice"),
    ("Please choose the most appropriate option", "multiple_choice"),
    ("Please answer yes or no", "judgement"),
    ("Provide a one-sentence caption for the provided image", "caption"),
]
DEFAULT_TASK = "conversation"
BENCH_TASKS = {"conv": "conversation", "detail": "detail_description", "complex": "complex_reasoning"}
_RULE_TASK = dict(TASK_RULES)
# One regex for all rules, the same in Python (re) and Arrow (RE2): leftmost match wins.
_RULE_RE = "(?P<rule>" + "|".join(re.escape(text) for text, _ in TASK_RULES) + ")"
_RULE = re.compile(_RULE_RE)


def infer_task(question: str | None, default: str = DEFAULT_TASK) -> str:
    """Task of a row from its first question by :data:`TASK_RULES` (row-by-row formats use this).

    Example:
        >>> infer_task("What is it?\\nAnswer the question using a single word or phrase.")
        'short_vqa'
    """
    m = _RULE.search(question or "")
    return _RULE_TASK[m.group(0)] if m else default


def load(
    path: str,
    *,
    image_root: str | None = None,
    source: str | None = None,
    task: str | None = None,
    errors: str = "raise",
    **load_kwargs: Any,
) -> Dataset | tuple[Dataset, Dataset]:
    """Load a LLaVA JSON/JSONL file (or folder / repo id) into the canonical schema.

    ``errors="reject"`` returns ``(kept, rejected)`` instead of raising
    :class:`~hf_vitcurate.FormatError` on the first malformed record.

    Example:
        >>> ds = load("llava_v1_5_mix665k.json", image_root="playground/data")  # doctest: +SKIP
    """
    raw = read_raw(path, **load_kwargs)
    root = default_root(path) if image_root is None else image_root
    return convert(raw, file=path, image_root=root, source=source, default_source=default_source(path), task=task, errors=errors)


def convert(
    raw: Dataset,
    *,
    file: str,
    image_root: str | None = None,
    source: str | None = None,
    default_source: str = "llava",
    task: str | None = None,
    errors: str = "raise",
    allow_outside_root: bool = False,
    fmt: str = "llava",
) -> Dataset | tuple[Dataset, Dataset]:
    """Canonical rows from raw LLaVA records already read into ``raw`` (see :func:`load`)."""
    check_errors(errors)
    cols = set(raw.column_names)
    bench = "conversations" not in cols and {"instruction", "output"} <= cols
    if "conversations" not in cols and not bench:
        raise FormatError(f"{file}: no 'conversations' field (fields: {sorted(cols)}); is this LLaVA format?")
    fn = partial(
        _convert_batch,
        prefix=root_prefix(image_root),
        source=source,
        default_source=default_source,
        task=task,
        bench=bench,
        features=raw.features,
    )
    ds = raw.with_format("arrow").map(
        fn,
        batched=True,
        batch_size=10_000,
        with_indices=True,
        remove_columns=raw.column_names,
        features=output_features(),
        desc=f"converting {fmt}",
    )
    params = {"image_root": image_root, "source": source or default_source, "task": task, "layout": "llava_bench" if bench else "llava"}
    return finish(ds, fmt=fmt, file=file, rows_in=len(raw), errors=errors, params=params, parent=raw, image_root=image_root, allow_outside_root=allow_outside_root)


# ---------------------------------------------------------------- one Arrow batch


def _convert_batch(
    table: pa.Table,
    indices: list[int],
    *,
    prefix: str | None,
    source: str | None,
    default_source: str,
    task: str | None,
    bench: bool,
    features: Features,
) -> pa.Table:
    n = table.num_rows
    rej = BatchRejects(n)
    rows = pa.array(indices, pa.int64())

    src = const_strings(source, n) if source else pc.fill_null(_column(table, "source", rej), default_source)
    ids = _column(table, "id", rej)
    kind = _column(table, "type", rej) if bench else None  # LLaVA-Bench: conv / detail / complex
    if kind is not None:
        ids = pc.if_else(pc.is_null(kind), ids, pc.binary_join_element_wise(ids, kind, "-"))
    derived = pc.binary_join_element_wise(src, pc.cast(rows, pa.string()), "-")
    ids = pc.if_else(pc.fill_null(pc.equal(ids, ""), True), derived, ids)

    n_images, images = _images(table, prefix, rej)
    if bench:
        lengths, roles, values = _bench_turns(table, rej)
    else:
        lengths, roles, values = _turns(table, rej, features)
    values = _with_placeholders(lengths, roles, values, n_images)

    if task:
        tasks = const_strings(task, n)
    else:
        tasks = _column(table, "task", rej)
        if kind is not None:
            tasks = pc.coalesce(tasks, pa.array([BENCH_TASKS.get(k, k) for k in kind.to_pylist()], pa.string()))
        tasks = pc.coalesce(tasks, _infer_tasks(lengths, values))

    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int32())
    turns = pa.StructArray.from_arrays([roles, values], names=["from", "value"])
    reasons, details = rej.columns()
    return pa.table(
        {
            "id": ids,
            "images": images,
            "conversations": pa.ListArray.from_arrays(offsets, turns),
            "source": src,
            "task": tasks,
            ROW: rows,
            "reject_reason": reasons,
            "reject_detail": details,
        }
    )


def _column(table: pa.Table, name: str, rej: BatchRejects) -> pa.Array:
    """An optional string column (all null when absent)."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return string_column(table[name], name, rej)


def _images(table: pa.Table, prefix: str | None, rej: BatchRejects) -> tuple[np.ndarray, pa.Array]:
    """(images per row, ``List(Image)`` storage) from ``image``: a path, a list of paths or null."""
    n = table.num_rows
    if "image" not in table.column_names:
        lengths, flat = np.zeros(n, dtype=np.int64), pa.array([], pa.string())
    else:
        col = table["image"].combine_chunks()
        if (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) and pc.any(pc.starts_with(col, "[")).as_py():
            # A list that datasets met after the first block is stored as its JSON text.
            lengths, flat = _images_python(col, rej)
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
            present = np.asarray(pc.fill_null(pc.not_equal(col, ""), False))
            lengths, flat = present.astype(np.int64), col.filter(pa.array(present))
        elif pa.types.is_list(col.type) and pa.types.is_string(col.type.value_type):
            lengths = np.asarray(pc.fill_null(pc.list_value_length(col), 0), dtype=np.int64)
            flat = pc.list_flatten(col)
            if flat.null_count:
                for i in np.unique(np.repeat(np.arange(n), lengths)[np.asarray(flat.is_null())]):
                    rej.add(i, "image", "bad_image", "a null entry in the image list")
                flat = pc.fill_null(flat, "")
        elif pa.types.is_null(col.type):
            lengths, flat = np.zeros(n, dtype=np.int64), pa.array([], pa.string())
        else:
            lengths, flat = _images_python(col, rej)
    paths = resolve_paths(flat, prefix)
    structs = pa.StructArray.from_arrays([pa.nulls(len(paths), pa.binary()), paths], names=["bytes", "path"])
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int32())
    return lengths, pa.ListArray.from_arrays(offsets, structs)


def _images_python(col: pa.Array, rej: BatchRejects) -> tuple[np.ndarray, pa.Array]:
    """Slow path for mixed ``image`` values (string in some rows, list in others)."""
    values = col.storage.to_pylist() if is_json_column(col) else col.to_pylist()
    lengths, flat = [], []
    for i, v in enumerate(values):
        if is_json_column(col) and v is not None:
            v = json.loads(v)
        if isinstance(v, str) and v.startswith("["):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass  # a path that starts with "[" after all
        v = [] if v in (None, "") else [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not all(isinstance(p, str) and p for p in v):
            rej.add(i, "image", "bad_image", f"image is {str(v)[:60]!r}, not a path or a list of paths")
            v = []
        lengths.append(len(v))
        flat.extend(v)
    return np.asarray(lengths, dtype=np.int64), pa.array(flat, pa.string())


def _turns(table: pa.Table, rej: BatchRejects, features: Features) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """(turns per row, roles, values) of ``conversations``, roles mapped to human/gpt."""
    col = table["conversations"].combine_chunks()
    item = col.type.value_type if pa.types.is_list(col.type) else None
    fast = (
        item is not None
        and pa.types.is_struct(item)
        and item.get_field_index("from") >= 0
        and item.get_field_index("value") >= 0
        and pa.types.is_string(item.field("from").type)
        and pa.types.is_string(item.field("value").type)
    )
    if not fast:
        return _turns_python(col, rej, features.get("conversations"))
    for i in np.flatnonzero(np.asarray(col.is_null())):
        rej.add(i, "conversations", "missing_field", "record has no conversations")
    lengths = np.asarray(pc.fill_null(pc.list_value_length(col), 0), dtype=np.int64)
    flat = pc.list_flatten(col)
    roles, values = pc.struct_field(flat, "from"), pc.struct_field(flat, "value")
    return lengths, *_map_roles(lengths, roles, values, rej)


def _turns_python(col: pa.Array, rej: BatchRejects, feature: Any) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Slow path: turns with mixed JSON types go through the shared :func:`parse_turns`."""
    from .common import _decode_json

    values = col.storage.to_pylist() if is_json_column(col) else col.to_pylist()
    lengths, roles, texts = [], [], []
    for i, conv in enumerate(values):
        conv = _decode_json(conv, feature) if feature is not None else conv
        try:
            if conv is None:
                raise RowError("conversations", "missing_field", "record has no conversations")
            turns = parse_turns(conv)
        except RowError as err:
            rej.add(i, err.field, err.code, err.problem)
            turns = []
        lengths.append(len(turns))
        roles.extend(t["from"] for t in turns)
        texts.extend(t["value"] for t in turns)
    return np.asarray(lengths, dtype=np.int64), pa.array(roles, pa.string()), pa.array(texts, pa.string())


def _map_roles(lengths: np.ndarray, roles: pa.Array, values: pa.Array, rej: BatchRejects) -> tuple[pa.Array, pa.Array]:
    """Roles through :data:`ROLE_NAMES` (vectorised over distinct names); bad turns rejected."""
    enc = pc.dictionary_encode(roles).combine_chunks() if isinstance(roles, pa.ChunkedArray) else pc.dictionary_encode(roles)
    names = [ROLE_NAMES.get(r.strip().lower()) if r is not None else None for r in enc.dictionary.to_pylist()]
    mapped = pa.array(names, pa.string()).take(enc.indices)
    missing_role = np.asarray(roles.is_null())
    unknown = np.asarray(mapped.is_null()) & ~missing_role
    missing_value = np.asarray(values.is_null())
    bad = np.flatnonzero(missing_role | unknown | missing_value)
    if len(bad):
        parent = np.repeat(np.arange(len(lengths)), lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)])
        role_list = roles.to_pylist()
        for t in bad:
            i = parent[t]
            k = t - starts[i]
            if missing_role[t]:
                rej.add(i, f"conversations[{k}].from", "missing_role", "turn has no 'from'")
            elif unknown[t]:
                rej.add(i, f"conversations[{k}].from", "unknown_role", f"role {role_list[t]!r} is not one of {sorted(ROLE_NAMES)}")
            else:
                rej.add(i, f"conversations[{k}].value", "non_text_value", "turn has no 'value' string")
    return mapped, values


def _bench_turns(table: pa.Table, rej: BatchRejects) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """LLaVA-Bench rows: one human turn (``instruction``) and one gpt turn (``output``)."""
    n = table.num_rows
    q = string_column(table["instruction"], "instruction", rej)
    a = string_column(table["output"], "output", rej)
    for name, col in (("instruction", q), ("output", a)):
        for i in np.flatnonzero(np.asarray(col.is_null())):
            rej.add(i, name, "missing_field", f"record has no {name!r}")
    order = np.empty(2 * n, dtype=np.int64)
    order[0::2], order[1::2] = np.arange(n), np.arange(n) + n
    values = pa.concat_arrays([pc.fill_null(q, ""), pc.fill_null(a, "")]).take(pa.array(order))
    roles = pa.array(np.tile(np.array(["human", "gpt"], dtype=object), n), pa.string())
    return np.full(n, 2, dtype=np.int64), roles, values


def _with_placeholders(lengths: np.ndarray, roles: pa.Array, values: pa.Array, n_images: np.ndarray) -> pa.Array:
    """Vectorised :func:`~hf_vitcurate.formats.common.add_placeholders` (same rule)."""
    if not n_images.any() or len(values) == 0:
        return values
    parent = np.repeat(np.arange(len(lengths)), lengths)
    marked = np.asarray(pc.fill_null(pc.match_substring(values, IMAGE_TOKEN), False))
    need = (np.bincount(parent[marked], minlength=len(lengths)) == 0) & (n_images > 0)
    if not need.any():
        return values
    human = np.asarray(pc.fill_null(pc.equal(roles, "human"), False))
    cand = np.flatnonzero(human & need[parent])
    _, first = np.unique(parent[cand], return_index=True)
    targets = cand[first]
    prefix = np.full(len(values), "", dtype=object)
    prefix[targets] = [(IMAGE_TOKEN + "\n") * int(k) for k in n_images[parent[targets]]]
    return pc.binary_join_element_wise(pa.array(prefix, pa.string()), values, "")


def _infer_tasks(lengths: np.ndarray, values: pa.Array) -> pa.Array:
    """Vectorised :func:`infer_task` on each row's first turn (one regex pass)."""
    n = len(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)])[:n]
    if not len(values):
        return const_strings(DEFAULT_TASK, n)
    first = values.take(pa.array(np.where(lengths > 0, starts, 0)))
    first = pc.if_else(pa.array(lengths > 0), first, pa.nulls(n, pa.string()))
    hit = pc.dictionary_encode(pc.struct_field(pc.extract_regex(first, _RULE_RE), "rule"))
    tasks = pa.array([_RULE_TASK[text] for text in hit.dictionary.to_pylist()], pa.string()).take(hit.indices)
    return pc.fill_null(tasks, DEFAULT_TASK)


# ---------------------------------------------------------------- saving


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
    """Write ``ds`` as LLaVA JSON (``.json``, one array) or JSON Lines (``.jsonl``).

    ``image`` is a string for one image, a list for several, absent for text-only rows.
    Paths under ``image_root`` (default: the output's folder) are written relative to
    it, other paths absolutely (``image_paths="relative"``: all relative to it;
    ``"copy"``: every image copied to ``image_dir``); images held only as bytes are written to ``image_dir``
    (default ``<image_root>/images``) as ``{id}-{k}.{ext}``. ``extra_keys`` are copied
    (LLaVA training code ignores unknown keys; they make save -> load exact); pass
    ``()`` for the bare three keys.

    Example:
        >>> save(load("in.json"), "out.jsonl", extra_keys=())  # doctest: +SKIP
        'out.jsonl'
    """
    def to_record(row: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        rec: dict[str, Any] = {"id": row["id"]}
        if paths:
            rec["image"] = paths[0] if len(paths) == 1 else paths
        rec["conversations"] = [{"from": t["from"], "value": t["value"]} for t in row["conversations"]]
        return rec

    return write_records(ds, path, to_record, image_root=image_root, image_dir=image_dir, extra_keys=extra_keys, map_batch_size=map_batch_size, image_paths=image_paths)
