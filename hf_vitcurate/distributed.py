"""Sharded, resumable execution of a model stage, shared by every model stage.

Rows are cut into fixed chunks of ``chunk_size`` (global chunk ``c`` = rows
``[c*chunk_size, (c+1)*chunk_size)``); under ``accelerate launch --num_processes N`` rank
``r`` computes the chunks ``c % N == r``. Each finished chunk is written as
``{work_dir}/rank-{r:05d}/chunk-{c:05d}.parquet`` (row index + new columns) and then a
``.done`` marker (JSON: rows, the index range ``[lo, hi)``, the file's size and sha256),
so a killed run restarted with the same command (with any number of processes)
recomputes only the chunks without a marker. A restart verifies every finished chunk
against its marker and recomputes a missing, truncated or corrupt one (with a warning).
After a barrier every process merges the chunks, checks that every row index appears
exactly once, and adds the columns to the dataset. The main process holds the work
dir's lock (:func:`hf_vitcurate.locks.hold`) for the whole run: a second run on the same
folder stops at once with :class:`~hf_vitcurate.errors.LockedError`. What runs where is
kept apart from what is computed: a stage passes a ``compute(batch) -> columns``
function and never sees ranks.

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a", "b", "c"], "x": [1, 2, 3]})
    >>> import tempfile
    >>> out = run_sharded(ds, lambda b: {"y": [v * 2 for v in b["x"]]}, tempfile.mkdtemp(), chunk_size=2)
    >>> list(out["y"])
    [2, 4, 6]
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, Features, concatenate_datasets

from . import locks, provenance
from .atomic import write_json
from .errors import ConfigError, RunError, StaleStateError
from .identity import file_sha256, what_changed  # noqa: F401 - file_sha256 re-exported (benchmarks)
from .progress import progress

logger = logging.getLogger(__name__)

ROW = "__row"


def use_cpu() -> bool:
    """True when processes should run on the CPU: no accelerator, or ``ACCELERATE_USE_CPU`` set.

    Accelerate only sets up multi-process CPU runs (gloo) when told ``cpu=True``; passing
    it whenever no GPU exists lets ``accelerate launch --multi_gpu --num_processes N``
    (or ``torchrun``) shard across N CPU processes with the same command as on GPUs.
    """
    import torch
    from accelerate.utils import parse_flag_from_env

    return parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()


def state():
    """The process's ``PartialState`` (rank, world size, device), CPU-aware (see :func:`use_cpu`)."""
    from accelerate import PartialState

    return PartialState(cpu=use_cpu())


def run_identity(ds: Dataset, params: dict[str, Any], *, fingerprint: str | None = None) -> dict[str, Any]:
    """What a run's chunks depend on: :func:`hf_vitcurate.identity.identity` of the input rows and parameters.

    The rows count by content (:func:`~hf_vitcurate.identity.data_fingerprint`), not by
    ``ds._fingerprint``: ``concatenate_datasets`` and in-memory datasets get a random
    fingerprint in every process, which would make resuming impossible. ``params`` must name
    what a result depends on by content (a model by its fingerprint, not its path).
    ``fingerprint``: ``data_fingerprint(ds)`` when the caller already has it (not hashed again).
    """
    from .identity import identity

    # identity() adds the image files named by path: an image fixed there is computed anew.
    return identity(data=ds, params={**params, "columns": ds.column_names, "rows": len(ds)}, fingerprint=fingerprint)


def run_key(ds: Dataset, params: dict[str, Any]) -> str:
    """Identity of a run (:func:`run_identity`) as a short hash; chunks of another key are never reused."""
    return run_identity(ds, params)["key"]


def _chunk_path(work_dir: str, rank: int, chunk: int) -> str:
    return os.path.join(work_dir, f"rank-{rank:05d}", f"chunk-{chunk:05d}.parquet")


def _marker(parquet: str) -> str:
    return parquet[: -len(".parquet")] + ".done"


