"""BLEU-1..4 per sample, exactly as ``pycocoevalcap``'s ``Bleu`` scorer, with n-grams counted in numpy.

For a candidate of c tokens and its references (``option="closest"``, as ``Bleu`` uses)::

    r        = the reference length closest to c (ties: the shorter)
    guess_n  = max(0, c - n + 1)
    correct_n = Σ_ngram min(count in candidate, max count in any one reference)
    B@n      = Π_{k≤n} ((correct_k + 1e-15) / (guess_k + 1e-9)) ** (1/n)
               × exp(1 - 1/ratio) if ratio = (c + 1e-15) / (r + 1e-9) < 1

The per-sample loop of ``pycocoevalcap`` (Python dicts of n-gram tuples) is replaced by
whole-batch integer work: every n-gram of every sentence gets an integer key (an n-gram
is the pair (its (n-1)-gram key, its last token), ranked with ``np.unique``), counts are
``np.unique`` over (sample, key), the reference maximum is a sort, clipping is a
``searchsorted``. :func:`corpus_bleu` is ``pycocoevalcap``'s corpus-level score (the
summed counts), used for ``reduce="sum"`` in :func:`hf_vitcurate.metrics.mq_dataset`.

Example:
    >>> s = bleu_scores([[0, 1, 2, 3]], [[[0, 1, 2, 3]]])
    >>> [round(float(x), 6) for x in s[0]]
    [1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

from ..errors import ConfigError
SMALL, TINY = 1e-9, 1e-15  # pycocoevalcap's constants: 0/0 is not an error, guess 0 still scores ~0


def _flatten(sentences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated token ids and sentence lengths."""
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    total = int(lengths.sum())
    tokens = np.fromiter(chain.from_iterable(sentences), dtype=np.int64, count=total)
    return tokens, lengths


