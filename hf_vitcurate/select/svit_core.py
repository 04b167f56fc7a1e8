"""SVIT data recipes: diversity, balance, SVIT-core and mix.

From *SVIT: Scaling up Visual Instruction Tuning* (arXiv:2307.04087, §4.2); the choices are
also in docs/methods.md.

- :func:`diversity` (D): drop the less informative half (by ``informativeness``, from
  :func:`hf_vitcurate.stages.concepts`), then draw ``n / num_tasks`` rows per ``task``
  at random (SVIT-80K-D: 20K from each of SVIT's four tasks).
- :func:`balance` (B): draw ``n`` rows at random, drop random ``yes`` rows (column
  ``yes_no`` from :func:`hf_vitcurate.stages.yes_no`) until yes:no <= ``ratio`` (the
  paper's best: 8), refill from rows that are not ``yes`` so the size is exactly ``n``.
- :func:`core` = D then B (SVIT-core-150K: ``n = 157_712``);
- :func:`mix`: replace one source of a mixture by the core (SVIT-mix-665K = LLaVA-v1.5-mix-665K
  with LLaVA-Instruct-150K replaced by SVIT-core-150K).

Each returns a :class:`~hf_vitcurate.results.Selection` (unpacks as ``(dataset, manifest)``); the manifest (see
:func:`hf_vitcurate.select.common.finish`) holds the ids, parameters, seed and a
``counts`` block (rows per task, yes/no before and after, rows dropped and refilled).
Sizes are exact: when a request cannot be met, :class:`ShortfallError` says what is
short and by how much; ``allow_short=True`` returns fewer rows with a warning instead
(and the manifest's ``counts["short"]`` says how many). All work is numpy over whole
columns (no per-row Python), seeded by ``seed`` alone.

Choices the paper leaves open, with the other reading:

- *Ties* at the informativeness cut are broken at random (seeded). "Half" keeps
  ``ceil(rows / 2)``. ``num_tasks`` counts the tasks of the whole pool, so a task
  that the global cut empties is reported short (``per_task=True`` halves each task
  on its own instead).
- *Remainder*: when ``n`` is not divisible by the number of tasks, the first
  ``n % num_tasks`` tasks in alphabetical order get one row more.
- *Refill* in B: each dropped ``yes`` row is replaced by a random non-``yes`` row,
  from its own task first (so the task mix of the draw is kept), from any task when
  that task has none left. Drops stop as soon as the selection, refilled ``no`` rows
  included, has yes:no <= ``ratio`` (the fewest drops). The other reading, bounding
  ``yes`` by the first draw's ``no`` count alone, drops a little more; it differs
  only when refills bring ``no`` rows. In :func:`core` the refill comes from the
  informative half only.

Example:
    >>> from datasets import Dataset
    >>> pool = Dataset.from_dict({
    ...     "id": [str(i) for i in range(40)], "task": ["a", "b"] * 20,
    ...     "informativeness": list(range(40)),
    ...     "yes_no": ["yes"] * 30 + ["no"] * 2 + ["none"] * 8})
    >>> sel, manifest = core(pool, n=10, ratio=2, seed=0)
    >>> len(sel), manifest["counts"]["yes"] <= 2 * manifest["counts"]["no"]
    (10, True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, concatenate_datasets

from .. import provenance
from ..columns import arrow_column
from ..errors import ConfigError, MissingColumnError, ShortfallError, missing_column
from ..results import Selection
from .common import finish, ids_hash


SVIT_CORE_SIZE = 157_712  # SVIT-core-150K, the size of LLaVA-Instruct-150K




# -- columns as numpy ------------------------------------------------------------------
def _codes(ds: Dataset, column: str, hint: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes and labels of a string column (via Arrow's dictionary encoding)."""
    if column not in ds.column_names:
        raise missing_column(column, ds.column_names, hint=hint)
    enc = pc.fill_null(arrow_column(ds, column), "").combine_chunks().dictionary_encode()
    if isinstance(enc, pa.ChunkedArray):  # pragma: no cover - pyarrow version differences
        enc = enc.chunk(0)
    return np.asarray(enc.indices, dtype=np.int64), [str(x) for x in enc.dictionary.to_pylist()]


def _numbers(ds: Dataset, column: str, hint: str) -> np.ndarray:
    if column not in ds.column_names:
        raise missing_column(column, ds.column_names, hint=hint)
    col = pc.fill_null(arrow_column(ds, column), 0)
    return np.asarray(col.to_numpy() if hasattr(col, "to_numpy") else col, dtype=np.float64)


