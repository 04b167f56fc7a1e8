"""The MMInstruct taxonomy the engine uses: 24 domains, 4 instruction types, caption.

Defined in :mod:`hf_vitcurate.formats.mminstruct_taxonomy`, below both the engine and
the tagging stage (:func:`hf_vitcurate.stages.taxonomy`), so that neither imports the
other; this module gives the engine's modules and users the same names.

Example:
    >>> tax = load_taxonomy()
    >>> len(tax.domains), tax.types
    (24, ('judgement', 'multiple_choice', 'short_vqa', 'long_vqa'))
    >>> tax.domain("Socli Relation").caption_requirement
    'Try to identify the relationship between the people in the image.'
"""

from __future__ import annotations

from ..formats.mminstruct_taxonomy import (
    CAPTION,
    GROUPS,
    INSTRUCTION_TYPES,
    MULTI_ROUND,
    TYPE_SUFFIX,
    TYPES,
    TYPO_FIXES,
    Domain,
    Taxonomy,
    as_taxonomy,
    default_path,
    domain_key,
    instruction_type,
    load_taxonomy,
)

__all__ = [
    "CAPTION",
    "GROUPS",
    "INSTRUCTION_TYPES",
    "MULTI_ROUND",
    "TYPES",
    "TYPE_SUFFIX",
    "TYPO_FIXES",
    "Domain",
    "Taxonomy",
    "as_taxonomy",
    "default_path",
    "domain_key",
    "instruction_type",
    "load_taxonomy",
]
