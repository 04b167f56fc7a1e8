"""The data order of training and generation: row lengths, seeded global batches, each process's share.

A pure function of the seed and the epoch, so a run is reproducible and a resumed run sees
exactly the batches it had left; rows of similar length share a batch (little padding).

Example:
    >>> [b.tolist() for b in global_batches(5, 2, seed=0, epoch=0)] == [b.tolist() for b in global_batches(5, 2, seed=0, epoch=0)]
    True
    >>> len(global_batches(5, 2, seed=0, epoch=0))  # padded by wrapping: every batch is full
    3
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np


def row_lengths(dataset) -> np.ndarray:
    """Approximate length of each row (characters of all turns + 100 per image), vectorised."""
    import pyarrow.compute as pc

    table = dataset.select_columns(["conversations", "images"]).with_format("arrow")[:]
    conv = table.column("conversations").combine_chunks()
    values = pc.list_flatten(conv).field("value")
    parent = np.asarray(pc.list_parent_indices(conv))
    chars = np.bincount(parent, weights=np.asarray(pc.fill_null(pc.utf8_length(values), 0)), minlength=len(table))
    images = np.asarray(pc.fill_null(pc.list_value_length(table.column("images").combine_chunks()), 0))
    return chars + 100 * images


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
