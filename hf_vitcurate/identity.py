"""One identity for every cached or resumable result: the content of its model, data and parameters.

A trained checkpoint, a folder of score chunks, a cache of answers: each is reused only when
it was made from the same model, the same data and the same parameters. This module computes
those three fingerprints and the key that joins them, and says in words what changed when
they differ (for :class:`~hf_vitcurate.errors.StaleStateError` messages).

- :func:`model_fingerprint`: a local checkpoint folder is its content (``config.json``, the
  weight files, tokenizer, processor and chat-template files), hashed with SHA-256; each
  file's hash is cached by (path, size, mtime, inode, ctime) in ``hashes.json`` under the cache
  folder (``$HF_VITCURATE_CACHE``, else ``~/.cache/hf_vitcurate``), so a 15 GB checkpoint
  is read once. A Hub id is its commit sha (asked from the Hub, or read from the local
  Hugging Face cache when offline).
- :func:`data_fingerprint`: the content of the columns a step reads.
- :func:`params_fingerprint`: the parameters, as canonical JSON.

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a"], "conversations": [[{"from": "human", "value": "hi"}]]})
    >>> old = identity(data=ds, params={"learning_rate": 0.001})
    >>> new = identity(data=ds, params={"learning_rate": 123})
    >>> old["key"] == identity(data=Dataset.from_dict(ds.to_dict()), params={"learning_rate": 0.001})["key"]
    True
    >>> what_changed(old, new)
    'params changed: learning_rate 0.001 -> 123'
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .atomic import read_json, write_json
from .errors import ConfigError, NotFoundError, StaleStateError

# Files of a checkpoint folder that decide what the model computes (weights by suffix).
MODEL_FILES = frozenset({
    "config.json", "generation_config.json",
    "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "spiece.model", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
    "preprocessor_config.json", "processor_config.json", "image_processor_config.json",
    "video_preprocessor_config.json", "chat_template.json", "chat_template.jinja",
})
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")
CACHE_ENV = "HF_VITCURATE_CACHE"
HASH_CACHE = "hashes.json"
# Files smaller than this are hashed every time (cheaper than a cache entry); larger ones are cached.
CACHE_MIN_BYTES = 1 << 20
# A file modified less than this many seconds before it is hashed is not cached: file times
# tick coarsely, so a same-size rewrite within one tick would keep the same (size, mtime).
RACY_SECONDS = 2.0
MAX_CACHE_ENTRIES = 10_000
# This process's copy of the hash cache: a fingerprint whose files all hit it reads no file at all.
_MEMO: dict[str, list] = {}


def cache_dir() -> str:
    """The package's cache folder: ``$HF_VITCURATE_CACHE``, else ``$XDG_CACHE_HOME/hf_vitcurate`` (``~/.cache``)."""
    if os.environ.get(CACHE_ENV):
        return os.path.expanduser(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hf_vitcurate")


def _load_cache(path: str) -> dict[str, list]:
    files = (read_json(path) or {}).get("files")  # absent or damaged: rebuilt as files are hashed
    return files if isinstance(files, dict) else {}


def _save_cache(path: str, new: dict[str, list]) -> None:
    """Merge ``new`` into the cache file (re-read first: other processes write it too), atomically."""
    files = {k: v for k, v in _load_cache(path).items() if os.path.exists(k)}  # deleted files leave
    files.update(new)
    if len(files) > MAX_CACHE_ENTRIES:  # oldest entries first out (dicts keep insertion order)
        files = dict(list(files.items())[-MAX_CACHE_ENTRIES:])
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_json(path, {"format": 1, "files": files})
    except OSError:  # a read-only home: hashing still works, only uncached
        pass


def _stamp(st: os.stat_result) -> list[int]:
    """What tells a file's versions apart without reading it. The ctime too: a file rewritten in place
    with its size and mtime put back (``touch -r``, ``cp -p``, ``rsync -t``, ``tar x``) keeps the first
    three, but nobody can set the ctime, which every write and every mtime change moves to now."""
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def file_sha256(path: str | os.PathLike, *, cache: dict[str, list] | None = None) -> str:
    """SHA-256 of a file; with ``cache`` (a dict from the hash cache), read from and added to it.

    >>> import tempfile; p = tempfile.mktemp(); _ = open(p, "w").write("x")
    >>> file_sha256(p)[:12]
    '2d711642b726'
    """
    path = os.path.realpath(path)
    st = os.stat(path)
    stamp = _stamp(st)
    entry = cache.get(path) if cache is not None else None
    if isinstance(entry, list) and len(entry) == len(stamp) + 1 and entry[:-1] == stamp:
        return entry[-1]
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    settled = time.time() - st.st_mtime_ns / 1e9 > RACY_SECONDS
    if cache is not None and st.st_size >= CACHE_MIN_BYTES and settled:
        cache[path] = [*stamp, digest]
    return digest


def model_files(folder: str) -> list[str]:
    """The files of a checkpoint folder that :func:`model_fingerprint` hashes, sorted (relative paths)."""
    names = []
    for name in sorted(os.listdir(folder)):
        if os.path.isfile(os.path.join(folder, name)) and (name in MODEL_FILES or name.endswith(WEIGHT_SUFFIXES)):
            names.append(name)
    extra = os.path.join(folder, "additional_chat_templates")
    if os.path.isdir(extra):
        names += [f"additional_chat_templates/{n}" for n in sorted(os.listdir(extra))
                  if os.path.isfile(os.path.join(extra, n))]
    return names


def model_fingerprint(model: str | os.PathLike) -> str:
    """What a checkpoint is: ``"sha256:<hex>"`` of a local folder's files, or ``"<hub id>@<commit>"``.

    A local folder hashes ``config.json``, the weight files (``*.safetensors``, ``*.bin``)
    and the tokenizer, processor and chat-template files; large files' hashes are cached
    (see the module docstring), so a second call reads no weights. A path that does not
    exist and is not a Hub model id raises :class:`~hf_vitcurate.errors.NotFoundError`.

    >>> model_fingerprint("no/such/folder/here")   # doctest: +SKIP
    Traceback (most recent call last):
    NotFoundError: no such file or folder: 'no/such/folder/here' (nor a Hub model id)
    """
    path = os.fspath(model)
    if os.path.isdir(path):
        return _folder_fingerprint(path)
    if os.path.exists(path):
        raise ConfigError(f"model {path!r} is a file: give its checkpoint folder or a Hub model id")
    return hub_fingerprint(path)


def _folder_fingerprint(folder: str) -> str:
    names = model_files(folder)
    if not any(n == "config.json" or n.endswith(WEIGHT_SUFFIXES) for n in names):
        raise NotFoundError(f"no checkpoint in folder {folder!r}: it has no config.json and no weight files")
    paths = [os.path.realpath(os.path.join(folder, name)) for name in names]
    cache_path = os.path.join(cache_dir(), HASH_CACHE)
    for path in paths:
        st = os.stat(path)
        if st.st_size >= CACHE_MIN_BYTES and (_MEMO.get(path) or [])[:-1] != _stamp(st):
            _MEMO.update(_load_cache(cache_path))  # a miss here: another process may have hashed it
            break
    known = dict(_MEMO)
    hashes = [[name, file_sha256(path, cache=_MEMO)] for name, path in zip(names, paths)]
    added = {k: v for k, v in _MEMO.items() if known.get(k) != v}
    if added:
        _save_cache(cache_path, added)
    return "sha256:" + params_fingerprint(hashes)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _cached_commit(repo_id: str) -> str | None:
    """The commit of ``repo_id``'s snapshot in the local Hugging Face cache (its ``main`` ref), or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(found, str):  # .../snapshots/<commit>/config.json
        return os.path.basename(os.path.dirname(found))
    return None


def hub_fingerprint(repo_id: str) -> str:
    """``"<repo_id>@<commit sha>"``: the Hub's current commit, or the local cache's when offline."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError
    from huggingface_hub.utils import validate_repo_id

    missing = f"no such file or folder: {repo_id!r} (nor a Hub model id"
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise NotFoundError(missing + ")") from None
    if repo_id.startswith((".", "/", "~")):
        raise NotFoundError(missing + ")")
    if not _offline():
        try:
            return f"{repo_id}@{HfApi().model_info(repo_id).sha}"
        except GatedRepoError:  # exists, but this token may not read it: the local cache may know it
            pass
        except RepositoryNotFoundError:
            raise NotFoundError(missing + " on the Hub)") from None
        except Exception:  # no network: fall back to the local cache below
            pass
    commit = _cached_commit(repo_id)
    if commit is None:
        raise NotFoundError(missing + " in the local Hugging Face cache; offline)")
    return f"{repo_id}@{commit}"


def data_fingerprint(ds, columns: Sequence[str] | None = None) -> str:
    """``"sha256:<hex>"`` of the rows of ``columns`` (default: all), in order, with their types.

    Content is hashed (the Arrow IPC stream, :func:`hf_vitcurate.columns.content_sha256`),
    not taken from ``ds._fingerprint``, which hashes how a dataset was made, not what it
    holds: a transform whose function cannot be hashed gets a random fingerprint in each
    process (older ``datasets`` gave every in-memory dataset one), so a resume in a new
    process would never match; and two routes to the same rows get two fingerprints.
    Images stored as paths hash as their paths. Without ``columns`` the value equals
    ``"sha256:" + content_sha256(ds)``. Every call hashes: a caller that needs the same
    rows' fingerprint several times computes it once and passes it on (the ``fingerprint=``
    of :func:`identity`, ``train``, ``generate``, ``cached_stage``).

    >>> from datasets import Dataset
    >>> a = Dataset.from_dict({"id": ["x"], "t": ["same"]}); b = Dataset.from_dict({"id": ["y"], "t": ["same"]})
    >>> data_fingerprint(a, ["t"]) == data_fingerprint(b, ["t"]), data_fingerprint(a) == data_fingerprint(b)
    (True, False)
    """
    from .columns import content_sha256
    from .errors import MissingColumnError

    if columns is not None:
        missing = [c for c in columns if c not in ds.column_names]
        if missing:
            raise MissingColumnError(f"no column(s) {missing} to fingerprint (columns: {ds.column_names})")
        ds = ds.select_columns(list(columns))
    return "sha256:" + content_sha256(ds)


def _named_files(column) -> set[str]:
    """Paths that ``column`` (a ChunkedArray) names without bytes: the storage of ``Image``/``Audio``
    features, ``{"bytes", "path"}`` structs, possibly inside lists."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found: set[str] = set()
    for chunk in column.chunks:
        while pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type):
            chunk = chunk.flatten()
        kind = chunk.type
        if not (pa.types.is_struct(kind) and kind.get_field_index("path") >= 0 and kind.get_field_index("bytes") >= 0):
            return set()
        fields = dict(zip([kind.field(i).name for i in range(kind.num_fields)], chunk.flatten()))
        only_path = pc.and_(pc.is_null(fields["bytes"]), pc.is_valid(fields["path"]))
        found.update(pc.filter(fields["path"], only_path).to_pylist())
    return found


def files_fingerprint(ds, columns: Sequence[str] | None = None) -> str | None:
    """``"sha256:<hex>"`` of the files that ``columns`` (default: all) name by path alone, or None if none.

    :func:`data_fingerprint` hashes an image stored as a path as its path, so an image
    edited or replaced at its path is the same data to it. This adds what the files are
    without reading them: each file's path and stamp (size, mtime, inode, ctime, as the hash
    cache of weight files; ``None`` for a missing file), one ``os.stat`` per file.
    :func:`identity` adds it (a run's chunks, ``train``'s ``output_dir``), and so do the model
    cache and REVO-LION's answer keys, so a fixed image is never answered or trained on again.

    >>> from datasets import Dataset
    >>> files_fingerprint(Dataset.from_dict({"t": ["no files"]})) is None
    True
    """
    from .columns import arrow_column

    names = [c for c in (ds.column_names if columns is None else columns) if c in ds.column_names]
    paths: set[str] = set()
    for name in names:
        paths |= _named_files(arrow_column(ds, name))
    if not paths:
        return None
    stamps = []
    for path in sorted(paths):
        try:
            stamps.append([path, *_stamp(os.stat(path))])
        except OSError:
            stamps.append([path, None])
    return "sha256:" + params_fingerprint(stamps)


def _canonical(value: Any) -> Any:
    """JSON-able form: mappings with string keys, tuples and sets as lists, other objects as ``str``."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def params_fingerprint(params: Mapping[str, Any] | Sequence[Any]) -> str:
    """SHA-256 hex of ``params`` as canonical JSON (sorted keys; tuples and lists alike).

    >>> params_fingerprint({"b": (1, 2), "a": 0.5}) == params_fingerprint({"a": 0.5, "b": [1, 2]})
    True
    """
    blob = json.dumps(_canonical(params), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def identity(*, model=None, data=None, columns: Sequence[str] | None = None,
             params: Mapping[str, Any] | None = None, fingerprint: str | None = None) -> dict[str, Any]:
    """``{"model", "data", "params", "key"}`` of a result: the fingerprints, the parameters and a 16-hex key.

    ``params`` is kept as canonical JSON (not only hashed) so :func:`what_changed` can
    name the parameter that changed. Parts left out are ``None``. Where ``data`` names image
    files by path, ``"files"`` holds what they are (:func:`files_fingerprint`). ``fingerprint``: the
    :func:`data_fingerprint` of ``data``'s ``columns`` when the caller already has it (the
    rows are then not hashed again; the caller vouches that it is theirs).

    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"t": ["a"]})
    >>> identity(data=ds, fingerprint=data_fingerprint(ds)) == identity(data=ds)
    True
    """
    if fingerprint is None and data is not None:
        fingerprint = data_fingerprint(data, columns)
    ident = {
        "model": None if model is None else model_fingerprint(model),
        "data": fingerprint,
        "params": None if params is None else _canonical(params),
    }
    files = None if data is None else files_fingerprint(data, columns)
    if files is not None:  # only then: identities of rows with embedded images keep the keys they had
        ident["files"] = files
    ident["key"] = params_fingerprint(ident)[:16]
    return ident


def _short(value: Any) -> str:
    text = str(value)
    return text[:19] + "…" if text.startswith("sha256:") and len(text) > 19 else text


def what_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """Words for the difference of two :func:`identity` dicts ('' when the same).

    >>> what_changed({"model": "sha256:aa", "data": "d", "params": {}}, {"model": "sha256:bb", "data": "d", "params": {}})
    'model changed (sha256:aa -> sha256:bb)'
    """
    if not old:
        return "the earlier run recorded no identity (it was made by an older version)"
    parts = []
    for part in ("model", "data", "files"):
        if old.get(part) != new.get(part):
            parts.append(f"{part} changed ({_short(old.get(part))} -> {_short(new.get(part))})")
    a, b = old.get("params") or {}, new.get("params") or {}
    if a != b:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs = [f"{k} {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}"
                     for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            parts.append("params changed: " + ", ".join(diffs))
        else:
            parts.append("params changed")
    if not parts and old.get("key") != new.get("key"):
        parts.append("key changed")
    return ", ".join(parts)


def ensure_same(recorded: Mapping[str, Any] | None, current: Mapping[str, Any], *, place: str,
                hint: str = "use restart=True or another work_dir") -> None:
    """Raise :class:`~hf_vitcurate.errors.StaleStateError` unless ``recorded`` equals ``current`` (by key).

    ``place`` names the folder (``"output_dir 'runs/ft'"``); the message says what changed and
    ``hint``. The error's ``changed`` attribute holds the words of :func:`what_changed` alone,
    so a caller can say it in its own terms (which of its options to change).
    """
    if recorded and recorded.get("key") == current.get("key"):
        return
    changed = what_changed(recorded, current)
    err = StaleStateError(f"{place} holds results of other inputs: {changed}; {hint}", changed=changed)
    raise err
