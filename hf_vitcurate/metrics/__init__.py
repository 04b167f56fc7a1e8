"""Caption metrics and MQ (REVO-LION, arXiv:2310.06594; docs/methods.md): BLEU-1..4, METEOR, ROUGE-L on COCO-style tokens.

- :func:`mq_scores` - per-sample ``bleu_1``..``bleu_4``, ``meteor``, ``rouge_l``, ``mq``;
- :func:`mq_dataset` - MQ^D of a set (``reduce="mean"`` or ``"sum"``);
- :func:`coco_tokenize` - the tokens every metric reads;
- :class:`Scorer` - the same with your own tokenizer / WordNet, caches kept per object;
- :func:`mq_metric_path` - the ``evaluate`` module: ``evaluate.load(mq_metric_path())``;
- :func:`load_wordnet` - WordNet for METEOR, found automatically (Debian package or nltk data).

Example:
    >>> from hf_vitcurate.metrics import mq_scores
    >>> mq_scores(["a red circle"], ["a red circle on the left"])["rouge_l"]   # doctest: +SKIP
    [0.6288...]
"""

from __future__ import annotations

import os

from .bleu import bleu_scores, corpus_bleu
from .meteor import Meteor
from .mq import COMPONENTS, VARIANTS, Scorer, combine, default_scorer, mq_dataset, mq_scores
from .rouge import lcs_length, rouge_l_scores
from .tokens import Vocabulary, coco_tokenize
from .wordnet import WordNetMissingError, find_wordnet, load_wordnet


def mq_metric_path() -> str:
    """Folder of the ``evaluate`` metric module computing MQ offline (pass it to ``evaluate.load``)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "mq_metric")


__all__ = [
    "COMPONENTS",
    "VARIANTS",
    "Meteor",
    "Scorer",
    "Vocabulary",
    "WordNetMissingError",
    "bleu_scores",
    "combine",
    "corpus_bleu",
    "default_scorer",
    "find_wordnet",
    "lcs_length",
    "load_wordnet",
    "mq_dataset",
    "mq_metric_path",
    "mq_scores",
    "rouge_l_scores",
    "coco_tokenize",
]
