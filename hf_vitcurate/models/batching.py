"""The data order of training and generation: row lengths, seeded global batches, each process's share.

A pure function of the seed and the epoch, so a run is reproducible and a resumed run sees
exactly the batches it had left; rows of similar length share a batch (little padding).
:func:`each_batch` runs a scoring stage's batches so that one row failing inside the
model flags that row instead of ending the run.

Example:
    >>> [b.tolist() for b in global_batches(5, 2, seed=0, epoch=0)] == [b.tolist() for b in global_batches(5, 2, seed=0, epoch=0)]
    True
    >>> len(global_batches(5, 2, seed=0, epoch=0))  # padded by wrapping: every batch is full
    3
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

logger = logging.getLogger(__name__)

MODEL_ERROR = "model_error: "


def row_lengths(rows) -> np.ndarray:
    """Approximate length of each row (characters of all turns + 100 per image), for batching by length.

    ``rows``: a ``Dataset`` (read as Arrow, vectorised) or a chunk's ``{"conversations": [...],
    "images": [...]}`` dict of lists. The scoring stage cuts its batches by true token length
    instead (:func:`hf_vitcurate.stages.necessity.plan_batches`); this estimate serves training
    and generation, where the order only has to keep similar rows together.

    >>> row_lengths({"conversations": [[{"value": "Hi"}, {"value": "Yes."}]], "images": [["a.png"]]}).tolist()
    [106]
    """
    if isinstance(rows, dict):
        images = rows.get("images") or [None] * len(rows["conversations"])
        return np.array([sum(len(t["value"] or "") for t in c) + 100 * len(v or [])
                         for c, v in zip(rows["conversations"], images)], dtype=np.int64)
    import pyarrow.compute as pc

    table = rows.select_columns(["conversations", "images"]).with_format("arrow")[:]
    conv = table.column("conversations").combine_chunks()
    values = pc.list_flatten(conv).field("value")
    parent = np.asarray(pc.list_parent_indices(conv))
    chars = np.bincount(parent, weights=np.asarray(pc.fill_null(pc.utf8_length(values), 0)), minlength=len(table))
    images = np.asarray(pc.fill_null(pc.list_value_length(table.column("images").combine_chunks()), 0))
    return (chars + 100 * images).astype(np.int64)


def token_batches(lengths: Sequence[int] | np.ndarray, batch_size: int, *, max_batch_tokens: int | None = None
                  ) -> list[np.ndarray]:
    """Row positions cut into batches of similar length, longest first, for scoring.

    Rows are sorted by ``lengths`` (the true token counts, so padding is what remains between
    neighbours); a batch takes at most ``batch_size`` rows and, with ``max_batch_tokens``, at
    most that many padded positions (rows x its longest row; a longer row goes alone).

    >>> [b.tolist() for b in token_batches([5, 9, 7, 2], 2)]
    [[1, 2], [0, 3]]
    >>> [b.tolist() for b in token_batches([5, 9, 7, 2], 4, max_batch_tokens=16)]
    [[1], [2, 0], [3]]
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches: list[list[int]] = []
    for i in order.tolist():
        current = batches[-1] if batches else None
        if (current is None or len(current) >= batch_size
                or (max_batch_tokens is not None and (len(current) + 1) * lengths[current[0]] > max_batch_tokens)):
            batches.append([i])
        else:
            current.append(i)
    return [np.asarray(b, dtype=np.int64) for b in batches]


def global_batches(
    n: int, batch_rows: int, *, seed: int, epoch: int, lengths: np.ndarray | None = None
) -> list[np.ndarray]:
    """One epoch of global micro-batches (``batch_rows`` row indices each), seeded.

    The epoch's permutation is padded by wrapping so every batch is full (all processes
    then take the same number of steps). With ``lengths``, rows are sorted by length
    inside windows of 32 batches and the batches are shuffled: little padding, still random.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    n_batches = math.ceil(n / batch_rows)
    pad = n_batches * batch_rows - n
    if pad:
        order = np.concatenate([order, np.resize(order, pad)])
    if lengths is not None:
        window = 32 * batch_rows
        for s in range(0, len(order), window):
            chunk = order[s : s + window]
            order[s : s + window] = chunk[np.argsort(-lengths[chunk], kind="stable")]
    batches = order.reshape(n_batches, batch_rows)
    if lengths is not None:
        batches = batches[rng.permutation(n_batches)]
    return list(batches)


def micro_batches(n: int, recipe, world: int, rank: int, lengths, start: int, stop: int) -> Iterator[list[int]]:
    """This process's micro-batches number ``start`` .. ``stop - 1`` of the run (``recipe``: a training ``Recipe``)."""
    per_epoch = math.ceil(n / (recipe.batch_size * world))
    for k in range(start, stop):
        epoch, i = divmod(k, per_epoch)
        if i == 0 or k == start:
            batches = global_batches(n, recipe.batch_size * world, seed=recipe.seed, epoch=epoch, lengths=lengths)
        rows = batches[i]
        yield rows[rank * recipe.batch_size : (rank + 1) * recipe.batch_size].tolist()


