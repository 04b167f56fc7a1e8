"""Meta Quality (MQ): the mean of caption metrics of an answer against its reference (REVO-LION, arXiv:2310.06594, Eq. 1, 5).

    MQ = mean(B@1, B@2, B@3, B@4, METEOR, ROUGE-L)      variant "C1" (default, Eq. 1)
    C2 = mean(B@4, METEOR, ROUGE-L);  C3 = mean(METEOR, ROUGE-L)      (Eq. 5)

All metrics read the same tokens (:func:`~.tokens.coco_tokenize`). BLEU and ROUGE-L are
``pycocoevalcap``'s per-sample scores, METEOR is nltk's ``meteor_score``; values agree
with a per-sample composition of those scorers to 1e-9 (tests/test_metrics.py) at a
fraction of the cost (benchmarks/bench_metrics.py). A reference is a string or a list
of strings (BLEU clips against all of them, METEOR keeps the best, ROUGE-L takes the
best precision and best recall, as COCO).

Identical (answer, references) pairs are scored once per call (short answers repeat a
lot). :func:`mq_scores` uses one process-wide :class:`Scorer`, whose vocabulary and
stem/synonym caches grow with the words seen (a few hundred bytes per distinct word).

Dataset level, :func:`mq_dataset` (MQ^D):

- ``reduce="mean"`` (default, as docs/methods.md reads Eq. 1): the mean of the per-sample MQ^S;
- ``reduce="sum"``: the *sum* of the variant's corpus-level scores (corpus BLEU-n from
  summed counts as ``pycocoevalcap`` reports it, mean METEOR, mean ROUGE-L). This is the
  literal reading of Eq. 1 ("mean(B@1 + ... + R)") that gives the paper's Table 6 its
  values above 1 (range 0..6 for C1).

Example:
    >>> s = mq_scores(["a red circle"], ["a red circle on the left"])   # doctest: +SKIP
    >>> sorted(s)                                                       # doctest: +SKIP
    ['bleu_1', 'bleu_2', 'bleu_3', 'bleu_4', 'meteor', 'mq', 'rouge_l']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

import numpy as np

from ..errors import ConfigError, RowError
from .bleu import bleu_counts, bleu_from_counts, corpus_bleu
from .meteor import Meteor
from .rouge import rouge_l_scores
from .tokens import Vocabulary, coco_tokenize

COMPONENTS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l")
VARIANTS = {
    "C1": COMPONENTS,
    "C2": ("bleu_4", "meteor", "rouge_l"),
    "C3": ("meteor", "rouge_l"),
}
REDUCES = ("mean", "sum")
Reference = Union[str, Sequence[str]]
BATCH = 20_000  # samples per numpy pass: bounded memory on pools of millions


def check_variant(variant: str) -> tuple[str, ...]:
    """The components of ``variant`` (``"C1"``, ``"C2"``, ``"C3"``); a clear error otherwise."""
    try:
        return VARIANTS[variant.upper()]
    except (KeyError, AttributeError):
        raise ConfigError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}") from None


def as_reference_list(reference: Reference | None, index: int) -> list[str]:
    """A reference as a non-empty list of strings (a string is one reference)."""
    if isinstance(reference, str):
        return [reference]
    if reference is None:
        raise RowError("references", "no_reference", f"sample {index}: reference is None; give a string or a non-empty list of strings")
    refs = list(reference)
    if not refs or not all(isinstance(r, str) for r in refs):
        raise RowError("references", "bad_reference", f"sample {index}: a reference must be a string or a non-empty list of strings, got {reference!r}")
    return refs


def combine(components: dict[str, np.ndarray], *, variant: str = "C1") -> np.ndarray:
    """MQ from component scores: the mean of the variant's components, in their order."""
    names = check_variant(variant)
    total = np.zeros_like(np.asarray(components[names[0]], dtype=np.float64))
    for name in names:
        total = total + np.asarray(components[name], dtype=np.float64)
    return total / len(names)


