"""What every selection shares: its size (``n`` or ``fraction``), and turning chosen row
indices into a :class:`~hf_vitcurate.results.Selection` (subset, manifest, provenance step).

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a", "b", "c"], "s": [3.0, 1.0, 2.0]})
    >>> sub, manifest = finish(ds, [2, 0], "demo", params={"n": 2}, seed=0)
    >>> list(sub["id"]), manifest["n_selected"]
    (['a', 'c'], 2)
    >>> size(10, n=None, fraction=0.25)
    3
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from .. import provenance
from ..columns import arrow_column, ids_sha256, list_column
from ..errors import ConfigError, ValidationError, missing_column
from ..results import Selection

# One definition of a selection's identity, shared with hub/manifest.py.
ids_hash = ids_sha256


def quota(fraction: float, rows: int, *, name: str = "fraction") -> int:
    """``round(fraction·rows)`` rounded half up (Python's ``round`` rounds half to even).

    >>> quota(0.7, 10), quota(0.25, 10), quota(0.5, 3)
    (7, 3, 2)
    """
    if not 0 <= fraction <= 1:
        raise ConfigError(f"{name}={fraction} must be between 0 and 1")
    return min(rows, int(np.floor(fraction * rows + 0.5 + 1e-9)))  # 1e-9: 0.7 * 10 must give 7, not 6.999..


def size(pool: int, *, n: int | None, fraction: float | None) -> int:
    """The number of rows a selection of ``pool`` rows draws: exactly one of ``n`` or ``fraction``.

    ``fraction`` is a share of the pool, rounded half up (:func:`quota`). Errors are one
    line naming the option.

    >>> size(90, n=10, fraction=None), size(90, n=None, fraction=0.5)
    (10, 45)
    """
    if (n is None) == (fraction is None):
        raise ConfigError("give exactly one of n (rows) or fraction (share of the pool)"
                         + (f", not both (n={n}, fraction={fraction})" if n is not None else ""))
    if fraction is not None:
        return quota(fraction, pool)
    if int(n) != n or not 0 <= n <= pool:
        raise ConfigError(f"n={n} must be a whole number between 0 and the pool size {pool}")
    return int(n)


def score_array(ds: Dataset, column: str) -> np.ndarray:
    """A numeric column as float64 numpy, with a clear error when missing or null."""
    if column not in ds.column_names:
        raise missing_column(column, ds.column_names, what="score column")
    col = arrow_column(ds, column)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
        raise ConfigError(f"score column {column!r} holds {col.type}, not numbers; name a numeric score column")
    arr = np.asarray(col.to_numpy(), dtype=np.float64)
    if np.isnan(arr).any():
        bad = int(np.flatnonzero(np.isnan(arr))[0])
        # The id alone: ds[bad] would decode the row's images (and fail on a missing one).
        raise ValidationError(list_column(ds.select([bad]), "id")[0], column, "score is null/NaN; score or reject it first",
                              code="null_score")
    return arr


def order_by(ds: Dataset, column: str, descending: bool = True) -> np.ndarray:
    """Row indices sorted by ``column`` (descending by default), ties broken by ``id`` ascending.

    A numpy sort on the scores alone, then Arrow's multi-key sort only if tied scores
    exist (real losses rarely tie; ids are strings and slower to sort).
    """
    scores = score_array(ds, column)
    order = np.argsort(-scores if descending else scores, kind="stable")
    ranked = scores[order]
    if len(ranked) > 1 and np.any(ranked[1:] == ranked[:-1]):
        table = pa.table({"s": scores, "id": arrow_column(ds, "id")})
        keys = [("s", "descending" if descending else "ascending"), ("id", "ascending")]
        order = np.asarray(pc.sort_indices(table, sort_keys=keys))
    return order


def finish(
    ds: Dataset,
    indices: np.ndarray | list[int],
    method: str,
    *,
    params: dict[str, Any],
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Selection:
    """Select ``indices`` (kept in pool order), record provenance and build the manifest."""
    idx = np.sort(np.asarray(indices, dtype=np.int64))
    if len(idx) > 1 and np.any(idx[1:] == idx[:-1]):
        raise AssertionError(f"{method}: a row was selected twice")
    sub = ds.select(idx)
    id_column = arrow_column(sub, "id") if "id" in sub.column_names else None
    ids = id_column.to_pylist() if id_column is not None else list_column(sub, "id")
    sub = provenance.record(sub, method, kind="select", rows_in=len(ds), params=params, seed=seed, parent=ds)
    manifest = {
        "method": method,
        "params": params,
        "seed": seed,
        "n_pool": len(ds),
        "n_selected": len(sub),
        "ids_sha256": ids_hash(id_column if id_column is not None else ids),
        "ids": ids,
        **(extra or {}),
    }
    return Selection(sub, manifest)