def _ngram_keys(tokens: np.ndarray, lengths: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For k = 1..n: (start positions of the k-grams inside their sentence, their integer keys)."""
    sent_end = np.repeat(np.cumsum(lengths), lengths)  # end offset of each token's sentence
    starts = np.arange(len(tokens))
    vocab = int(tokens.max()) + 1 if len(tokens) else 1
    room = max(vocab, len(lengths))  # what a key is multiplied by next: here, or in bleu_counts' (sentence, key) pairs
    out = []
    key, bound = tokens, vocab  # every key < bound
    for k in range(1, n + 1):
        if k > 1:
            # k-gram at i = ((k-1)-gram at i, token at i+k-1), exact as long as it fits in int64;
            # re-ranked (a sort) only when the next product could overflow.
            key = key[:-1] * vocab + tokens[k - 1 :]
            bound *= vocab
            if bound * room >= 2**62:
                _, key = np.unique(key, return_inverse=True)
                key = key.astype(np.int64)
                bound = int(key.max()) + 1 if len(key) else 1
        m = len(key)
        valid = starts[:m] + k <= sent_end[:m]
        out.append((np.flatnonzero(valid), key[valid]))
    return out


def bleu_counts(
    candidates: Sequence[Sequence[int]], references: Sequence[Sequence[Sequence[int]]], *, n: int = 4
) -> dict[str, np.ndarray]:
    """``testlen``, closest ``reflen``, ``guess`` (N, n) and clipped ``correct`` (N, n) of every sample."""
    n_samples = len(candidates)
    if len(references) != n_samples:
        raise ConfigError(f"{n_samples} candidates but {len(references)} reference lists")
    n_refs = np.fromiter((len(r) for r in references), dtype=np.int64, count=n_samples)
    if n_samples and n_refs.min() < 1:
        raise ConfigError(f"sample {int(np.argmin(n_refs))} has no reference")
    flat_refs = [r for refs in references for r in refs]
    tokens, lengths = _flatten(list(candidates) + flat_refs)
    n_sent = len(lengths)
    sent_of_token = np.repeat(np.arange(n_sent), lengths)
    # Sentence -> sample: candidates are samples 0..N-1, then each sample's references.
    sample_of_sent = np.concatenate([np.arange(n_samples), np.repeat(np.arange(n_samples), n_refs)])
    is_ref_sent = np.arange(n_sent) >= n_samples

    testlen = lengths[:n_samples]
    reflens = lengths[n_samples:]
    # Closest reference length, ties to the shorter one: min over (|l - c|, l).
    ref_sample = np.repeat(np.arange(n_samples), n_refs)
    dist = np.abs(reflens - testlen[ref_sample])
    order = np.lexsort((reflens, dist, ref_sample))
    first = np.r_[0, np.cumsum(n_refs)[:-1]] if n_samples else np.zeros(0, np.int64)
    reflen = reflens[order][first] if n_samples else np.zeros(0, np.int64)

    guess = np.maximum(0, testlen[:, None] - np.arange(n)[None, :])
    correct = np.zeros((n_samples, n), dtype=np.int64)
    for k, (pos, key) in enumerate(_ngram_keys(tokens, lengths, n)):
        if not len(key):
            continue
        sent = sent_of_token[pos]
        n_keys = int(key.max()) + 1
        ref = is_ref_sent[sent]
        # Candidate counts per (sample, key).
        cand_uk, cand_count = np.unique(sample_of_sent[sent[~ref]] * n_keys + key[~ref], return_counts=True)
        # Reference counts per (sentence, key), then the max over a sample's references.
        ref_sk, ref_count = np.unique(sent[ref] * n_keys + key[ref], return_counts=True)
        ref_uk = sample_of_sent[ref_sk // n_keys] * n_keys + ref_sk % n_keys
        o = np.lexsort((ref_count, ref_uk))
        ref_uk, ref_count = ref_uk[o], ref_count[o]
        last = np.r_[ref_uk[1:] != ref_uk[:-1], True] if len(ref_uk) else np.zeros(0, bool)
        ref_uk, ref_max = ref_uk[last], ref_count[last]
        # Clip each candidate n-gram count by the reference maximum (0 when absent).
        at = np.searchsorted(ref_uk, cand_uk)
        at_c = np.minimum(at, max(len(ref_uk) - 1, 0))
        hit = (at < len(ref_uk)) & (ref_uk[at_c] == cand_uk) if len(ref_uk) else np.zeros(len(cand_uk), bool)
        clipped = np.where(hit, np.minimum(cand_count, ref_max[at_c] if len(ref_uk) else 0), 0)
        correct[:, k] = np.bincount(cand_uk // n_keys, weights=clipped, minlength=n_samples).astype(np.int64)
    return {"testlen": testlen, "reflen": reflen, "guess": guess, "correct": correct}


def bleu_from_counts(counts: dict[str, np.ndarray]) -> np.ndarray:
    """Per-sample cumulative BLEU-1..n (N, n) from :func:`bleu_counts`, with pycocoevalcap's arithmetic."""
    correct = counts["correct"].astype(np.float64)
    guess = counts["guess"].astype(np.float64)
    n = correct.shape[1]
    out = np.empty_like(correct)
    running = np.ones(len(correct))
    for k in range(n):
        running = running * ((correct[:, k] + TINY) / (guess[:, k] + SMALL))
        out[:, k] = running ** (1.0 / (k + 1))
    ratio = (counts["testlen"] + TINY) / (counts["reflen"] + SMALL)
    short = ratio < 1
    out[short] *= np.exp(1 - 1 / ratio[short])[:, None]
    return out


def bleu_scores(
    candidates: Sequence[Sequence[int]], references: Sequence[Sequence[Sequence[int]]], *, n: int = 4
) -> np.ndarray:
    """Per-sample BLEU-1..n, shape (N, n); inputs are token ids (see :class:`~.tokens.Vocabulary`)."""
    if not len(candidates):
        return np.zeros((0, n))
    return bleu_from_counts(bleu_counts(candidates, references, n=n))


def corpus_bleu(counts: dict[str, np.ndarray]) -> np.ndarray:
    """Corpus-level BLEU-1..n from summed counts, as ``pycocoevalcap`` reports for a whole set."""
    correct = counts["correct"].sum(0).astype(np.float64)
    guess = counts["guess"].sum(0).astype(np.float64)
    out = np.empty(len(correct))
    running = 1.0
    for k in range(len(correct)):
        running *= (correct[k] + TINY) / (guess[k] + SMALL)
        out[k] = running ** (1.0 / (k + 1))
    ratio = (int(counts["testlen"].sum()) + TINY) / (int(counts["reflen"].sum()) + SMALL)
    if ratio < 1:
        out *= np.exp(1 - 1 / ratio)
    return out
