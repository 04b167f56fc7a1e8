"""What every format shares: turns, image paths, ids, the batch mapping and the finish.

A converter reads its input with :func:`~hf_vitcurate.formats.reading.read_raw`
(``datasets.load_dataset`` underneath, so rows stay in memory-mapped Arrow files), maps it batch by batch to the canonical
columns plus three bookkeeping columns (``_row``: index of the input record,
``reject_reason`` and ``reject_detail``: empty when the record converted), and hands the
result to :func:`finish`, which raises on the first bad record (``errors="raise"``) or
splits kept/rejected (``errors="reject"``), casts to :data:`hf_vitcurate.schema.FEATURES`
and records the ``convert`` provenance step.

Row-by-row converters write a function ``record -> list of rows`` that raises
:class:`RowError` for a malformed record and run it with :func:`map_records`.

Example:
    >>> parse_turns([{"from": "user", "value": "Hi"}, {"from": "assistant", "value": "Hello"}])
    [{'from': 'human', 'value': 'Hi'}, {'from': 'gpt', 'value': 'Hello'}]
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Features, Json, List, Value

from .. import provenance
from ..errors import ConfigError, FormatError, RowError
from ..results import Split
from ..schema import CORE_COLUMNS, FEATURES, IMAGE_TOKEN, cast_canonical
from .lines import READ_ERROR
from .writing import URL as _URL

# Role names seen in the wild, mapped to the two canonical ones. "system" is not here:
# formats that carry system prompts decide what to do with them (see sharegpt).
ROLE_NAMES = {
    "human": "human",
    "user": "human",
    "gpt": "gpt",
    "assistant": "gpt",
    "model": "gpt",
    "bot": "gpt",
}
ROW = "_row"
BOOKKEEPING = Features({ROW: Value("int64"), "reject_reason": Value("string"), "reject_detail": Value("string")})
ERRORS = ("raise", "reject")




# ---------------------------------------------------------------- Arrow batches


class BatchRejects:
    """First error of each row of a batch (sparse: bad rows are rare)."""

    def __init__(self, n: int):
        self.n = n
        self.errors: dict[int, tuple[str, str]] = {}

    def add(self, row: int, field: str, code: str, problem: str) -> None:
        self.errors.setdefault(int(row), (code, f"{field}: {problem}"))

    def columns(self) -> tuple[pa.Array, pa.Array]:
        codes, details = [""] * self.n, [""] * self.n
        for row, (code, detail) in self.errors.items():
            codes[row], details[row] = code, detail
        return pa.array(codes, pa.string()), pa.array(details, pa.string())


def const_strings(value: str, n: int) -> pa.Array:
    """``n`` copies of ``value`` as an Arrow string array."""
    return pa.array(np.full(n, value, dtype=object), pa.string())


def is_json_column(col: pa.ChunkedArray | pa.Array) -> bool:
    """True for a column ``datasets`` stored as JSON text (values of mixed types)."""
    return getattr(col.type, "extension_name", None) == "arrow.json"


def string_column(col: pa.ChunkedArray | pa.Array, name: str, rej: BatchRejects) -> pa.Array:
    """A column as strings: numbers are formatted, mixed JSON values decoded, others rejected."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.cast(pa.string())
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), pa.string())
    if pa.types.is_integer(col.type) or pa.types.is_boolean(col.type):
        return pc.cast(col, pa.string())
    values = col.storage.to_pylist() if is_json_column(col) else col.to_pylist()
    out = []
    for i, v in enumerate(values):
        if is_json_column(col) and v is not None:
            v = json.loads(v)
        if v is None or isinstance(v, str):
            out.append(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(str(v))
        else:
            rej.add(i, name, "bad_value", f"{name} is {type(v).__name__} {str(v)[:40]!r}, not a string")
            out.append(None)
    return pa.array(out, pa.string())


# ---------------------------------------------------------------- records


def records(table: pa.Table, features: Features) -> list[dict[str, Any]]:
    """Rows of an Arrow batch as dicts; ``Json`` values decoded, images left as ``{bytes, path}``."""
    rows = table.to_pylist()
    json_cols = {k: f for k, f in features.items() if k in table.column_names and _has_json(f)}
    for row in rows:
        for k, f in json_cols.items():
            row[k] = _decode_json(row[k], f)
    return rows


def _has_json(feature: Any) -> bool:
    if isinstance(feature, Json):
        return True
    if isinstance(feature, List):
        return _has_json(feature.feature)
    if isinstance(feature, dict):
        return any(_has_json(f) for f in feature.values())
    return False


def _decode_json(value: Any, feature: Any) -> Any:
    if value is None:
        return None
    if isinstance(feature, Json):
        return json.loads(value) if isinstance(value, str) else value
    if isinstance(feature, List):
        return [_decode_json(v, feature.feature) for v in value]
    if isinstance(feature, dict):
        return {k: _decode_json(v, feature[k]) if k in feature else v for k, v in value.items()}
    return value


# ---------------------------------------------------------------- turns and images


def parse_turns(
    items: Any,
    *,
    role_key: str = "from",
    text_key: str = "value",
    field: str = "conversations",
    drop_roles: Iterable[str] = (),
) -> list[dict[str, str]]:
    """Canonical turns ``[{"from": "human"|"gpt", "value": str}]`` from a foreign list of turns.

    Role synonyms (``user``, ``assistant``, ...) are mapped by :data:`ROLE_NAMES`; roles
    in ``drop_roles`` (e.g. ``"system"``) are skipped; anything else raises
    :class:`RowError` naming the turn. Order and alternation are left to
    :func:`hf_vitcurate.validate`.
    """
    if not isinstance(items, list):
        raise RowError(field, "bad_conversations", f"expected a list of turns, got {type(items).__name__}")
    drop = set(drop_roles)
    turns = []
    for k, turn in enumerate(items):
        where = f"{field}[{k}]"
        if not isinstance(turn, dict):
            raise RowError(where, "bad_turn", f"turn is {type(turn).__name__}, not an object")
        role, text = turn.get(role_key), turn.get(text_key)
        if not isinstance(role, str):
            raise RowError(f"{where}.{role_key}", "missing_role", f"role is {role!r}, not a string")
        if role in drop:
            continue
        canonical = ROLE_NAMES.get(role.strip().lower())
        if canonical is None:
            raise RowError(f"{where}.{role_key}", "unknown_role", f"role {role!r} is not one of {sorted(ROLE_NAMES)}")
        if not isinstance(text, str):
            raise RowError(f"{where}.{text_key}", "non_text_value", f"value is {type(text).__name__}, not a string")
        turns.append({"from": canonical, "value": text})
    return turns


def add_placeholders(turns: list[dict[str, str]], n_images: int) -> list[dict[str, str]]:
    """Put one ``<image>\\n`` per image in front of the first human turn when no turn has any.

    This is where LLaVA puts them; rows that already carry placeholders are left alone
    (a wrong count is reported by validation, never guessed at).
    """
    if n_images == 0 or any(IMAGE_TOKEN in t["value"] for t in turns):
        return turns
    for k, turn in enumerate(turns):
        if turn["from"] == "human":
            turns = list(turns)
            turns[k] = {"from": "human", "value": IMAGE_TOKEN + "\n" + (IMAGE_TOKEN + "\n") * (n_images - 1) + turn["value"]}
            break
    return turns


def root_prefix(image_root: str | None) -> str | None:
    """Absolute ``image_root`` ending in ``/`` (None stays None)."""
    if image_root is None:
        return None
    return os.path.abspath(os.path.expanduser(image_root)).rstrip("/") + "/"


def resolve_path(path: str, prefix: str | None) -> str:
    """``path`` joined to the image root unless it is absolute or a URL."""
    if prefix is None or path.startswith("/") or _URL.match(path):
        return path
    return prefix + path


def absolute_paths(paths: pa.Array) -> pa.Array:
    """Vectorised "absolute or a URL" (what :func:`resolve_path` leaves as it is) over an Arrow string array."""
    return pc.or_(pc.starts_with(paths, "/"), pc.match_substring_regex(paths, _URL.pattern))


def resolve_paths(paths: pa.Array, prefix: str | None) -> pa.Array:
    """Vectorised :func:`resolve_path` over an Arrow string array."""
    if prefix is None or len(paths) == 0:
        return paths
    return pc.if_else(absolute_paths(paths), paths, pc.binary_join_element_wise(pa.scalar(prefix), paths, ""))


def image_list(value: Any, prefix: str | None, field: str = "images") -> list[dict[str, Any]]:
    """A record's images (a list of paths/bytes/``{bytes, path}``, one path, or nothing) as ``Image`` storage.

    >>> image_list("a.png", "/data/")
    [{'bytes': None, 'path': '/data/a.png'}]
    """
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise RowError(field, "bad_image", f"{field} is {type(value).__name__} {str(value)[:40]!r}, not a list of images")
    return [image_ref(v, prefix, f"{field}[{k}]") for k, v in enumerate(value)]


def image_ref(value: Any, prefix: str | None, field: str = "images") -> dict[str, Any]:
    """The ``Image`` storage ``{"bytes", "path"}`` of a path, bytes or ``{bytes, path}`` value (never decoded)."""
    if isinstance(value, str) and value:
        return {"bytes": None, "path": resolve_path(value, prefix)}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        path = value.get("path")
        # A path stored next to bytes is informative only; without bytes it must resolve.
        return {"bytes": value.get("bytes"), "path": resolve_path(path, prefix) if path and not value.get("bytes") else path}
    raise RowError(field, "bad_image", f"image is {type(value).__name__} {str(value)[:60]!r}, not a path, bytes or {{bytes, path}}")


def default_root(path: str) -> str | None:
    """Default ``image_root``: the folder of a local input file (None for folders and repo ids)."""
    return os.path.dirname(os.path.abspath(path)) if os.path.isfile(path) else None


def default_source(path: str) -> str:
    """Default ``source``: the file stem, or the last part of a folder or repo id."""
    base = os.path.basename(os.path.normpath(path))
    return base.split(".")[0] if os.path.isfile(path) else base


def row_id(source: str, row: int) -> str:
    """Deterministic id of a record without one: ``"{source}-{row}"`` (row = index in the input)."""
    return f"{source}-{row}"


# ---------------------------------------------------------------- mapping and finishing


def output_features(extra: dict[str, Any] | None = None) -> Features:
    """Canonical features, then format-specific extras, then the bookkeeping columns."""
    return Features({**FEATURES, **(extra or {}), **BOOKKEEPING})


def map_records(
    raw: Dataset,
    convert: Callable[[dict[str, Any], int], list[dict[str, Any]]],
    *,
    extra: dict[str, Any] | None = None,
    reject_row: Callable[[dict[str, Any], int], dict[str, Any]] | None = None,
    batch_size: int = 1000,
    desc: str = "converting",
) -> Dataset:
    """Run ``convert(record, row) -> rows`` over ``raw`` in batches (Arrow in, Arrow out).

    A :class:`RowError` turns the record into one row carrying the reason;
    ``reject_row(record, row)`` gives that row's canonical values (default: its id).
    Images are never decoded: records see ``{bytes, path}`` dicts.
    """
    features = output_features(extra)
    names = list(features)
    raw_features = raw.features

    def batch(table: pa.Table, indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in names}
        for rec, row in zip(records(table, raw_features), indices):
            try:
                rows = [{ROW: row, "reject_reason": "", "reject_detail": "", **r} for r in convert(rec, row)]
            except Exception as exc:  # noqa: BLE001 - one record's surprise is its rejection, never the file's
                err = exc if isinstance(exc, RowError) else RowError("record", "bad_record", f"{type(exc).__name__}: {exc}"[:200])
                try:
                    base = reject_row(rec, row) if reject_row else {"id": str(rec.get("id") or "")}
                except Exception:  # noqa: BLE001 - the id itself is what is broken
                    base = {"id": ""}
                rows = [{**base, ROW: row, "reject_reason": err.code, "reject_detail": f"{err.field}: {err.problem}"}]
            for r in rows:
                for k in names:
                    out[k].append(r.get(k, _EMPTY.get(k)))
        return out

    return raw.with_format("arrow").map(
        batch,
        batched=True,
        batch_size=batch_size,
        with_indices=True,
        remove_columns=raw.column_names,
        features=features,
        desc=desc,
    )


_EMPTY = {"images": [], "conversations": [], "id": "", "source": "", "task": ""}


def finish(
    ds: Dataset,
    *,
    fmt: str,
    file: str,
    rows_in: int,
    errors: str,
    params: dict[str, Any],
    parent: Dataset | None = None,
    image_root: str | None = None,
    allow_outside_root: bool = True,
) -> Dataset | Split:
    """Raise on or split off bad records, cast to the schema, record the ``convert`` step.

    ``errors="raise"``: :class:`~hf_vitcurate.FormatError` naming file, row, id and field
    of the first bad record. ``errors="reject"``: returns a :class:`~hf_vitcurate.results.Split`; rejected
    rows keep their canonical columns, ``row`` (index of the input record),
    ``reject_reason`` and ``reject_detail``. Records that did not read (a malformed line,
    bytes that are not UTF-8: :mod:`.lines`) are rejected with their line; unless
    ``allow_outside_root``, an image path that resolves outside ``image_root`` rejects its
    row as ``image_outside_root`` (:mod:`.inside`).
    """
    ds = ds.with_format(None)
    reasons = np.asarray(pc.fill_null(ds.data.column("reject_reason"), "").to_numpy(zero_copy_only=False), dtype=object)
    overrides = _overrides(ds, reasons, parent, None if allow_outside_root else image_root)
    for i, (code, _) in overrides.items():
        reasons[i] = code
    bad = np.flatnonzero(reasons != "")
    if len(bad) and errors == "raise":
        first = ds.select_columns(["id", ROW, "reject_reason", "reject_detail"])[int(bad[0])]
        code, detail = overrides.get(int(bad[0]), (first["reject_reason"], first["reject_detail"]))
        field, _, problem = detail.partition(": ")
        raise FormatError(
            f"{file}: row {first[ROW]} (id={first['id']!r}) field {field!r}: {problem} [{code}]"
            f" ({len(bad)} bad record(s) in all; errors='reject' moves them to a rejected dataset)"
        )
    counts = dict(Counter(str(r) for r in reasons[bad]))
    params = {"format": fmt, "file": file, "errors": errors, **params}
    if not allow_outside_root and image_root:
        params["allow_outside_root"] = False
    extra = [c for c in (READ_ERROR,) if c in ds.column_names]  # a canonical input keeps its other columns
    kept = ds.select(np.flatnonzero(reasons == "")) if len(bad) else ds
    kept = cast_canonical(kept.remove_columns(list(BOOKKEEPING) + extra))
    kept = provenance.record(kept, fmt, kind="convert", rows_in=rows_in, rejected=counts, params=params, parent=parent)
    if errors != "reject":
        return kept
    rejected = ds.select(bad).remove_columns(extra).rename_column(ROW, "row")
    if overrides:
        details = list(rejected["reject_detail"])
        for j, i in enumerate(bad):
            if int(i) in overrides:
                details[j] = overrides[int(i)][1]
        rejected = rejected.remove_columns(["reject_reason", "reject_detail"])
        rejected = rejected.add_column("reject_reason", [str(r) for r in reasons[bad]]).add_column("reject_detail", details)
    rejected = provenance.record(
        rejected, fmt, kind="convert", rows_in=rows_in, rows_out=len(rejected), rejected=counts, params=params, parent=parent
    )
    return Split(kept, rejected)


def _overrides(ds: Dataset, reasons: np.ndarray, parent: Dataset | None, root: str | None) -> dict[int, tuple[str, str]]:
    """Reasons found after conversion: records that did not read, then images outside ``root``."""
    from .inside import outside_root
    from .lines import read_errors

    out = read_errors(ds.data.column(ROW), parent)
    if root:
        for i, (k, real) in outside_root(ds.data.column("images"), root).items():
            if reasons[i] == "" and i not in out:
                out[i] = ("image_outside_root", f"images[{k}]: resolves to {real}, outside image_root {root}"
                          " (pass allow_outside_root=True / --allow-outside-root to read it)")
    return out


def check_errors(errors: str) -> None:
    if errors not in ERRORS:
        raise ConfigError(f"errors must be one of {ERRORS}, got {errors!r}")


def has_canonical_columns(columns: Iterable[str]) -> bool:
    """True when ``columns`` hold every canonical column (input already in the schema)."""
    return set(CORE_COLUMNS) <= set(columns)
