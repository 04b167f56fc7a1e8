"""Lazy re-exports for packages whose modules import heavy libraries (torch, transformers).

Example (in a package ``__init__.py``)::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"train": "training"}, globals())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable, list[str]]:
    """``(__getattr__, __dir__, __all__)`` importing ``name`` from ``package.exports[name]`` on first use."""
    names = sorted(exports)

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
            namespace[name] = value  # cached: the next access is a plain attribute
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__, names
