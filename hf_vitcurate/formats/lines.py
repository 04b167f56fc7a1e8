"""JSON Lines with bad lines: a fast check of the bytes, and a line-by-line pass only when needed.

``load_dataset("json")`` (pyarrow underneath) reads a clean file fast, but one bad line
costs the whole file: a malformed line makes it fail, invalid UTF-8 passes into Arrow and
crashes whoever reads the row later, and a lone surrogate (``"\\ud800"``) makes datasets
re-read the file with pandas, which silently drops it. So:

1. :func:`looks_clean` scans the bytes once (strict UTF-8 decoding, a regex for lone
   surrogate escapes): fast, no JSON parsing. A clean file goes to ``load_dataset``.
2. Otherwise, or when ``load_dataset`` fails, :func:`clean_copy` reads line by line:
   every line that is not a JSON object of valid text becomes a placeholder ``{}`` (or
   ``{"id": ...}``) in a copy of the file, so record numbers do not move, and its reason
   is kept (``malformed_json``, ``not_an_object``, ``duplicate_key``, ``invalid_utf8``,
   ``lone_surrogate``, with the line and the field).
3. :func:`with_read_errors` adds those reasons as the :data:`READ_ERROR` column;
   :func:`~hf_vitcurate.formats.common.finish` turns the rows into rejected rows (or
   raises naming file and line).

Blank lines are not records (pyarrow skips them too); a UTF-8 byte order mark at the start
of a line is dropped.

Example:
    >>> check_line(b'{"id": "a"}', "line 1")
    ({'id': 'a'}, None)
    >>> check_line(b'{"id": "a", "conversations": [}', "line 2")[1]
    ('malformed_json', 'record: line 2: not valid JSON (Expecting value, column 31)')
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
from typing import Any

import datasets.config
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

READ_ERROR = "_read_error"
BOM = codecs.BOM_UTF8
# A \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one, or a low one without a high one
# before it. An escaped backslash before "u" can match too: that only costs the slow pass.
_LONE_BYTES = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
# A line that does not start with "{" (after blanks): pyarrow reads `null` as a row of nulls and
# refuses a BOM inside the file; the line pass names them.
_NOT_OBJECT = re.compile(rb"\n[ \t\r]*[^{\s]")


MAX_DEPTH = 100  # deeper lines are rejected: pyarrow segfaults at a few thousand levels, datasets recurses past Python's limit near 1000; VIT records nest 4-6 deep
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}\n")))
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b"[]{}")))


def looks_clean(path: str, chunk_size: int = 1 << 24) -> bool:
    """True when the file is valid UTF-8, every line starts with ``{``, and no line holds a
    lone surrogate escape or nests deeper than :data:`MAX_DEPTH` (bytes only, no JSON
    parsing; brackets inside strings count too, which can only send a good file to the
    line pass)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    tail, carry = b"", b""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                decoder.decode(chunk)
                window = tail + chunk if tail else b"\n" + chunk.removeprefix(BOM)
                if (_HINT.search(window) and _LONE_BYTES.search(window)) or _NOT_OBJECT.search(window):
                    return False
                tail = chunk[-12:]
                *lines, carry = (carry + chunk.translate(None, _NOT_BRACKETS)).split(b"\n")
                if any(len(b) > MAX_DEPTH and bracket_depth(b) > MAX_DEPTH for b in lines):
                    return False
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return not (len(carry) > MAX_DEPTH and bracket_depth(carry) > MAX_DEPTH)


def bracket_depth(data: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in ``data`` (brackets inside strings count too).

    >>> bracket_depth(b'{"a": [[1], {"b": 2}]}')
    3
    """
    arr = np.frombuffer(data.translate(None, _NOT_STRUCTURE), dtype=np.uint8)
    if not len(arr):
        return 0
    return int(np.cumsum(np.where((arr == ord("[")) | (arr == ord("{")), 1, -1), dtype=np.int64).max())


def _structure_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    depth, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            depth = max(depth, d)
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return depth


def _surrogate_field(value: Any, where: str = "") -> str | None:
    """Path (``conversations[1].value``) of the first key or string holding a surrogate, else None."""
    if isinstance(value, str):
        return (where or "record") if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and _SURROGATE.search(k):
                return f"{where}.{k!a}".lstrip(".")
            found = _surrogate_field(v, f"{where}.{k}".lstrip("."))
            if found:
                return found
    if isinstance(value, list):
        for k, v in enumerate(value):
            found = _surrogate_field(v, f"{where}[{k}]")
            if found:
                return found
    return None


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


def check_line(data: bytes, where: str) -> tuple[Any, tuple[str, str] | None]:
    """``(record, None)`` for a good line, ``(record or None, (code, detail))`` for a bad one.

    Example:
        >>> check_line(b'{"id": "a", "v": "\\\\ud800"}', "line 3")[1]
        ('lone_surrogate', 'v: line 3: a lone surrogate escape (\\\\ud800-\\\\udfff) is not text')
    """
    try:
        text, utf8 = data.decode("utf-8"), True
    except UnicodeDecodeError:
        text, utf8 = data.decode("utf-8", "surrogateescape"), False
    try:
        rec = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        return None, ("malformed_json", f"record: {where}: not valid JSON ({exc.msg}, column {exc.colno})")
    except RecursionError:
        return None, ("malformed_json", f"record: {where}: nested deeper than {MAX_DEPTH} levels")
    except _DuplicateKey as exc:  # pyarrow refuses them (Python would keep the last one silently)
        return None, ("duplicate_key", f"{exc.args[0]}: {where}: the key occurs twice in one object")
    if not isinstance(rec, dict):
        return None, ("not_an_object", f"record: {where}: a JSON {type(rec).__name__}, not an object")
    if len(data) > MAX_DEPTH and bracket_depth(data) > MAX_DEPTH and _structure_depth(rec) > MAX_DEPTH:
        return None, ("malformed_json", f"record: {where}: nested deeper than {MAX_DEPTH} levels")
    if not utf8 or (_HINT.search(data) and _LONE_BYTES.search(data)):
        field = _surrogate_field(rec)  # recursion is bounded: deeper records were rejected above
        if field is not None or not utf8:
            if not utf8:
                return rec, ("invalid_utf8", f"{field or 'record'}: {where}: bytes that are not UTF-8")
            return rec, ("lone_surrogate", f"{field}: {where}: a lone surrogate escape (\\ud800-\\udfff) is not text")
    return rec, None


def cache_path(path: str, cache_dir: str | None, tag: str = "") -> str:
    """Where a JSON Lines copy of ``path`` lives: ``<cache_dir>/hf_vitcurate_jsonl/`` (default: the
    datasets cache), keyed by path, size and mtime, so an edited file gets a new copy."""
    stat = os.stat(path)
    key = hashlib.sha1(f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:20]
    folder = os.path.join(cache_dir or datasets.config.HF_DATASETS_CACHE, "hf_vitcurate_jsonl")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{os.path.splitext(os.path.basename(path))[0]}{tag}-{key}.jsonl")


def clean_copy(lines_path: str, path: str, cache_dir: str | None) -> tuple[str, dict[int, str], dict[str, None]]:
    """``(file to read, {record: "code\\tdetail"}, keys)``: bad lines replaced by placeholders.

    The file is ``lines_path`` itself when every line is good as it is (then only ``keys``,
    the fields in order of first appearance, are new). Records are numbered like
    ``load_dataset`` numbers rows: blank lines skipped. Details name the line of ``path``
    (or the record, when ``lines_path`` is a JSON Lines copy of a JSON array). The copy
    is cached under :func:`cache_path`.
    """
    same = os.path.abspath(lines_path) == os.path.abspath(path)
    out = cache_path(lines_path, cache_dir, ".clean")
    if os.path.exists(out) and os.path.exists(out + ".errors.json"):
        with open(out + ".errors.json", encoding="utf-8") as f:
            saved = json.load(f)
        return out, {int(k): v for k, v in saved["errors"].items()}, dict.fromkeys(saved["keys"])
    tmp = f"{out}.{os.getpid()}.tmp"
    errors: dict[int, str] = {}
    keys: dict[str, None] = {}
    record, rewritten = 0, False  # rewritten: a byte order mark dropped (pyarrow refuses one inside the file)
    with open(lines_path, "rb") as src, open(tmp, "wb") as dst:
        for n, line in enumerate(src, start=1):
            data = line.strip()
            if data.startswith(BOM):
                data, rewritten = data[len(BOM):].strip(), True
            if not data:
                continue
            rec, bad = check_line(data, f"line {n}" if same else f"record {n - 1}")
            if bad is None:
                keys.update(dict.fromkeys(rec))
                dst.write(data + b"\n")
            else:
                rid = rec.get("id") if isinstance(rec, dict) else None
                ok_id = isinstance(rid, str) and not _SURROGATE.search(rid)
                dst.write((json.dumps({"id": rid}) if ok_id else "{}").encode() + b"\n")
                errors[record] = "\t".join(bad)
            record += 1
    if not errors and not rewritten:
        os.remove(tmp)
        return lines_path, errors, keys
    with open(out + ".errors.json", "w", encoding="utf-8") as f:
        json.dump({"errors": errors, "keys": list(keys)}, f)
    os.replace(tmp, out)
    return out, errors, keys


def with_read_errors(raw: Dataset, errors: dict[int, str]) -> Dataset:
    """``raw`` with the :data:`READ_ERROR` column (null for good records)."""
    if not errors:
        return raw
    values = [None] * len(raw)
    for row, text in errors.items():
        values[row] = text
    return raw.add_column(READ_ERROR, values)


def read_errors(ds_rows: pa.Array | pa.ChunkedArray, parent: Dataset | None) -> dict[int, tuple[str, str]]:
    """``{index in ds: (code, detail)}`` for output rows made from records with a read error.

    ``ds_rows`` is the output's ``_row`` column (index of the input record of each row).
    """
    if parent is None or READ_ERROR not in parent.column_names:
        return {}
    col = parent.data.column(READ_ERROR)
    bad = pc.indices_nonzero(pc.is_valid(col)).to_pylist()
    texts = dict(zip(bad, col.take(pa.array(bad, pa.int64())).to_pylist())) if bad else {}
    if not texts:
        return {}
    rows = pc.fill_null(ds_rows, -1).to_numpy(zero_copy_only=False)
    out = {}
    for i in pc.indices_nonzero(pc.is_in(ds_rows, value_set=pa.array(list(texts), pa.int64()))).to_pylist():
        code, _, detail = texts[int(rows[i])].partition("\t")
        out[int(i)] = (code, detail)
    return out


def first_good(raw: Dataset) -> int | None:
    """Index of the first record without a read error (None when every record has one)."""
    if READ_ERROR not in raw.column_names:
        return 0 if len(raw) else None
    ok = pc.is_null(raw.data.column(READ_ERROR))
    idx = pc.index(ok, True).as_py()
    return None if idx < 0 else idx
