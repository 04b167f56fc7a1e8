"""Baselines with the same budget as a method: ``random_subset``, ``top`` and ``bottom`` by a score.

MLLM-Selector compares NBGS with these (*MLLM-Selector: Necessity and Diversity-driven
High-Value Data Selection for Enhanced Visual Instruction Tuning*, arXiv:2503.20502, Tables
1-3; see docs/methods.md); any score column works. The size is ``n`` rows or a ``fraction`` of the pool (exactly one).

Example:
    >>> from datasets import Dataset
    >>> pool = Dataset.from_dict({"id": ["a", "b", "c"], "necessity": [1.0, 3.0, 2.0]})
    >>> list(top(pool, n=2).dataset["id"]), list(bottom(pool, fraction=0.3)[0]["id"])
    (['b', 'c'], ['a'])
"""

from __future__ import annotations

import numpy as np
from datasets import Dataset

from ..results import Selection
from .common import finish, order_by, size


def random_subset(ds: Dataset, *, n: int | None = None, fraction: float | None = None, seed: int = 0) -> Selection:
    """``n`` rows (or a ``fraction`` of the pool) drawn uniformly without replacement.

    >>> from datasets import Dataset
    >>> len(random_subset(Dataset.from_dict({"id": list("abcd")}), n=2, seed=1).dataset)
    2
    """
    k = size(len(ds), n=n, fraction=fraction)
    idx = np.random.default_rng(seed).choice(len(ds), size=k, replace=False)
    return finish(ds, idx, "random_subset", params={"n": k, "fraction": fraction}, seed=seed)


def top(ds: Dataset, *, n: int | None = None, fraction: float | None = None,
        score_column: str = "necessity") -> Selection:
    """The ``n`` rows (or ``fraction`` of the pool) with the highest score (ties by id)."""
    k = size(len(ds), n=n, fraction=fraction)
    idx = order_by(ds, score_column, descending=True)[:k]
    return finish(ds, idx, "top", params={"n": k, "fraction": fraction, "score_column": score_column})


def bottom(ds: Dataset, *, n: int | None = None, fraction: float | None = None,
           score_column: str = "necessity") -> Selection:
    """The ``n`` rows (or ``fraction`` of the pool) with the lowest score (ties by id)."""
    k = size(len(ds), n=n, fraction=fraction)
    idx = order_by(ds, score_column, descending=False)[:k]
    return finish(ds, idx, "bottom", params={"n": k, "fraction": fraction, "score_column": score_column})
