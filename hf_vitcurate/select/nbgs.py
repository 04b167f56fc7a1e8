"""MLLM-Selector's necessity-based grouped sampling (NBGS).

From *MLLM-Selector: Necessity and Diversity-driven High-Value Data Selection for Enhanced
Visual Instruction Tuning* (arXiv:2503.20502); the formulas and choices are in docs/methods.md.

1. sort the pool (seed rows already removed) by ``necessity`` descending, ties by ``id``;
2. cut it into N = ceil(M / k) consecutive groups of k rows (the last may be smaller);
3. give each group a quota of the n rows to draw, proportional to its size, rounded by
   largest remainder so the quotas sum to exactly n (``quotas="equal"``: n / N each, the
   paper's literal reading, see :func:`equal_quotas`);
4. inside a group draw its quota without replacement with p_i = softmax(s_i / tau),
   done exactly and vectorised as Gumbel-top-k on s / tau.

Example:
    >>> from datasets import Dataset
    >>> pool = Dataset.from_dict({"id": [f"r{i}" for i in range(10)], "necessity": [float(i) for i in range(10)]})
    >>> sub, manifest = nbgs(pool, n=4, k=5, tau=0.0, seed=0)
    >>> sorted(sub["id"]), manifest["quotas"]
    (['r3', 'r4', 'r8', 'r9'], [2, 2])
"""

from __future__ import annotations

import math
import numpy as np
from datasets import Dataset

from ..errors import ConfigError
from ..results import Selection
from .common import finish, order_by, score_array, size


def default_k(pool_size: int) -> int:
    """Group size: the paper's k = 50k, scaled as M / 13 for smaller pools (docs/methods.md).

    The paper uses k = 50k on LLaVA-665K (about M / 13); for pools of fewer than
    650k rows we keep that ratio so the number of groups stays about 13.
    """
    return max(1, min(50_000, math.ceil(pool_size / 13)))


def default_seed_size(budget: int) -> int:
    """Seed size n1 for a budget m: 15% of m, the paper's ratio scaled to small pools (docs/methods.md)."""
    return max(1, round(0.15 * budget))


PAPER_PRESET = {"n_seed": 100_000, "k": 50_000}
"""The paper's n1 = 100k seed rows and k = 50k group size (LLaVA-665K): ``mllm_selector(..., preset="paper")``."""
PRESETS = {"paper": PAPER_PRESET}


def preset_values(preset: str | None, *, n_seed: int | None, k: int | None) -> tuple[int | None, int | None]:
    """``(n_seed, k)`` with the values of ``preset`` (a key of :data:`PRESETS`) filled in where they are None."""
    if preset is None:
        return n_seed, k
    if preset not in PRESETS:
        raise ConfigError(f"preset={preset!r} must be one of {sorted(PRESETS)}")
    values = PRESETS[preset]
    return (values["n_seed"] if n_seed is None else n_seed, values["k"] if k is None else k)