def done_chunks(work_dir: str) -> dict[int, str]:
    """Chunks with a done marker under ``work_dir`` (any rank folder): chunk index -> parquet path."""
    found: dict[int, str] = {}
    for chunk, parquet in _markers(work_dir):
        found.setdefault(chunk, parquet)
    return found


def _markers(work_dir: str) -> list[tuple[int, str]]:
    """``(chunk index, parquet path)`` of every done marker under ``work_dir``, in path order."""
    out = []
    for marker in sorted(glob.glob(os.path.join(work_dir, "rank-*", "chunk-*.done"))):
        out.append((int(os.path.basename(marker)[len("chunk-") : -len(".done")]), marker[: -len(".done")] + ".parquet"))
    return out


def _write_chunk(path: str, table: pa.Table, lo: int, hi: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    blob = sink.getvalue().to_pybytes()
    for target, data in ((path, blob), (_marker(path), json.dumps(
            {"rows": table.num_rows, "lo": lo, "hi": hi, "bytes": len(blob),
             "sha256": hashlib.sha256(blob).hexdigest()}).encode())):
        tmp = target + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)  # atomic: a killed write never looks finished


def check_chunk(parquet: str, lo: int, hi: int) -> str | None:
    """None when the finished chunk ``parquet`` holds rows ``[lo, hi)`` as its marker says, else what is wrong.

    Checks the marker's range and row count, the file's size and its sha256. The full hash
    rather than only the parquet footer and row count: it also catches a corrupt page that
    a footer check misses, and it costs about as little (benchmarks/bench_chunk_verify.py,
    512-row chunks on a loaded 2-core machine: a 10 KiB necessity chunk hashes in 86 us
    against 280 us to read its footer, a 157 KiB generate chunk in 636 us against 311 us;
    verifying a whole 665K-row run takes 0.3-1 s, nothing next to scoring one chunk).
    """
    try:
        with open(_marker(parquet)) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return "its done marker is unreadable (a marker of an older version, or corrupt)"
    if not isinstance(info, dict) or (info.get("lo"), info.get("hi"), info.get("rows")) != (lo, hi, hi - lo):
        return f"its marker does not describe rows [{lo}, {hi})"
    try:
        size = os.path.getsize(parquet)
    except OSError:
        return "its parquet file is missing"
    if size != info.get("bytes"):
        return f"its file has {size} bytes, its marker says {info.get('bytes')} (truncated or rewritten)"
    if file_sha256(parquet) != info.get("sha256"):
        return "its file's sha256 differs from its marker (corrupt)"
    return None


def _drop_chunk(parquet: str) -> None:
    for path in (_marker(parquet), parquet):
        with contextlib.suppress(OSError):
            os.remove(path)


