"""Sharded, resumable execution of a model stage, shared by every model stage.

Rows are cut into fixed chunks of ``chunk_size`` (global chunk ``c`` = rows
``[c*chunk_size, (c+1)*chunk_size)``); under ``accelerate launch --num_processes N`` rank
``r`` computes the chunks ``c % N == r``. Each finished chunk is written as
``{work_dir}/rank-{r:05d}/chunk-{c:05d}.parquet`` (row index + new columns) and then a
``.done`` marker, so a killed run restarted with the same command (with any number of
processes) recomputes only the chunks without a marker. After a barrier every process
merges the chunks by row index and adds the columns to the dataset. What runs where is
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

import glob
import hashlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, Features, concatenate_datasets
from .progress import progress

from . import provenance

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


def run_key(ds: Dataset, params: dict[str, Any]) -> str:
    """Identity of a run: the content of the input rows and the stage parameters.

    Chunks written under another key are never reused (that would mix two runs). The
    content is hashed (Arrow IPC of the rows), not taken from ``ds._fingerprint``:
    ``concatenate_datasets`` and in-memory datasets get a random fingerprint in every
    process, which would make resuming impossible.
    """
    from .columns import content_sha256

    blob = json.dumps({"data": content_sha256(ds), "columns": ds.column_names, "rows": len(ds), "params": params},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _chunk_path(work_dir: str, rank: int, chunk: int) -> str:
    return os.path.join(work_dir, f"rank-{rank:05d}", f"chunk-{chunk:05d}.parquet")


def done_chunks(work_dir: str) -> dict[int, str]:
    """Finished chunks found under ``work_dir`` (any rank folder): chunk index -> parquet path."""
    found = {}
    for marker in glob.glob(os.path.join(work_dir, "rank-*", "chunk-*.done")):
        chunk = int(os.path.basename(marker)[len("chunk-") : -len(".done")])
        found[chunk] = marker[: -len(".done")] + ".parquet"
    return found


def _write_chunk(path: str, table: pa.Table) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # atomic: a killed write never looks finished
    with open(path[: -len(".parquet")] + ".done", "w") as f:
        f.write(str(table.num_rows))


def _prepare(work_dir: str, key: str, restart: bool, replace_other_run: bool, st) -> None:
    """Check (or, with ``restart``, empty) ``work_dir`` and write the run key; main process only."""
    meta = os.path.join(work_dir, "run.json")
    if st.is_main_process:
        os.makedirs(work_dir, exist_ok=True)
        old = json.load(open(meta)).get("key") if os.path.exists(meta) else None
        other = old is not None and old != key
        if other and not (restart or replace_other_run):
            raise RuntimeError(
                f"{work_dir} holds chunks of another run (key {old}, this run {key}): "
                "use another work_dir or restart=True"
            )
        if restart or other:
            for path in glob.glob(os.path.join(work_dir, "rank-*", "chunk-*")):
                os.remove(path)
        with open(meta, "w") as f:
            json.dump({"key": key}, f)
    st.wait_for_everyone()


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
) -> Dataset:
    """Apply ``compute`` to every chunk of ``ds`` across processes; return ``ds`` plus its columns.

    ``compute`` receives a batch as a dict of lists (``ds[a:b]`` formatting, images decoded)
    and returns new columns of the same length. ``features`` (optional) types the new
    columns. ``params`` enter the run key so that changing a parameter never reuses old
    chunks. One process and N processes give the same columns. ``work_dir=None``: a new
    temporary folder shared by the run's processes (:func:`shared_temp_dir`; no resume).
    ``restart=True`` discards the chunks already in ``work_dir``; otherwise this run's
    chunks are reused and another run's chunks (other data or ``params``) are an error, or,
    with ``replace_other_run=True``, removed (for callers that own the folder).
    """
    st = state()
    if work_dir is None:
        work_dir = shared_temp_dir(f"{desc}-")
    source = ds.select_columns(input_columns) if input_columns else ds
    key = run_key(source, params or {})
    _prepare(work_dir, key, restart, replace_other_run, st)
    n_chunks = -(-len(ds) // chunk_size)
    finished = done_chunks(work_dir)
    mine = [c for c in range(n_chunks) if c % st.num_processes == st.process_index and c not in finished]
    skipped = sum(1 for c in range(n_chunks) if c % st.num_processes == st.process_index) - len(mine)
    if skipped:
        logger.info("rank %d: %d chunk(s) already done in %s, skipped", st.process_index, skipped, work_dir)
    bar = progress(total=len(mine), desc=desc, unit="chunk", enabled=st.is_local_main_process)
    for c in mine:
        lo, hi = c * chunk_size, min(len(ds), (c + 1) * chunk_size)
        columns = compute(source[lo:hi])
        bad = {k: len(v) for k, v in columns.items() if len(v) != hi - lo}
        if bad:
            raise ValueError(f"compute returned {bad} values for a chunk of {hi - lo} rows (chunk {c})")
        table = pa.table({ROW: pa.array(range(lo, hi), pa.int64()), **_as_arrays(columns, features)})
        _write_chunk(_chunk_path(work_dir, st.process_index, c), table)
        bar.update(1)
    bar.close()
    st.wait_for_everyone()
    return merge(ds, work_dir, n_chunks, features)


def _as_arrays(columns: dict[str, list], features) -> dict[str, pa.Array]:
    if features is None:
        return {k: pa.array(v) for k, v in columns.items()}
    feats = Features(features) if not isinstance(features, Features) else features
    return {k: pa.array(v, type=feats[k].pa_type if k in feats else None) for k, v in columns.items()}


def merge(ds: Dataset, work_dir: str, n_chunks: int | None = None, features=None) -> Dataset:
    """Read every finished chunk, order by row index and add the columns to ``ds``."""
    found = done_chunks(work_dir)
    n_chunks = len(found) if n_chunks is None else n_chunks
    missing = [c for c in range(n_chunks) if c not in found]
    if missing:
        raise RuntimeError(f"{len(missing)} chunk(s) not finished in {work_dir} (first: {missing[:5]}); rerun to resume")
    if not found:
        return ds
    table = pa.concat_tables([pq.read_table(found[c]) for c in range(n_chunks)])
    table = table.sort_by(ROW)
    if table.num_rows != len(ds) or table.column(ROW).to_numpy()[-1] != len(ds) - 1:
        raise RuntimeError(f"chunks in {work_dir} cover {table.num_rows} rows, dataset has {len(ds)}")
    new = Dataset(table.drop_columns([ROW]))
    if features is not None:
        feats = Features(features) if not isinstance(features, Features) else features
        new = new.cast(Features({k: feats[k] if k in feats else new.features[k] for k in new.column_names}))
    # A rerun replaces its own columns rather than failing on duplicates.
    base = ds.remove_columns([c for c in new.column_names if c in ds.column_names])
    out = concatenate_datasets([base, new], axis=1)
    return provenance.with_steps(out, provenance.steps(ds))
