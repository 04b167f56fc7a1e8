"""hf_vitcurate: curate visual instruction tuning data on the Hugging Face stack.

The top level re-exports the entry points a user needs first; every stage and
selection lives in its own module (see README.md for the tour).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import FormatError, MissingExtraError, ValidationError, VitCurateError
from .schema import FEATURES, validate


def load_vit(*args, **kwargs):
    """Load a VIT dataset in any supported format (see :func:`hf_vitcurate.formats.load_vit`)."""
    from .formats import load_vit as _load_vit

    return _load_vit(*args, **kwargs)


def explode_turns(*args, **kwargs):
    """Split multi-turn rows into single-turn rows (see :func:`hf_vitcurate.formats.explode_turns`)."""
    from .formats import explode_turns as _explode_turns

    return _explode_turns(*args, **kwargs)


__all__ = [
    "__version__",
    "FEATURES",
    "FormatError",
    "MissingExtraError",
    "ValidationError",
    "VitCurateError",
    "explode_turns",
    "load_vit",
    "validate",
]
