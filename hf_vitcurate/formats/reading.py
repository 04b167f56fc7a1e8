"""Reading inputs: local files, folders and Hub repo ids, as raw ``Dataset`` records.

Everything goes through ``datasets`` (``load_dataset`` / ``load_from_disk``), so records
land in memory-mapped Arrow files. JSON arrays are first cut into a JSON Lines copy
(:func:`json_lines_copy`) so they are read in blocks, and JSON whose fields change type
along the file is read with every field typed ``Json`` (:func:`_load_json_lines`).

Example:
    >>> raw = read_raw("llava_v1_5_mix665k.json")  # doctest: +SKIP
    >>> first_record(raw)["conversations"][0]["from"]  # doctest: +SKIP
    'human'
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

import pyarrow.parquet as pq
from datasets import Dataset, DatasetDict, Features, Json, load_dataset, load_from_disk
from datasets.exceptions import DatasetGenerationError, DatasetNotFoundError
from huggingface_hub.errors import HFValidationError

from ..errors import FormatError, NotFoundError, check_path
from .common import records
from .lines import BOM, READ_ERROR, cache_path, clean_copy, first_good, looks_clean, with_read_errors

DATA_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".arrow": "arrow"}
logger = logging.getLogger(__name__)


def read_raw(path: str, *, name: str | None = None, split: str | None = None, **load_kwargs: Any) -> Dataset:
    """The records of a local file, a local folder or a Hub repo id, as a ``Dataset``.

    Files go through ``load_dataset("json"|"parquet"|..., data_files=path)``; a folder
    saved with ``save_to_disk`` through ``load_from_disk``; any other folder or a repo
    id through ``load_dataset(path, name, split=...)`` (that is the Hub code path).
    ``split`` defaults to ``"train"``. JSON Lines with bad lines keep them as records
    with a :data:`~hf_vitcurate.formats.lines.READ_ERROR` (see :mod:`.lines`); an empty
    file or list reads as 0 records; a local path that does not exist raises
    :class:`~hf_vitcurate.errors.NotFoundError`.

    Example:
        >>> read_raw("llava.json").column_names  # doctest: +SKIP
        ['id', 'image', 'conversations']
    """
    split = split or "train"
    check_path(path)  # a typo'd local folder is "no such file or folder", not a bad Hub repo id
    try:
        if os.path.isfile(path):
            suffix = _suffix(path)
            if suffix not in DATA_SUFFIXES:
                raise FormatError(f"{path}: unknown file suffix {suffix!r}; expected one of {sorted(DATA_SUFFIXES)}")
            if DATA_SUFFIXES[suffix] == "arrow":
                return Dataset.from_file(path)
            if DATA_SUFFIXES[suffix] == "parquet" and pq.ParquetFile(path).metadata.num_rows == 0:
                return Dataset(pq.read_table(path))  # load_dataset finds "no data" in a 0-row file
            if DATA_SUFFIXES[suffix] == "json" and "field" not in load_kwargs:
                return _load_json_lines(json_lines_copy(path, load_kwargs.get("cache_dir")), path, load_kwargs)
            if DATA_SUFFIXES[suffix] == "json":  # records under a key of one object (caption files)
                field = load_kwargs.pop("field")
                return _load_json_lines(field_lines_copy(path, field, load_kwargs.get("cache_dir")), path, load_kwargs)
            return load_dataset(DATA_SUFFIXES[suffix], data_files=path, split="train", **load_kwargs)
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "dataset_info.json")):
            ds = load_saved(path)
        elif os.path.isdir(path):
            ds = load_dataset(path, name, **load_kwargs)
        else:
            ds = _load_hub(path, name, load_kwargs)
    except (FormatError, NotFoundError):
        raise
    except Exception as exc:  # datasets raises many types; all mean "this input does not read"
        raise FormatError(f"{path}: cannot be read as a dataset ({type(exc).__name__}: {exc})") from exc
    if isinstance(ds, DatasetDict):
        if split not in ds:
            raise FormatError(f"{path}: has splits {list(ds)}, not {split!r}; pass split=")
        ds = ds[split]
    return ds


def _load_hub(path: str, name: str | None, load_kwargs: dict[str, Any]):
    """``load_dataset(repo_id)``; a repo that is not there says so, as a missing local folder would."""
    try:
        return load_dataset(path, name, **load_kwargs)
    except (DatasetNotFoundError, FileNotFoundError, HFValidationError) as exc:
        raise NotFoundError(f"no such file or folder: {path} (nor a Hub dataset: {type(exc).__name__}: {exc})".split("\n")[0]) from exc


def load_saved(path: str) -> Dataset | DatasetDict:
    """``load_from_disk(path)``, also for a 0-row dataset saved without a data file (older outputs)."""
    state = os.path.join(path, "state.json")
    if os.path.exists(state):
        with open(state, encoding="utf-8") as f:
            if not json.load(f).get("_data_files"):
                with open(os.path.join(path, "dataset_info.json"), encoding="utf-8") as g:
                    features = Features.from_dict(json.load(g)["features"])
                return Dataset.from_dict({k: [] for k in features}, features=features)
    return load_from_disk(path)


def _load_json_lines(lines_path: str, path: str, load_kwargs: dict[str, Any]) -> Dataset:
    """``load_dataset("json")`` on JSON Lines, robust to bad lines and to fields that change type.

    A file whose bytes look clean (:func:`~.lines.looks_clean`) is read by
    ``load_dataset`` directly. Otherwise, or when that fails, the file is read line by
    line once (:func:`~.lines.clean_copy`): bad lines become placeholder records with a
    reason, and the good ones are read by ``load_dataset`` again; if it still fails
    (datasets infers the schema from the first 10 MB block and refuses a later block that
    differs: a text-only first block without ``image``, ``image`` a string here and a list
    there, ...), every top-level field is typed ``Json`` (any value, any type), which the
    converters decode: slower, never wrong.
    """
    if _is_blank(lines_path):
        return Dataset.from_dict({})
    with open(lines_path, "rb") as f:
        if f.read(1024).lstrip().removeprefix(BOM).lstrip().startswith(b"["):
            # A JSON array json_lines_copy left whole (an item that is not an object, written
            # compactly): datasets reads it whole, as it always did.
            return _read_lines(lines_path, load_kwargs)
    user_features = "features" in load_kwargs
    if user_features or looks_clean(lines_path):
        try:
            return _read_lines(lines_path, load_kwargs)
        except DatasetGenerationError:
            if user_features:
                raise
    clean, errors, keys = clean_copy(lines_path, path, load_kwargs.get("cache_dir"))
    if errors:
        code, _, detail = next(iter(errors.values())).partition("\t")
        logger.warning("%s: %d record(s) do not read, first %s [%s]", path, len(errors), detail, code)
    if not keys:
        first = next(iter(errors.values()), "\t").split("\t")[1]
        raise FormatError(f"{path}: no readable record ({len(errors)} bad; first {first})")
    try:
        raw = _read_lines(clean, load_kwargs)
    except DatasetGenerationError as first:
        logger.info("%s: fields change type or appear after the first block; reading every field as JSON", path)
        try:
            raw = load_dataset("json", data_files=clean, split="train", features=Features({k: Json() for k in keys}), **load_kwargs)
        except DatasetGenerationError:
            raise first from None
    return with_read_errors(raw, errors)


def _read_lines(lines_path: str, load_kwargs: dict[str, Any]) -> Dataset:
    # on_mixed_types=None: a field whose type changes after the first block makes
    # datasets JSON-encode that block's values into a string column, silently
    # ('"a.jpg"'); failing instead sends the file to the all-Json read.
    with _quiet("datasets.packaged_modules.json.json"):
        return load_dataset("json", data_files=lines_path, split="train", **{"on_mixed_types": None, **load_kwargs})


def _is_blank(path: str) -> bool:
    """True for a file of whitespace only (0 records)."""
    if os.path.getsize(path) > 1 << 16:
        return False
    with open(path, "rb") as f:
        data = f.read()
    return not data.replace(BOM, b"").strip()


@contextlib.contextmanager
def _quiet(name: str):
    """Silence one logger (datasets logs an ERROR before raising what we handle)."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def json_lines_copy(path: str, cache_dir: str | None = None, chunk_size: int = 1 << 22) -> str:
    """A JSON Lines copy of a JSON *array* file, streamed with bounded memory (else ``path``).

    ``load_dataset("json")`` reads a JSON array (LLaVA's ``llava_v1_5_mix665k.json`` is
    one) whole into Python objects before Arrow sees it: several times the file size in
    RAM. Cutting the array into lines first lets pyarrow read it in 10 MB blocks. The copy
    lives in the datasets cache (``hf_vitcurate_jsonl/``), keyed by path, size and mtime,
    so a second load reuses both it and the Arrow cache built from it. Objects are found
    with the C JSON scanner; their text is copied as is, with the newlines between tokens
    turned into spaces (a valid JSON string cannot hold a raw newline). A broken record
    (bad JSON, not an object) is copied as one bad line for the line check to name, when
    the file puts its records on lines of their own (``json.dump(..., indent=k)`` or one a
    line): the next record starts after the same separator as the first two. Otherwise its
    end cannot be found safely and the file is refused, naming the record.
    """
    with open(path, "rb") as f:
        head = f.read(1024).lstrip()
    if head.startswith(BOM):
        head = head[len(BOM):].lstrip()
    if not head.startswith(b"["):
        return path
    out = cache_path(path, cache_dir)
    if os.path.exists(out):
        return out
    decoder = json.JSONDecoder()
    tmp = f"{out}.{os.getpid()}.tmp"
    sep = None  # what stands between two records, when it holds a newline: a broken record ends before the next one
    # surrogateescape: bytes that are not UTF-8 go to the copy as they are, for the line check to name.
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as src, open(tmp, "w", encoding="utf-8", errors="surrogateescape") as dst:
        buf, pos, eof, written = src.read(chunk_size), 0, False, 0
        pos = buf.index("[") + 1
        while True:
            start = pos
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if written and sep is None and pos < len(buf) and "\n" in buf[start:pos] and "," in buf[start:pos]:
                sep = buf[start:pos]
            if pos >= len(buf) - 1 and not eof:  # refill before looking at the next item
                more = src.read(chunk_size)
                buf, pos, eof = buf[pos:] + more, 0, not more
                continue
            if pos >= len(buf) or buf[pos] == "]":
                break
            if buf[pos] != "{" and not written:
                os.remove(tmp)
                return path  # not a list of objects: let datasets handle it
            try:
                _, end = decoder.raw_decode(buf, pos)  # an item that is not an object is copied too: the line check names it
            except (json.JSONDecodeError, RecursionError) as exc:
                # Resync at the next record boundary: a raw newline never stands inside a JSON string.
                nxt = buf.find(sep + "{", pos) if sep else -1
                if nxt < 0 and sep and eof and buf.rfind("]") > pos:
                    nxt = buf.rfind("]")  # the last record is the broken one
                if nxt >= 0:
                    dst.write(buf[pos:nxt].replace("\n", " ").replace("\r", " ") + "\n")  # the line check names it
                    pos, written = nxt + (len(sep) if buf[nxt] != "]" else 0), written + 1
                    continue
                more = "" if eof or isinstance(exc, RecursionError) else src.read(chunk_size)
                if not more or len(buf) - pos > 16 * chunk_size:  # no record is that long: it is broken
                    os.remove(tmp)
                    why = "nested too deep to read" if isinstance(exc, RecursionError) else "not valid JSON"
                    raise FormatError(f"{path}: record {written} (0-based) is {why}") from None
                buf, pos = buf[pos:] + more, 0
                continue
            dst.write(buf[pos:end].replace("\n", " ").replace("\r", " ") + "\n")
            pos, written = end, written + 1
    os.replace(tmp, out)
    return out


