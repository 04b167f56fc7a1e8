"""METEOR per sample, exactly as nltk's ``meteor_score``, with stems and synonyms looked up once per word.

nltk's ``single_meteor_score`` aligns a hypothesis to a reference in three passes over
the words still unmatched, each pass taking hypothesis words from last to first and
giving each the *last* free reference position that matches:

1. exact: the same word;
2. stem: the same Porter stem (nltk's ``PorterStemmer``);
3. synonym: a reference *stem* among the WordNet lemma names (without ``_``) of the
   hypothesis *stem*'s synsets, or the stem itself (nltk passes the stemmed words on);

then ``P = m/|h|``, ``R = m/|r|``, ``Fmean = PR / (αP + (1-α)R)``, ``chunks`` = runs of
matches adjacent in both sentences, ``penalty = γ (chunks/m)^β`` and
``METEOR = (1 - penalty) Fmean`` (α = 0.9, β = 3, γ = 0.5); 0 when nothing matches. With
several references the best score is kept.

nltk spends its time stemming every word of every call (~15 µs a word) and asking
WordNet for the synsets of every unmatched word (morphology, index, and a full parse of
each synset); here each distinct word is stemmed once, each distinct stem's synonym set
is read once per process (lemma names only, :class:`~.wordnet.LemmaNames`), and words
are integers (:class:`~.tokens.Vocabulary`), so the alignment is a few dictionary
operations per word. Identical strings score below 1 (one chunk of m
words: penalty ``0.5 / m**3``; ``1 - 0.5/27 = 0.98148...`` for three words).

Example:
    >>> m = Meteor()                                                       # doctest: +SKIP
    >>> round(m.score(["a", "red", "circle"], [["a", "red", "circle"]]), 6)   # doctest: +SKIP
    0.981481
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from .tokens import Vocabulary

ALPHA, BETA, GAMMA = 0.9, 3.0, 0.5


class Meteor:
    """nltk METEOR over token ids, with per-word caches (one instance per process is enough).

    ``wordnet``: an nltk WordNet reader (default: :func:`~.wordnet.load_wordnet`, found
    automatically); ``stemmer``: an nltk stemmer (default ``PorterStemmer()``, as nltk's
    METEOR). ``vocab``: the token ids the inputs use (shared with BLEU/ROUGE by :class:`~.mq.Scorer`).
    """

    def __init__(self, vocab: Vocabulary | None = None, *, wordnet=None, stemmer=None,
                 alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> None:
        self.vocab = vocab if vocab is not None else Vocabulary()
        self._wordnet = wordnet
        if stemmer is None:
            from nltk.stem.porter import PorterStemmer

            stemmer = PorterStemmer()
        self.stemmer = stemmer
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self._stem: list[int] = []  # word id -> stem id
        self._synonyms: dict[int, frozenset[int]] = {}  # stem id -> ids of its synonyms and itself
        self._lemma_names = None

    @property
    def wordnet(self):
        if self._wordnet is None:  # loaded on first need: ~3 s, and only if a synonym pass runs
            from .wordnet import load_wordnet

            self._wordnet = load_wordnet()
        return self._wordnet

    @property
    def lemma_names(self):
        """word -> lemma names of its synsets (:class:`~.wordnet.LemmaNames` over :attr:`wordnet`)."""
        if self._lemma_names is None:
            from .wordnet import LemmaNames

            self._lemma_names = LemmaNames(self.wordnet)
        return self._lemma_names

    def stems(self, ids: Sequence[int]) -> list[int]:
        """Stem id of each word id (cached in a list indexed by word id; -1 = not stemmed yet)."""
        table = self._stem
        if len(table) < len(self.vocab):
            table.extend([-1] * (len(self.vocab) - len(table)))
        out = [table[i] for i in ids]
        if -1 in out:  # only words never stemmed before (synonyms enter the vocabulary unstemmed)
            words, stem, vid = self.vocab.words, self.stemmer.stem, self.vocab.id
            for k, i in enumerate(ids):
                if out[k] < 0:
                    s = vid(stem(words[i]))
                    if len(table) < len(self.vocab):
                        table.extend([-1] * (len(self.vocab) - len(table)))
                    table[i] = out[k] = s
        return out

    def synonyms(self, stem: int) -> frozenset[int]:
        """Ids of the WordNet lemma names (no ``_``) of the synsets of ``stem``, plus ``stem`` (cached)."""
        syn = self._synonyms.get(stem)
        if syn is None:
            names = self.lemma_names(self.vocab.words[stem])
            syn = frozenset([stem, *(self.vocab.id(n) for n in names if n.find("_") < 0)])
            self._synonyms[stem] = syn
        return syn

    def single(self, hyp: Sequence[int], ref: Sequence[int], hyp_stems: Sequence[int] | None = None,
               ref_stems: Sequence[int] | None = None) -> float:
        """nltk's ``single_meteor_score`` of one hypothesis against one reference (token ids)."""
        nh, nr = len(hyp), len(ref)
        if nh == 0 or nr == 0:
            return 0.0
        match = [-1] * nh  # reference position matched by each hypothesis position
        # 1. exact: hypothesis last to first, each takes the last free equal reference word.
        positions: dict[int, list[int]] = {}
        for j, t in enumerate(ref):
            p = positions.get(t)
            if p is None:
                positions[t] = [j]
            else:
                p.append(j)
        m = 0
        get = positions.get
        for i in range(nh - 1, -1, -1):
            p = get(hyp[i])
            if p:
                match[i] = p.pop()
                m += 1
        if m < nh and m < nr:
            hs = hyp_stems if hyp_stems is not None else self.stems(hyp)
            rs = ref_stems if ref_stems is not None else self.stems(ref)
            # 2. stems, among the words left (the lists above hold the free reference positions).
            free_refs = sorted(j for p in positions.values() for j in p) if m else range(nr)
            positions = {}
            for j in free_refs:
                t = rs[j]
                p = positions.get(t)
                if p is None:
                    positions[t] = [j]
                else:
                    p.append(j)
            get = positions.get
            rest = []
            for i in range(nh - 1, -1, -1):
                if match[i] < 0:
                    p = get(hs[i])
                    if p:
                        match[i] = p.pop()
                        m += 1
                    else:
                        rest.append(i)
            # 3. WordNet synonyms of the hypothesis stem among the reference stems left.
            if rest and m < nr:
                free = {t for t, p in positions.items() if p}
                synonyms, cache = self.synonyms, self._synonyms
                for i in rest:
                    h = hs[i]
                    syns = cache.get(h)
                    if syns is None:
                        syns = synonyms(h)
                    # Set intersection in C: most hypothesis stems have no synonym left in the reference.
                    cand = syns & free
                    if not cand:
                        continue
                    # The last free position among the synonyms (distinct words: no ties).
                    best_word = max(cand, key=lambda t: positions[t][-1]) if len(cand) > 1 else next(iter(cand))
                    p = positions[best_word]
                    match[i] = p.pop()
                    m += 1
                    if not p:
                        free.discard(best_word)
                        if not free:
                            break
        return self._fragmented_fmean(match, m, nh, nr)

    def _fragmented_fmean(self, match: list[int], m: int, nh: int, nr: int) -> float:
        """METEOR from the alignment: the F-mean of ``m`` matches, less the fragmentation penalty of their chunks."""
        if m == 0:
            return 0.0
        # Chunks: runs of matches adjacent in both sentences (matches in hypothesis order).
        chunks = 0
        prev_i = prev_j = -2
        for i in range(nh):
            j = match[i]
            if j >= 0:
                if i != prev_i + 1 or j != prev_j + 1:
                    chunks += 1
                prev_i, prev_j = i, j
        # Same float operations, in the same order, as nltk.
        precision = float(m) / nh
        recall = float(m) / nr
        fmean = (precision * recall) / (self.alpha * precision + (1 - self.alpha) * recall)
        frag_frac = float(chunks) / m
        penalty = self.gamma * frag_frac**self.beta
        return (1 - penalty) * fmean

    def score_ids(self, hyp: Sequence[int], refs: Sequence[Sequence[int]]) -> float:
        """Best :meth:`single` score over the references (nltk's ``meteor_score``)."""
        if not refs:
            raise ConfigError("METEOR needs at least one reference")
        if len(refs) == 1:
            return self.single(hyp, refs[0])
        hs = self.stems(hyp)
        return max(self.single(hyp, r, hs) for r in refs)

    def score(self, hypothesis: Sequence[str], references: Sequence[Sequence[str]]) -> float:
        """METEOR of one tokenized hypothesis against tokenized references."""
        enc = self.vocab.encode
        return self.score_ids(enc(list(hypothesis)), [enc(list(r)) for r in references])

    def scores_ids(self, hyps: Sequence[Sequence[int]], refs: Sequence[Sequence[Sequence[int]]]) -> np.ndarray:
        """METEOR of every sample (token ids), shape (N,)."""
        if len(refs) != len(hyps):
            raise ConfigError(f"{len(hyps)} hypotheses but {len(refs)} reference lists")
        return np.fromiter((self.score_ids(h, r) for h, r in zip(hyps, refs)), dtype=np.float64, count=len(hyps))