class Scorer:
    """Tokenizer, vocabulary and METEOR caches for MQ; reuse one per process (see :func:`default_scorer`).

    ``tokenizer``: text → tokens (default :func:`~.tokens.coco_tokenize`); ``wordnet``,
    ``stemmer``: passed to :class:`~.meteor.Meteor`.
    """

    def __init__(self, *, tokenizer: Callable[[str], list[str]] = coco_tokenize, wordnet=None, stemmer=None) -> None:
        self.tokenizer = tokenizer
        self.vocab = Vocabulary()
        self.meteor = Meteor(self.vocab, wordnet=wordnet, stemmer=stemmer)

    def encode(self, predictions: Sequence[str | None], references: Sequence[Reference]):
        """Token ids of the predictions and of each sample's references."""
        tok, enc = self.tokenizer, self.vocab.encode
        cands = [enc(tok(p or "")) for p in predictions]
        refs = [[enc(tok(r)) for r in as_reference_list(ref, i)] for i, ref in enumerate(references)]
        return cands, refs

    def components(self, predictions: Sequence[str | None], references: Sequence[Reference],
                   *, with_counts: bool = False) -> dict[str, np.ndarray]:
        """The six component scores of every sample (arrays), plus BLEU counts if asked."""
        if len(predictions) != len(references):
            raise ConfigError(f"{len(predictions)} predictions but {len(references)} references; give one reference (or list) per prediction")
        # Identical (answer, references) pairs are scored once: short answers ("Yes", "2",
        # "red") repeat a lot across a pool.
        index: dict[tuple, int] = {}
        inverse = np.empty(len(predictions), dtype=np.int64)
        uniq_p: list[str] = []
        uniq_r: list[list[str]] = []
        for i, (p, r) in enumerate(zip(predictions, references)):
            refs = as_reference_list(r, i)
            key = (p or "", *refs)
            k = index.get(key)
            if k is None:
                k = index[key] = len(uniq_p)
                uniq_p.append(p or "")
                uniq_r.append(refs)
            inverse[i] = k
        out: dict[str, list[np.ndarray]] = {k: [] for k in COMPONENTS}
        counts: list[dict[str, np.ndarray]] = []
        for lo in range(0, len(uniq_p), BATCH):
            cands, refs = self.encode(uniq_p[lo : lo + BATCH], uniq_r[lo : lo + BATCH])
            c = bleu_counts(cands, refs, n=4)
            bleu = bleu_from_counts(c)
            for k in range(4):
                out[f"bleu_{k + 1}"].append(bleu[:, k])
            out["meteor"].append(self.meteor.scores_ids(cands, refs))
            out["rouge_l"].append(rouge_l_scores(cands, refs))
            if with_counts:
                counts.append(c)
        result = {k: (np.concatenate(v) if v else np.zeros(0))[inverse] for k, v in out.items()}
        if with_counts:
            result["_counts"] = {k: (np.concatenate([c[k] for c in counts]) if counts else np.zeros((0, 4)))[inverse]
                                 for k in ("testlen", "reflen", "guess", "correct")}
        return result

    def scores(self, predictions: Sequence[str | None], references: Sequence[Reference],
               *, variant: str = "C1") -> dict[str, list[float]]:
        """Per-sample ``bleu_1``..``bleu_4``, ``meteor``, ``rouge_l`` and ``mq`` as lists of floats."""
        check_variant(variant)
        comps = self.components(predictions, references)
        comps["mq"] = combine(comps, variant=variant)
        return {k: v.tolist() for k, v in comps.items()}

    def dataset(self, predictions: Sequence[str | None], references: Sequence[Reference],
                *, variant: str = "C1", reduce: str = "mean") -> float:
        """MQ^D over a set of samples (see the module docstring for ``reduce``)."""
        names = check_variant(variant)
        if reduce not in REDUCES:
            raise ConfigError(f"reduce must be one of {REDUCES}, got {reduce!r}")
        if not len(predictions):
            raise ConfigError("MQ^D of an empty set is undefined; give at least one prediction")
        comps = self.components(predictions, references, with_counts=reduce == "sum")
        if reduce == "mean":
            return float(np.mean(combine(comps, variant=variant)))
        corpus = dict(zip(("bleu_1", "bleu_2", "bleu_3", "bleu_4"), corpus_bleu(comps["_counts"])))
        corpus["meteor"] = float(np.mean(comps["meteor"]))
        corpus["rouge_l"] = float(np.mean(comps["rouge_l"]))
        return float(sum(corpus[n] for n in names))


_DEFAULT: Scorer | None = None


def default_scorer() -> Scorer:
    """The process-wide :class:`Scorer` (caches grow with the vocabulary seen)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Scorer()
    return _DEFAULT


def mq_scores(
    predictions: Sequence[str | None],
    references: Sequence[Reference],
    *,
    variant: str = "C1",
    scorer: Scorer | None = None,
) -> dict[str, list[float]]:
    """Per-sample caption metrics and MQ (keys ``bleu_1``..``bleu_4``, ``meteor``, ``rouge_l``, ``mq``).

    >>> s = mq_scores(["a red circle"], [["a red circle", "a circle"]], variant="C3")   # doctest: +SKIP
    >>> round(s["meteor"][0], 4), s["rouge_l"][0]                                     # doctest: +SKIP
    (0.9815, 1.0)
    """
    return (scorer or default_scorer()).scores(predictions, references, variant=variant)


def mq_dataset(
    predictions: Sequence[str | None],
    references: Sequence[Reference],
    *,
    variant: str = "C1",
    reduce: str = "mean",
    scorer: Scorer | None = None,
) -> float:
    """MQ^D of a set of answers: ``reduce="mean"`` of MQ^S (default) or ``"sum"`` of corpus scores."""
    return (scorer or default_scorer()).dataset(predictions, references, variant=variant, reduce=reduce)