_TAG_HINT = "run hf_vitcurate.stages.concepts (or `vitcurate svit tag`) first"
_YN_HINT = "run hf_vitcurate.stages.yes_no (or `vitcurate svit tag`) first"


def _yes_no_masks(ds: Dataset, column: str) -> tuple[np.ndarray, np.ndarray]:
    codes, labels = _codes(ds, column, _YN_HINT)
    yes = codes == labels.index("yes") if "yes" in labels else np.zeros(len(codes), bool)
    no = codes == labels.index("no") if "no" in labels else np.zeros(len(codes), bool)
    return yes, no


# -- index-level steps (shared by the recipes) -----------------------------------------
def informative_half(info: np.ndarray, task: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Mask of the more informative half (``ceil`` of the rows), per task when ``task`` is given.

    Example:
        >>> informative_half(np.array([1, 5, 3, 2]), None, np.random.default_rng(0)).tolist()
        [False, True, True, False]
    """
    keep = np.zeros(len(info), dtype=bool)
    groups = [np.arange(len(info))] if task is None else [np.flatnonzero(task == t) for t in np.unique(task)]
    for rows in groups:
        # Sort by informativeness descending, random tie-break.
        order = rows[np.lexsort((rng.random(len(rows)), -info[rows]))]
        keep[order[: math.ceil(len(rows) / 2)]] = True
    return keep


def task_quotas(n: int, labels: Sequence[str]) -> dict[str, int]:
    """``n`` split evenly over tasks; the remainder goes to the first tasks alphabetically.

    Example:
        >>> task_quotas(10, ["b", "a", "c"])
        {'a': 4, 'b': 3, 'c': 3}
    """
    names = sorted(labels)
    base, extra = divmod(n, len(names)) if names else (0, 0)
    return {t: base + (1 if i < extra else 0) for i, t in enumerate(names)}


def _draw_per_task(
    candidate: np.ndarray, task: np.ndarray, labels: list[str], quotas: dict[str, int], rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, int], dict[str, int]]:
    """Random rows per task from ``candidate``; returns (indices, available, short) per task."""
    picked, available, short = [], {}, {}
    for t in sorted(quotas):
        rows = np.flatnonzero(candidate & (task == labels.index(t)))
        available[t] = len(rows)
        if len(rows) < quotas[t]:
            short[t] = quotas[t] - len(rows)
        picked.append(rng.permutation(rows)[: quotas[t]])
    idx = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    return idx.astype(np.int64), available, short


def _balance_indices(
    selected: np.ndarray,
    yes: np.ndarray,
    no: np.ndarray,
    refill_pool: np.ndarray,
    task: np.ndarray,
    ratio: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Swap random ``yes`` rows of ``selected`` for rows of ``refill_pool`` until yes:no <= ratio.

    ``refill_pool`` holds candidate rows (not selected, not ``yes``) in random order.
    The ``yes`` rows are dropped in random order, each replaced by the next candidate of
    its task (any task once its task has none left); the fewest drops for which the
    selection (refilled ``no`` rows included) meets the ratio are kept. When the pool
    runs dry, further drops are not replaced and ``counts["short"]`` says how many.
    """
    n_yes, n_no = int(yes[selected].sum()), int(no[selected].sum())
    counts: dict[str, Any] = {"yes_before": n_yes, "no_before": n_no}
    if n_yes <= ratio * n_no + 1e-9:
        return selected, {**counts, "dropped_yes": 0, "refilled": 0, "short": 0}
    drops = rng.permutation(selected[yes[selected]])
    refill_for = _assign_refill(drops, refill_pool, task)
    has = refill_for >= 0
    cum_no = np.concatenate([[0], np.cumsum(has & no[np.maximum(refill_for, 0)])])
    d = np.arange(len(drops) + 1)
    # d = n_yes always satisfies the bound (0 yes left), so argmax finds a True.
    d_star = int(np.argmax(n_yes - d <= ratio * (n_no + cum_no) + 1e-9))
    refill = refill_for[:d_star][has[:d_star]]
    kept = np.setdiff1d(selected, drops[:d_star], assume_unique=True)
    counts.update(dropped_yes=d_star, refilled=len(refill), short=d_star - len(refill))
    return np.concatenate([kept, refill]).astype(np.int64), counts


def _assign_refill(drops: np.ndarray, pool: np.ndarray, task: np.ndarray) -> np.ndarray:
    """For each dropped row (in order), a refill row from ``pool``: same task first, else any; -1 if none."""
    out = np.full(len(drops), -1, dtype=np.int64)
    used = np.zeros(len(pool), dtype=bool)
    drop_task, pool_task = task[drops], task[pool]
    for t in np.unique(drop_task):
        dk, pk = np.flatnonzero(drop_task == t), np.flatnonzero(pool_task == t)
        m = min(len(dk), len(pk))
        out[dk[:m]] = pool[pk[:m]]
        used[pk[:m]] = True
    rest, free = np.flatnonzero(out < 0), pool[~used]
    m = min(len(rest), len(free))
    out[rest[:m]] = free[:m]
    return out


def _report(ds: Dataset, idx: np.ndarray, task: np.ndarray, labels: list[str], yes: np.ndarray | None, no: np.ndarray | None) -> dict[str, Any]:
    """Counts of a selection: rows per task, and yes/no with their ratio when known."""
    per_task = np.bincount(task[idx], minlength=len(labels))
    out: dict[str, Any] = {"pool": len(ds), "selected": len(idx), "per_task": {labels[i]: int(c) for i, c in enumerate(per_task) if c}}
    if yes is not None and no is not None:
        y, n_ = int(yes[idx].sum()), int(no[idx].sum())
        out.update(yes=y, no=n_, none=int(len(idx) - y - n_), yes_no_ratio=(round(y / n_, 3) if n_ else None))
    return out


def _shortfall(method: str, what: str, short: dict[str, int], allow_short: bool, advice: str) -> None:
    """Raise :class:`ShortfallError`, or warn when ``allow_short``."""
    if not short:
        return
    total = sum(short.values())
    parts = ", ".join(f"{k} short by {v}" for k, v in short.items())
    message = f"{method}: {what}: {parts} (total short by {total}). {advice}"
    if not allow_short:
        raise ShortfallError(message + " Or pass allow_short=True to return fewer rows.", short)
    # One message: a Python warning (pytest.warns, -W error can catch it); not also a log line.
    warnings.warn(message + " Returning fewer rows (allow_short=True).", stacklevel=3)


def _check_ratio(ratio: float) -> None:
    if not ratio >= 0:
        raise ConfigError(f"ratio={ratio} must be >= 0 (the largest yes:no ratio)")


def _check_n(n: int) -> int:
    if int(n) != n or n < 0:
        raise ConfigError(f"n={n!r} must be a whole number >= 0")
    return int(n)


# -- recipes ---------------------------------------------------------------------------
def diversity(
    ds: Dataset,
    *,
    n: int,
    per_task: bool = False,
    seed: int = 0,
    allow_short: bool = False,
    informativeness_column: str = "informativeness",
    task_column: str = "task",
) -> Selection:
    """Recipe D: the more informative half, then ``n / num_tasks`` random rows per task.

    Example:
        >>> from datasets import Dataset
        >>> pool = Dataset.from_dict({"id": list("abcdefgh"), "task": list("xxxxyyyy"),
        ...                           "informativeness": [0, 1, 2, 3, 0, 1, 2, 3]})
        >>> sel, m = diversity(pool, n=4, per_task=True)
        >>> sorted(sel["id"]), m["counts"]["per_task"]
        (['c', 'd', 'g', 'h'], {'x': 2, 'y': 2})
    """
    n = _check_n(n)
    rng = np.random.default_rng(seed)
    info = _numbers(ds, informativeness_column, _TAG_HINT)
    task, labels = _codes(ds, task_column, "the recipe draws per task")
    keep = informative_half(info, task if per_task else None, rng)
    quotas = task_quotas(n, labels)
    idx, available, short = _draw_per_task(keep, task, labels, quotas, rng)
    _shortfall(
        "diversity", f"n={n} over {len(labels)} tasks needs {quotas} rows from the more informative half "
        f"(available {available})", short, allow_short,
        "Use a smaller `n`" + ("" if per_task else ", per_task=True (halve each task on its own)") + ".",
    )
    params = {"n": n, "per_task": per_task, "informativeness_column": informativeness_column, "task_column": task_column}
    counts = _report(ds, idx, task, labels, None, None)
    counts.update(quotas=quotas, available=available, short=sum(short.values()),
                  informativeness_pool_mean=float(info.mean()) if len(info) else None,
                  informativeness_selected_mean=float(info[idx].mean()) if len(idx) else None)
    return finish(ds, idx, "svit.diversity", params=params, seed=seed, extra={"counts": counts})


def balance(
    ds: Dataset,
    *,
    n: int,
    ratio: float = 8,
    seed: int = 0,
    allow_short: bool = False,
    yes_no_column: str = "yes_no",
    task_column: str = "task",
) -> Selection:
    """Recipe B: ``n`` random rows with yes:no <= ``ratio``, exactly ``n`` (see module docstring).

    Example:
        >>> from datasets import Dataset
        >>> pool = Dataset.from_dict({"id": [str(i) for i in range(20)], "task": ["t"] * 20,
        ...                           "yes_no": ["yes"] * 12 + ["no"] * 4 + ["none"] * 4})
        >>> sel, m = balance(pool, n=6, ratio=1)
        >>> len(sel), m["counts"]["yes"] <= m["counts"]["no"]
        (6, True)
    """
    n = _check_n(n)
    _check_ratio(ratio)
    rng = np.random.default_rng(seed)
    yes, no = _yes_no_masks(ds, yes_no_column)
    task, labels = (_codes(ds, task_column, "") if task_column in ds.column_names else (np.zeros(len(ds), np.int64), ["all"]))
    _shortfall("balance", f"n={n} from a pool of {len(ds)} rows", {"pool": n - len(ds)} if n > len(ds) else {},
               allow_short, "Use a smaller `n`.")
    order = rng.permutation(len(ds))
    drawn, rest = order[:n], order[n:]
    idx, bal = _balance_indices(drawn, yes, no, rest[~yes[rest]], task, ratio, rng)
    _shortfall("balance", f"yes:no <= {ratio} needs {bal['dropped_yes']} rows that are not 'yes' to refill, "
               f"the pool has {bal['refilled']} left", {"non-yes rows": bal["short"]} if bal["short"] else {},
               allow_short, "Use a smaller `n` or a larger `ratio`.")
    params = {"n": n, "ratio": ratio, "yes_no_column": yes_no_column}
    counts = {**_report(ds, idx, task, labels, yes, no), "balance": bal,
              "short": bal["short"] + max(n - len(ds), 0)}
    return finish(ds, idx, "svit.balance", params=params, seed=seed, extra={"counts": counts})


def core(
    ds: Dataset,
    *,
    n: int = SVIT_CORE_SIZE,
    seed: int = 0,
    ratio: float = 8,
    per_task: bool = False,
    allow_short: bool = False,
    informativeness_column: str = "informativeness",
    yes_no_column: str = "yes_no",
    task_column: str = "task",
) -> Selection:
    """SVIT-core: :func:`diversity` then :func:`balance`, exactly ``n`` rows (SVIT-core-150K: 157,712).

    The diversity draw gives ``n`` rows of the more informative half, equal per task;
    the balance step then drops random ``yes`` rows to yes:no <= ``ratio`` and refills
    from the informative half's remaining non-``yes`` rows (same task first).

    Example:
        >>> from datasets import Dataset
        >>> pool = Dataset.from_dict({"id": [str(i) for i in range(12)], "task": ["a", "b"] * 6,
        ...     "informativeness": [3] * 12, "yes_no": ["yes"] * 4 + ["no"] * 4 + ["none"] * 4})
        >>> sel, m = core(pool, n=4, ratio=1, seed=1)
        >>> len(sel), m["counts"]["per_task"]
        (4, {'a': 2, 'b': 2})
    """
    n = _check_n(n)
    _check_ratio(ratio)
    rng = np.random.default_rng(seed)
    info = _numbers(ds, informativeness_column, _TAG_HINT)
    yes, no = _yes_no_masks(ds, yes_no_column)
    task, labels = _codes(ds, task_column, "the recipe draws per task")

    keep = informative_half(info, task if per_task else None, rng)
    quotas = task_quotas(n, labels)
    drawn, available, short = _draw_per_task(keep, task, labels, quotas, rng)
    _shortfall(
        "core (diversity step)", f"n={n} over {len(labels)} tasks needs {quotas} rows from the more informative "
        f"half (available {available})", short, allow_short,
        "Use a smaller `n`" + ("" if per_task else ", per_task=True (halve each task on its own)") + ".",
    )
    chosen = np.zeros(len(ds), dtype=bool)
    chosen[drawn] = True
    refill_pool = rng.permutation(np.flatnonzero(keep & ~chosen & ~yes))
    idx, bal = _balance_indices(drawn, yes, no, refill_pool, task, ratio, rng)
    _shortfall("core (balance step)", f"yes:no <= {ratio} needs {bal['dropped_yes']} non-yes rows of the "
               f"informative half to refill, {bal['refilled']} are left", {"non-yes rows": bal["short"]} if bal["short"] else {},
               allow_short, "Use a smaller `n`, a larger `ratio` or per_task=True.")
    params = {"n": n, "ratio": ratio, "per_task": per_task, "informativeness_column": informativeness_column,
              "yes_no_column": yes_no_column, "task_column": task_column}
    counts = {**_report(ds, idx, task, labels, yes, no), "quotas": quotas, "available": available,
              "balance": bal, "short": sum(short.values()) + bal["short"],
              "informativeness_pool_mean": float(info.mean()) if len(info) else None,
              "informativeness_selected_mean": float(info[idx].mean()) if len(idx) else None}
    return finish(ds, idx, "svit.core", params=params, seed=seed, extra={"counts": counts})


def mix(
    mixture: Dataset,
    *,
    core: Dataset,
    replace_source: str | Sequence[str],
    source_column: str = "source",
) -> Selection:
    """Replace the rows of ``replace_source`` in ``mixture`` by the ``core`` selection (SVIT-mix-665K).

    Columns kept are those both datasets have (the canonical ones at least); the core's
    types are cast to the mixture's. Raises :class:`~hf_vitcurate.errors.ConfigError` when no row has that source
    or when ids collide.

    Example:
        >>> from datasets import Dataset
        >>> mixture = Dataset.from_dict({"id": ["a", "b", "c"], "source": ["llava", "vqa", "llava"]})
        >>> core_ds = Dataset.from_dict({"id": ["s1"], "source": ["svit"]})
        >>> mixed, m = mix(mixture, core=core_ds, replace_source="llava")
        >>> sorted(mixed["id"]), m["counts"]["removed"]
        (['b', 's1'], 2)
    """
    names = [replace_source] if isinstance(replace_source, str) else list(replace_source)
    src_codes, src_labels = _codes(mixture, source_column, "the mixture needs a source column")
    hit = np.isin(src_codes, [src_labels.index(s) for s in names if s in src_labels])
    if not hit.any():
        raise ConfigError(f"replace_source={names}: no row of the mixture has these sources in column {source_column!r}; "
                          f"its sources are {src_labels}")
    common = [c for c in mixture.column_names if c in core.column_names]
    for need in ("id", source_column):
        if need not in common:
            raise MissingColumnError(f"both datasets need column {need!r} (mixture: {mixture.column_names}, "
                                     f"core: {core.column_names})")
    kept = mixture.select(np.flatnonzero(~hit)).select_columns(common)
    added = core.select_columns(common)
    added = added.cast(kept.features) if added.features != kept.features else added
    clash = set(arrow_column(kept, "id").to_pylist()) & set(arrow_column(added, "id").to_pylist())
    if clash:
        raise ConfigError(f"{len(clash)} id(s) of the core already exist in the mixture, e.g. {sorted(clash)[:3]}; "
                          "give the core's rows their own ids")
    mixed = concatenate_datasets([kept, added])
    mixed = provenance.with_steps(mixed, provenance.merge([mixture, core]))
    params = {"replace_source": names, "source_column": source_column, "core_rows": len(core)}
    out_codes, out_labels = _codes(mixed, source_column, "")
    counts = {"mixture": len(mixture), "removed": int(hit.sum()), "added": len(added), "result": len(mixed),
              "per_source": {out_labels[i]: int(c) for i, c in enumerate(np.bincount(out_codes, minlength=len(out_labels))) if c}}
    mixed = provenance.record(mixed, "svit.mix", kind="select", rows_in=len(mixture) + len(core), params=params)
    ids = arrow_column(mixed, "id").to_pylist()
    manifest = {"method": "svit.mix", "params": params, "seed": None, "n_pool": len(mixture), "n_selected": len(mixed),
                "ids_sha256": ids_hash(ids), "ids": ids, "counts": counts}
    return Selection(mixed, manifest)