def largest_remainder(total: int, sizes: np.ndarray) -> np.ndarray:
    """Split ``total`` over groups in proportion to ``sizes``; quotas sum to exactly ``total``.

    Ties in the fractional part go to the earlier group (higher necessity).
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    raw = total * sizes / sizes.sum()
    quota = np.floor(raw).astype(np.int64)
    short = total - int(quota.sum())
    frac = raw - quota
    order = np.lexsort((np.arange(len(sizes)), -frac))  # largest fraction first, then group index
    quota[order[:short]] += 1
    return np.minimum(quota, sizes)


def equal_quotas(total: int, sizes: np.ndarray) -> np.ndarray:
    """Split ``total`` equally over groups (n2 / N each, the paper's literal reading); quotas sum to ``total``.

    A group smaller than its equal share gives all its rows, and what it lacks goes to the
    other groups, again in equal shares (repeated until every share fits). The rows left by
    integer division go one each to the earliest groups (higher necessity), the largest
    remainder rule with equal fractions. ``total`` must not exceed ``sizes.sum()``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    short = np.zeros(len(sizes), dtype=bool)  # groups that give all their rows
    while True:
        active = ~short
        if not active.any():
            break
        share = (total - sizes[short].sum()) / active.sum()
        newly = active & (sizes < share)
        if not newly.any():
            break
        short |= newly
    quota = np.where(short, sizes, 0)
    active = np.flatnonzero(~short)
    if len(active):
        left = int(total - quota.sum())
        quota[active] = left // len(active)
        quota[active[: left % len(active)]] += 1
    return quota


QUOTAS = {"proportional": largest_remainder, "equal": equal_quotas}


def group_draw(scores: np.ndarray, sizes: np.ndarray, quotas: np.ndarray, *, tau: float, rng: np.random.Generator) -> np.ndarray:
    """Positions drawn: per group, ``quotas[g]`` rows without replacement, p ∝ exp(s / tau).

    ``scores`` must be in descending order with ties by id; the groups are consecutive
    blocks of ``sizes[g]`` positions of that order.
    Gumbel-top-k: adding Gumbel(0, 1) noise to s / tau and keeping the top ``quota``
    keys samples exactly from successive softmax draws without replacement. ``tau == 0``
    is the limit: the top ``quota`` scores. ``tau == inf`` is uniform sampling.

    >>> group_draw(np.array([3.0, 2.0, 1.0, 0.0]), np.array([2, 2]), np.array([1, 1]), tau=0.0, rng=None).tolist()
    [0, 2]
    """
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    if tau == 0:
        # Rows come sorted by (score desc, id asc): the first ``quota`` positions of a group
        # are its top scores with ties already broken by id.
        picked = [np.arange(lo, lo + q) for lo, q in zip(bounds[:-1].tolist(), quotas.tolist()) if q]
        return np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    keys = rng.gumbel(size=len(scores))
    if not math.isinf(tau):
        keys += scores / tau  # a + b == b + a in IEEE arithmetic: the same keys as s / tau + g
    if len(quotas) <= 10_000:
        # Few groups (the usual case): partial sort inside each contiguous group, O(M).
        picked = []
        for lo, hi, q in zip(bounds[:-1].tolist(), bounds[1:].tolist(), quotas.tolist()):
            if q:
                part = np.argpartition(-keys[lo:hi], q - 1)[:q] if q < hi - lo else np.arange(hi - lo)
                picked.append(lo + part)
        return np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    # Many tiny groups: sort by group, then key descending; rank within group decides.
    groups = np.repeat(np.arange(len(sizes)), sizes)
    order = np.lexsort((-keys, groups))
    starts = np.searchsorted(groups[order], np.arange(len(quotas)))
    rank = np.arange(len(order)) - starts[groups[order]]
    return order[rank < quotas[groups[order]]]


def descending_order(scores: np.ndarray) -> np.ndarray:
    """Positions of ``scores`` from highest to lowest, equal scores in position order.

    The same as ``np.argsort(-scores, kind="stable")``, about twice as fast: each score
    becomes an unsigned key that sorts like the float (sign bit flipped, or every bit for a
    negative), its low bits replaced by the position; one plain sort of those integers does
    the rest, and only the rare runs of scores that agree in their remaining high bits are
    sorted again by the full key.

    >>> descending_order(np.array([0.5, -1.0, 2.0, 0.5])).tolist()
    [2, 0, 3, 1]
    """
    m = len(scores)
    bits = np.uint64(max(1, (m - 1).bit_length()))
    raw = np.ascontiguousarray(scores, dtype=np.float64).view(np.uint64)
    # In place, to touch the 8 bytes per row as few times as possible: key = raw ^ flip, where
    # flip is every bit but the sign for a positive score and the sign bit alone for a negative.
    key = raw >> np.uint64(63)
    key *= np.uint64(0xFFFF_FFFF_FFFF_FFFF)
    key |= np.uint64(1 << 63)
    np.invert(key, out=key)
    np.bitwise_xor(key, raw, out=key)  # sorts ascending as the score descending
    packed = key >> bits
    packed <<= bits
    packed |= np.arange(m, dtype=np.uint64)
    packed.sort()
    high = packed >> bits
    same = high[1:] == high[:-1]
    del high
    order = np.bitwise_and(packed, (np.uint64(1) << bits) - np.uint64(1), out=packed).view(np.int64)
    if same.any():  # runs of equal high bits: put them in order of the full key
        pos = np.flatnonzero(np.concatenate((same, [False])) | np.concatenate(([False], same)))
        starts = np.ones(len(pos), dtype=bool)
        starts[1:] = ~same[pos[1:] - 1]
        sub = order[pos]
        order[pos] = sub[np.lexsort((key[sub], np.cumsum(starts)))]
    return order


def descending(ds: Dataset, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(order, sorted scores)``: rows by ``column`` descending, ties by ``id`` ascending.

    The same order as :func:`~hf_vitcurate.select.common.order_by`, with one read of the
    column and :func:`descending_order`; only tied scores need Arrow's sort by (score, id).
    """
    scores = score_array(ds, column)
    order = descending_order(scores)
    ranked = scores[order]
    if len(ranked) > 1 and np.any(ranked[1:] == ranked[:-1]):
        order = order_by(ds, column, descending=True)
        ranked = scores[order]
    return order, ranked


def _standardize(scores: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    count = np.bincount(groups, minlength=n_groups)
    mean = np.bincount(groups, weights=scores, minlength=n_groups) / count
    var = np.bincount(groups, weights=(scores - mean[groups]) ** 2, minlength=n_groups) / count
    std = np.sqrt(var)
    std[std == 0] = 1.0  # a constant group: all z-scores 0, i.e. uniform draw
    return (scores - mean[groups]) / std[groups]


def nbgs(
    ds: Dataset,
    *,
    n: int | None = None,
    fraction: float | None = None,
    k: int | None = None,
    tau: float = 1.0,
    seed: int = 0,
    standardize: bool = False,
    score_column: str = "necessity",
    quotas: str = "proportional",
) -> Selection:
    """Draw ``n`` rows (the paper's n2), or a ``fraction`` of the pool, by NBGS.

    ``k`` defaults to :func:`default_k`. ``tau = 1`` on raw (summed) losses is the
    paper's setting and is near top-quota per group; ``standardize=True`` z-scores the
    scores inside each group first so ``tau`` acts on a common scale. Returns the
    selected rows (in pool order) and a manifest with ids, quotas and parameters.
    ``quotas="proportional"`` (default) sizes each group's quota by its rows;
    ``quotas="equal"`` gives each group n / N (the paper's literal reading), a group short
    of its share giving its shortfall to the others (:func:`equal_quotas`).
    """
    if quotas not in QUOTAS:
        raise ConfigError(f"quotas={quotas!r} must be one of {sorted(QUOTAS)}")
    m = len(ds)
    n_select = size(m, n=n, fraction=fraction)
    k = default_k(m) if k is None else int(k)
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if not tau >= 0:
        raise ConfigError(f"tau must be >= 0, got {tau}")
    order, scores = descending(ds, score_column)
    n_groups = math.ceil(m / k) if m else 0
    sizes = np.full(n_groups, k, dtype=np.int64)
    if n_groups:
        sizes[-1] = m - k * (n_groups - 1)
    quota = QUOTAS[quotas](n_select, sizes) if m else np.zeros(0, dtype=np.int64)
    if standardize and m:
        scores = _standardize(scores, np.arange(m) // k, n_groups)
    rng = np.random.default_rng(seed)
    drawn = order[group_draw(scores, sizes, quota, tau=tau, rng=rng)] if m else np.zeros(0, dtype=np.int64)
    params = {"n": n_select, "fraction": fraction, "k": k, "tau": tau, "standardize": standardize,
              "score_column": score_column, "quotas": quotas}
    return finish(ds, drawn, "nbgs", params=params, seed=seed, extra={"n_groups": n_groups, "quotas": quota.tolist()})