def verify_chunks(work_dir: str, n_rows: int, chunk_size: int) -> dict[int, str]:
    """Keep the sound finished chunks of ``work_dir``; remove the others (and leftovers of killed writes).

    A chunk found twice (two rank folders) keeps its first sound copy. Returns the sound
    chunks: index -> parquet path.
    """
    for tmp in glob.glob(os.path.join(work_dir, "rank-*", "chunk-*.tmp")):
        with contextlib.suppress(OSError):
            os.remove(tmp)
    n_chunks = -(-n_rows // chunk_size)
    sound: dict[int, str] = {}
    for c, parquet in _markers(work_dir):
        lo, hi = c * chunk_size, min(n_rows, (c + 1) * chunk_size)
        problem = "a duplicate" if c in sound else ("beyond the data" if c >= n_chunks else check_chunk(parquet, lo, hi))
        if problem is None:
            sound[c] = parquet
        else:
            if problem != "a duplicate":
                logger.warning("chunk %d in %s: %s; recomputing it", c, work_dir, problem)
            _drop_chunk(parquet)
    return sound


def _prepare(work_dir: str, identity: dict[str, Any], n_rows: int, chunk_size: int, restart: bool,
             replace_other_run: bool) -> None:
    """Check (or, with ``restart``, empty) ``work_dir``, verify its chunks and write the run identity."""
    meta = os.path.join(work_dir, "run.json")
    key = identity["key"]
    old: dict[str, Any] = {}
    if os.path.exists(meta):
        with contextlib.suppress(OSError, ValueError), open(meta) as f:
            old = json.load(f)
        old = old if isinstance(old, dict) else {}
    other = bool(old) and old.get("key") != key
    if other and not (restart or replace_other_run):
        changed = what_changed(old.get("identity"), identity)
        raise StaleStateError(
            f"{work_dir} holds chunks of another run (key {old.get('key')}, this run {key}; changed: "
            f"{changed}): use another work_dir or restart=True", changed=changed)
    if restart or other or (not old and glob.glob(os.path.join(work_dir, "rank-*"))):
        for path in glob.glob(os.path.join(work_dir, "rank-*", "chunk-*")):
            os.remove(path)
    verify_chunks(work_dir, n_rows, chunk_size)
    write_json(meta, {"key": key, "identity": identity})


def _on_main(st, fn: Callable[[], None]) -> None:
    """Run ``fn`` on the main process; if it raises, every process raises the same error (none hangs)."""
    error: list = [None]
    if st.is_main_process:
        try:
            fn()
        except Exception as exc:  # handed to the other ranks, then raised here too
            error[0] = exc
    if st.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        shared = [None if error[0] is None else (type(error[0]), str(error[0]))]
        broadcast_object_list(shared, from_process=0)
        if shared[0] is not None and error[0] is None:
            cls, message = shared[0]
            error[0] = cls(message) if issubclass(cls, RunError) else RunError(f"main process failed: {message}")
    if error[0] is not None:
        raise error[0]


def shared_temp_dir(prefix: str = "hf_vitcurate-") -> str:
    """A new temporary folder whose path every process of the run receives (made by the main one).

    Each rank calling ``tempfile.mkdtemp`` would get its own folder and the merge would miss
    the other ranks' chunks. Across machines, pass a ``work_dir`` on a shared filesystem.

    >>> os.path.isdir(shared_temp_dir())
    True
    """
    import tempfile

    st = state()
    path = [tempfile.mkdtemp(prefix=prefix) if st.is_main_process else None]
    if st.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(path, from_process=0)
    return path[0]


def run_sharded(
    ds: Dataset,
    compute: Callable[[dict[str, list]], dict[str, list]],
    work_dir: str | None,
    *,
    chunk_size: int = 1024,
    features: Features | dict | None = None,
    params: dict[str, Any] | None = None,
    input_columns: list[str] | None = None,
    desc: str = "scoring",
    restart: bool = False,
    replace_other_run: bool = False,
    decode: bool = True,
    fingerprint: str | None = None,
) -> Dataset:
    """Apply ``compute`` to every chunk of ``ds`` across processes; return ``ds`` plus its columns.

    ``compute`` receives a batch as a dict of lists (``ds[a:b]`` formatting; with
    ``decode=False`` the values as stored, images as ``{"bytes", "path"}`` for a stage that
    decodes them row by row with :mod:`hf_vitcurate.images`) and returns new columns of
    the same length. ``features`` (optional) types the new columns. ``params``
    and ``chunk_size`` enter the run key so that changing them never reuses old chunks.
    One process and N processes give the same columns. ``work_dir=None``: a new temporary
    folder shared by the run's processes (:func:`shared_temp_dir`; no resume).
    ``restart=True`` discards the chunks already in ``work_dir``; otherwise this run's
    sound chunks are reused (a corrupt or partial one is recomputed) and another run's
    chunks (other data or ``params``) are a :class:`StaleStateError`, or, with
    ``replace_other_run=True``, removed (for callers that own the folder). Another live
    run on ``work_dir`` is a :class:`~hf_vitcurate.errors.LockedError`. ``fingerprint``:
    the :func:`~hf_vitcurate.identity.data_fingerprint` of ``ds``'s ``input_columns`` when
    the caller already has it (the rows are then not hashed again for the run's key).
    """
    st = state()
    if work_dir is None:
        work_dir = shared_temp_dir(f"{desc}-")
    source = ds.select_columns(input_columns) if input_columns else ds
    reader = source if decode else source.with_format("arrow")
    n_chunks = -(-len(ds) // chunk_size)
    with contextlib.ExitStack() as held:
        def prepare() -> None:  # main process only: the lock first (a second run stops at once), then the key
            held.enter_context(locks.hold(work_dir, what=desc))
            identity = run_identity(source, {**(params or {}), "chunk_size": chunk_size}, fingerprint=fingerprint)
            _prepare(work_dir, identity, len(ds), chunk_size, restart, replace_other_run)

        _on_main(st, prepare)
        st.wait_for_everyone()
        finished = done_chunks(work_dir)
        ours = [c for c in range(n_chunks) if c % st.num_processes == st.process_index]
        mine = [c for c in ours if c not in finished]
        logger.info("rank %d: %d chunk(s) to compute, %d already done in %s", st.process_index, len(mine),
                    len(ours) - len(mine), work_dir)
        bar = progress(total=len(mine), desc=desc, unit="chunk", enabled=st.is_local_main_process)
        for c in mine:
            lo, hi = c * chunk_size, min(len(ds), (c + 1) * chunk_size)
            columns = compute(reader[lo:hi] if decode else reader[lo:hi].to_pydict())
            bad = {k: len(v) for k, v in columns.items() if len(v) != hi - lo}
            if bad:
                raise ConfigError(f"compute returned {bad} values for a chunk of {hi - lo} rows (chunk {c}): "
                                  "it must return one value per row of its batch")
            table = pa.table({ROW: pa.array(range(lo, hi), pa.int64()), **_as_arrays(columns, features)})
            _write_chunk(_chunk_path(work_dir, st.process_index, c), table, lo, hi)
            bar.update(1)
        bar.close()
        st.wait_for_everyone()
        out = merge(ds, work_dir, n_chunks, features)
        st.wait_for_everyone()  # the lock is held until every process has read the chunks
    return out


def _as_arrays(columns: dict[str, list], features) -> dict[str, pa.Array]:
    if features is None:
        return {k: pa.array(v) for k, v in columns.items()}
    feats = Features(features) if not isinstance(features, Features) else features
    return {k: pa.array(v, type=feats[k].pa_type if k in feats else None) for k, v in columns.items()}


def _read_chunk(work_dir: str, c: int, path: str) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        _drop_chunk(path)  # the rerun recomputes it
        raise RunError(f"chunk {c} in {work_dir} is unreadable ({exc}): rerun the same command to recompute it") from None


def merge(ds: Dataset, work_dir: str, n_chunks: int | None = None, features=None) -> Dataset:
    """Read every finished chunk, check that each row index appears exactly once, add the columns to ``ds``."""
    found = done_chunks(work_dir)
    n_chunks = len(found) if n_chunks is None else n_chunks
    missing = [c for c in range(n_chunks) if c not in found]
    if missing:
        raise RunError(f"{len(missing)} chunk(s) not finished in {work_dir} (first: {missing[:5]}): "
                       "rerun the same command to resume")
    if not found:
        return ds
    table = pa.concat_tables([_read_chunk(work_dir, c, found[c]) for c in range(n_chunks)])
    rows = table.column(ROW).to_numpy()
    if len(rows) != len(ds) or not np.array_equal(rows, np.arange(len(ds))):
        counts = np.bincount(rows[(rows >= 0) & (rows < len(ds))], minlength=len(ds))
        raise RunError(f"chunks in {work_dir} cover {len(rows)} rows for a dataset of {len(ds)} "
                       f"({int((counts == 0).sum())} row(s) missing, {int((counts > 1).sum())} repeated): "
                       "rerun with restart=True (--restart)")
    new = Dataset(table.drop_columns([ROW]))
    if features is not None:
        feats = Features(features) if not isinstance(features, Features) else features
        new = new.cast(Features({k: feats[k] if k in feats else new.features[k] for k in new.column_names}))
    # A rerun replaces its own columns rather than failing on duplicates.
    base = ds.remove_columns([c for c in new.column_names if c in ds.column_names])
    out = concatenate_datasets([base, new], axis=1)
    return provenance.with_steps(out, provenance.steps(ds))