def total_steps(n_rows: int, recipe, world: int = 1) -> int:
    """Optimizer steps of a run on ``n_rows`` rows."""
    if recipe.max_steps is not None:
        return int(recipe.max_steps)
    per_epoch = math.ceil(n_rows / (recipe.batch_size * world))
    return max(1, math.ceil(recipe.epochs * per_epoch / recipe.grad_accum))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{MODEL_ERROR}{type(exc).__name__}: {text[:117] + '...' if len(text) > 120 else text}"


def each_batch(batches: Sequence[np.ndarray], run: Callable[[np.ndarray], None], *, strict: bool = True
               ) -> dict[int, str]:
    """Call ``run(positions)`` for every batch; a batch that raises is retried one row at a time.

    Returns ``{position: "model_error: <Type>: <message>"}`` for the rows that fail alone
    (their results are simply not written by ``run``). With ``strict`` (until a caller has
    seen the model work on some row), every row failing is not a bad row but a broken run
    (a broken checkpoint, a wrong option): the first error is raised instead of flagging
    them all. Stages pass ``strict=False`` once a row has succeeded, so later chunks made
    only of bad rows are flagged, not fatal.

    >>> done = []
    >>> def run(idx):
    ...     if 2 in idx: raise ValueError("bad row")
    ...     done.extend(idx.tolist())
    >>> each_batch([np.array([0, 1]), np.array([2, 3])], run), sorted(done)
    ({2: 'model_error: ValueError: bad row'}, [0, 1, 3])
    """
    errors: dict[int, str] = {}
    first: Exception | None = None
    for idx in batches:
        try:
            run(idx)
            continue
        except Exception as exc:  # noqa: BLE001 - retried row by row below; re-raised when no row works
            first = first or exc
            failed = {int(idx[0]): exc} if len(idx) == 1 else {}
        for i in idx if len(idx) > 1 else []:
            try:
                run(np.asarray([i]))
            except Exception as exc:  # noqa: BLE001 - this row's own failure: flagged
                failed[int(i)] = exc
        for i, exc in failed.items():
            errors[i] = _reason(exc)
            logger.warning("row %d of a chunk fails inside the model alone, flagged: %s", i, errors[i])
    total = sum(len(b) for b in batches)
    if strict and first is not None and total > 1 and len(errors) == total:
        raise first  # no row works: not a bad row but a broken run
    return errors


@contextmanager
def ahead(batches: Sequence[np.ndarray], make: Callable[[np.ndarray], Any], *, enabled: bool = True):
    """``get(positions)`` giving ``make(positions)``, each planned batch made one ahead in a thread.

    While the model runs batch k on a GPU, the CPU encodes batch k + 1: on an H200 that cut the
    necessity passes' encode + forward time by 11-15% (benchmarks/RESULTS.md, "VLM families").
    Positions that are not the next planned batch (``each_batch``'s retries row by row) are made
    at once. Every ``make`` holds one lock, because a fast tokenizer's padding and truncation
    settings are shared state. An error of ``make`` is raised by the ``get`` of its batch, as if
    made there. ``enabled=False`` (a CPU, where the thread would take the forward's cores):
    ``get`` is ``make``. A thread, not a ``DataLoader`` worker: worker processes would pickle
    the processor, fork a process that has CUDA up, and lose ``each_batch``'s row-by-row retries.

    >>> with ahead([np.array([0, 1]), np.array([2])], lambda idx: idx.sum() * 10) as get:
    ...     [int(get(np.array([0, 1]))), int(get(np.array([2]))), int(get(np.array([1])))]
    [10, 20, 10]
    """
    lock = threading.Lock()

    def locked(idx: np.ndarray):
        with lock:
            return make(idx)

    if not enabled or not batches:
        yield locked
        return
    keys = [tuple(int(i) for i in b) for b in batches]
    following = dict(zip(keys, range(1, len(keys) + 1)))
    with ThreadPoolExecutor(1, thread_name_prefix="encode-ahead") as pool:
        pending: dict[tuple, Future] = {keys[0]: pool.submit(locked, batches[0])}

        def get(idx: np.ndarray):
            key = tuple(int(i) for i in idx)
            future = pending.pop(key, None)
            nxt = following.get(key)
            if nxt is not None and nxt < len(keys) and keys[nxt] not in pending:
                pending[keys[nxt]] = pool.submit(locked, batches[nxt])
            return locked(idx) if future is None else future.result()

        try:
            yield get
        finally:
            for future in pending.values():
                future.cancel()
