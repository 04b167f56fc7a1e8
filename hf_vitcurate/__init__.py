"""hf_vitcurate: curate visual instruction tuning data on the Hugging Face stack.

The top level re-exports the entry points a user needs first; every stage and
selection lives in its own module (see README.md for the tour).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import FormatError, MissingExtraError, ValidationError, VitCurateError
from .schema import FEATURES, validate


# Lazy, so that `import hf_vitcurate` stays cheap, yet the real functions (and their
# signatures) are what a user gets.
_LAZY = {"load_vit": "formats", "explode_turns": "formats", "save_vit": "formats", "Selection": "results", "Split": "results",
         "curate": "curation"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "FEATURES",
    "FormatError",
    "MissingExtraError",
    "ValidationError",
    "Selection",
    "Split",
    "VitCurateError",
    "curate",
    "explode_turns",
    "load_vit",
    "save_vit",
    "validate",
]
