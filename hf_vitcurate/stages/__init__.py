"""Score stages: each adds columns to a canonical dataset and records provenance (see README).

One file per stage: ``necessity`` (MLLM-Selector), ``generate``/``mq`` (REVO-LION), ``concepts``/``yes_no``/``cleanup`` (SVIT),
``taxonomy`` (MMInstruct domains and instruction types).
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
from .mq import mq
from .necessity import necessity, reject_flagged
from .taxonomy import KeywordModel, tagging_accuracy, taxonomy, type_of_pair
from .yes_no import yes_no
