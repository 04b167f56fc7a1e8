"""ShapesWorld as a method sees it: the training sources in one pool, ground truth set aside.

Methods must never read ``_truth``; recipes and benchmarks still want to measure how many
degraded rows a selection kept. :func:`pool_and_truth` returns the pool without the column
and the truth as a separate ``{id: status}`` map for :func:`degraded_share`.

Example:
    >>> pool, truth = pool_and_truth(20, seed=0)
    >>> "_truth" in pool.column_names, 0.0 <= degraded_share(pool, truth) <= 1.0
    (False, True)
"""

from __future__ import annotations

from datasets import Dataset, concatenate_datasets

from ..columns import list_column
from .sources import shapesworld


def pool_and_truth(n_images: int, seed: int = 0, **options) -> tuple[Dataset, dict[str, str]]:
    """All training sources of ``shapesworld(n_images, seed, **options)`` concatenated, and the truth map."""
    world = shapesworld(n_images, seed=seed, **options)
    pool = concatenate_datasets([world[k] for k in world if k != "benchmark"])
    truth = dict(zip(list_column(pool, "id"), list_column(pool, "_truth")))
    return pool.remove_columns("_truth"), truth


def degraded_share(ds: Dataset, truth: dict[str, str]) -> float:
    """Share of rows of ``ds`` whose true status is not ``clean`` (0 for an empty dataset)."""
    ids = list_column(ds, "id")
    if not ids:
        return 0.0
    return sum(truth.get(i, "clean") != "clean" for i in ids) / len(ids)
