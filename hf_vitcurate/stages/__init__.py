"""stages (see README)."""

from .cleanup import DEFAULT_LEAK_PHRASES, leakage, qa_count
from .concepts import SVIT_CONCEPTS, SVIT_CONCEPTS_LITERAL, ConceptMatcher, concepts, load_concept_sets
from .yes_no import yes_no
