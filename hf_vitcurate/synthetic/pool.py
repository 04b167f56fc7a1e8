"""ShapesWorld as a method sees it: the training sources in one pool, ground truth set aside.

Methods must never read ``_truth``; recipes and benchmarks still want to measure how many
degraded rows a selection kept. :func:`pool_and_truth` returns the pool without the column
and the truth as a separate ``{id: status}`` map for :func:`degraded_share` and
:func:`degraded_shares`. A row cut into turns by ``explode_turns`` (ids ``{id}#t{k}``, as
``select.tune_cross_evaluate`` does) has its row's status (:func:`statuses`).

Example:
    >>> pool, truth = pool_and_truth(20, seed=0)
    >>> "_truth" in pool.column_names, 0.0 <= degraded_share(pool, truth) <= 1.0
    (False, True)
    >>> sorted(degraded_shares(pool, truth))
    ['duplicate', 'easy', 'hallucination', 'leak']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from datasets import Dataset, concatenate_datasets

from ..columns import list_column
from ..formats.explode import row_id
from .sources import STATUSES, shapesworld



def pool_and_truth(n_images: int, seed: int = 0, **options) -> tuple[Dataset, dict[str, str]]:
    """All training sources of ``shapesworld(n_images, seed, **options)`` concatenated, and the truth map."""
    world = shapesworld(n_images, seed=seed, **options)
    pool = concatenate_datasets([world[k] for k in world if k != "benchmark"])
    truth = dict(zip(list_column(pool, "id"), list_column(pool, "_truth")))
    return pool.remove_columns("_truth"), truth


def statuses(ids: Sequence[str], truth: Mapping[str, str]) -> list[str]:
    """The true status of each id; an exploded turn (``{id}#t{k}``) has its row's; unknown ids are clean.

    >>> statuses(["a#t1", "b", "z"], {"a": "leak", "b": "easy"})
    ['leak', 'easy', 'clean']
    """
    out = []
    for i in ids:
        s = truth.get(i)
        out.append(s if s is not None else truth.get(row_id(i), "clean"))
    return out


def degraded_share(ds: Dataset, truth: Mapping[str, str]) -> float:
    """Share of rows of ``ds`` whose true status is not ``clean`` (0 for an empty dataset)."""
    ids = list_column(ds, "id")
    if not ids:
        return 0.0
    return sum(s != "clean" for s in statuses(ids, truth)) / len(ids)


def degraded_shares(ds: Dataset, truth: Mapping[str, str]) -> dict[str, float]:
    """Share of rows of ``ds`` of each degraded kind (``hallucination``, ``leak``, ``duplicate``, ``easy``).

    >>> from datasets import Dataset
    >>> degraded_shares(Dataset.from_dict({"id": ["a#t0", "a#t1", "b"]}), {"a": "easy", "b": "clean"})["easy"]
    0.6666666666666666
    """
    ids = list_column(ds, "id")
    counts = Counter(statuses(ids, truth))
    return {k: (counts.get(k, 0) / len(ids) if ids else 0.0) for k in STATUSES if k != "clean"}
