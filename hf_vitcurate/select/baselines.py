"""Baselines with the same budget as a method: ``random``, ``top`` and ``bottom`` by a score.

MLLM-Selector compares NBGS with these (papers/001 Tables 1-3); any score column works.

Example:
    >>> from datasets import Dataset
    >>> pool = Dataset.from_dict({"id": ["a", "b", "c"], "necessity": [1.0, 3.0, 2.0]})
    >>> list(top(pool, 2)[0]["id"]), list(bottom(pool, 1)[0]["id"])
    (['b', 'c'], ['a'])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from datasets import Dataset

from .common import finish, order_by


def _check(ds: Dataset, n_select: int) -> None:
    if not 0 <= n_select <= len(ds):
        raise ValueError(f"n_select={n_select} must be between 0 and the pool size {len(ds)}")


def random(ds: Dataset, n_select: int, seed: int = 0) -> tuple[Dataset, dict[str, Any]]:
    """``n_select`` rows drawn uniformly without replacement."""
    _check(ds, n_select)
    idx = np.random.default_rng(seed).choice(len(ds), size=n_select, replace=False)
    return finish(ds, idx, "random", params={"n_select": n_select}, seed=seed)


def top(ds: Dataset, n_select: int, score_column: str = "necessity") -> tuple[Dataset, dict[str, Any]]:
    """The ``n_select`` rows with the highest score (ties by id)."""
    _check(ds, n_select)
    idx = order_by(ds, score_column, descending=True)[:n_select]
    return finish(ds, idx, "top", params={"n_select": n_select, "score_column": score_column})


def bottom(ds: Dataset, n_select: int, score_column: str = "necessity") -> tuple[Dataset, dict[str, Any]]:
    """The ``n_select`` rows with the lowest score (ties by id)."""
    _check(ds, n_select)
    idx = order_by(ds, score_column, descending=False)[:n_select]
    return finish(ds, idx, "bottom", params={"n_select": n_select, "score_column": score_column})