def field_lines_copy(path: str, field: str, cache_dir: str | None = None) -> str:
    """A JSON Lines copy of the list of records under ``field`` of a one-object JSON file.

    The object is read whole (as ``load_dataset(..., field=)`` does); each record becomes
    one line, so a record with bad text is one bad record (:mod:`.lines`), not the file.
    Bytes that are not UTF-8 and lone surrogates are written as ``\\udcXX`` /
    ``\\ud800`` escapes: the line check names them (as lone surrogates). Cached like
    :func:`json_lines_copy`.
    """
    out = cache_path(path, cache_dir, f"-{field}")
    if os.path.exists(out):
        return out
    try:
        with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
            obj = json.load(f)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from None
    items = obj.get(field) if isinstance(obj, dict) else None
    if not isinstance(items, list):
        raise FormatError(f"{path}: field={field!r} is not a list of records in this file")
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as dst:
        for rec in items:
            text = json.dumps(rec, ensure_ascii=False)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # a surrogate: keep it visible as an escape
                text = json.dumps(rec)
            dst.write(text + "\n")
    os.replace(tmp, out)
    return out


def _suffix(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def first_record(raw: Dataset) -> dict[str, Any]:
    """The first readable row of ``raw`` as plain Python, images left undecoded (for detection)."""
    if len(raw) == 0:
        raise FormatError("the input has no records")
    i = first_good(raw)
    if i is None:
        raise FormatError("the input has no readable record")
    rec = records(raw.with_format("arrow")[i : i + 1], raw.features)[0]
    rec.pop(READ_ERROR, None)
    return rec
