"""ROUGE-L per sample, exactly as ``pycocoevalcap``'s ``Rouge`` scorer (LCS F-measure, β = 1.2).

For a candidate c and references r_1..r_k (all token lists)::

    P = max_j LCS(c, r_j) / |c|,   R = max_j LCS(c, r_j) / |r_j|     (maxima taken separately)
    ROUGE-L = (1 + β²) P R / (R + β² P)   if P and R > 0, else 0

The LCS length is computed bit-parallel (Allison-Dix / Crochemore et al.): one Python
integer holds a bit per reference token and each candidate token costs a handful of
big-integer operations, instead of ``pycocoevalcap``'s |c|·|r| Python-level table.
``pycocoevalcap`` splits an empty sentence into ``[""]``; that quirk is kept (an empty
candidate scores 1 against an empty reference and 0 otherwise) so values agree everywhere.

Example:
    >>> round(rouge_l([1, 2, 3, 4], [[1, 3, 4, 5, 6]]), 6)   # LCS 3, P = 3/4, R = 3/5
    0.653571
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
BETA = 1.2
_EMPTY = (-1,)  # pycocoevalcap's "".split(" ") == [""]: one token equal only to itself


def lcs_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common subsequence of two token-id sequences (bit-parallel).

    >>> lcs_length([1, 2, 3, 2], [2, 3, 2, 1])
    3
    """
    if len(b) > len(a):
        a, b = b, a  # bits over the shorter sequence: smaller integers
    masks: dict[int, int] = {}
    bit = 1
    for t in b:
        masks[t] = masks.get(t, 0) | bit
        bit <<= 1
    full = bit - 1
    v = full
    get = masks.get
    for t in a:
        m = get(t)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def rouge_l(candidate: Sequence[int], references: Sequence[Sequence[int]], beta: float = BETA) -> float:
    """ROUGE-L of one candidate against its references (token ids)."""
    cand = candidate if len(candidate) else _EMPTY
    prec_max = rec_max = 0.0
    for ref in references:
        ref = ref if len(ref) else _EMPTY
        lcs = lcs_length(cand, ref)
        prec_max = max(prec_max, lcs / float(len(cand)))
        rec_max = max(rec_max, lcs / float(len(ref)))
    if prec_max != 0 and rec_max != 0:
        return ((1 + beta**2) * prec_max * rec_max) / float(rec_max + beta**2 * prec_max)
    return 0.0


def rouge_l_scores(
    candidates: Sequence[Sequence[int]], references: Sequence[Sequence[Sequence[int]]], *, beta: float = BETA
) -> np.ndarray:
    """ROUGE-L of every sample, shape (N,)."""
    if len(references) != len(candidates):
        raise ConfigError(f"{len(candidates)} candidates but {len(references)} reference lists")
    return np.fromiter((rouge_l(c, r, beta) for c, r in zip(candidates, references)), dtype=np.float64,
                       count=len(candidates))
