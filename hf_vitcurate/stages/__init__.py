"""Score stages: each is ``stage(ds, *, ...) -> Dataset``, adds columns, never edits them, and records provenance.

One file per stage: ``necessity`` (MLLM-Selector), ``generate``/``mq`` (REVO-LION), ``concepts``/``yes_no``/``cleanup``
(SVIT), ``taxonomy`` (MMInstruct domains and instruction types). :func:`reject` splits the rows a flag column marks
off as a :class:`~hf_vitcurate.results.Split` (the one kept/rejected form). Model stages (``necessity``,
``generate``) take ``model``, ``work_dir``, ``restart``, ``batch_size`` (rows per forward pass) and ``chunk_size``;
the pure-Arrow stages take ``map_batch_size``. ``image_embeddings``/``phrase_embeddings``, ``image_duplicates`` and
``near_duplicates`` (rows with the same images and nearly the same text) serve MMInstruct's image collection and the
de-duplication every pool needs; the two duplicate stages return a ``Split``.

Example:
    >>> from datasets import Dataset
    >>> from hf_vitcurate import stages
    >>> ds = Dataset.from_dict({"conversations": [[{"from": "human", "value": "Q"}, {"from": "gpt", "value": "Yes."}]]})
    >>> stages.yes_no(ds)["yes_no"][:]
    ['yes']
"""

from .cleanup import DEFAULT_LEAK_PHRASES, leakage, qa_count
from .concepts import (
    SVIT_CONCEPTS,
    SVIT_CONCEPTS_LITERAL,
    ConceptMatcher,
    concepts,
    load_concept_sets,
)
from .generate import generate, release_model
from .image_dedup import image_duplicates
from .image_embeddings import image_embeddings, phrase_embeddings
from .near_duplicates import near_duplicates
from .mq import mq
from .necessity import necessity
from .reject import reject
from .taxonomy import KeywordModel, tagging_accuracy, taxonomy, type_of_pair
from .yes_no import yes_no

__all__ = [
    "DEFAULT_LEAK_PHRASES",
    "SVIT_CONCEPTS",
    "SVIT_CONCEPTS_LITERAL",
    "ConceptMatcher",
    "KeywordModel",
    "concepts",
    "generate",
    "image_duplicates",
    "image_embeddings",
    "leakage",
    "load_concept_sets",
    "mq",
    "near_duplicates",
    "necessity",
    "phrase_embeddings",
    "qa_count",
    "reject",
    "release_model",
    "tagging_accuracy",
    "taxonomy",
    "yes_no",
]
