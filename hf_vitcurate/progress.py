"""Progress bars for long steps, silenced by ``vitcurate -q`` (``HF_VITCURATE_QUIET=1``).

Example:
    >>> for _ in progress(range(3), desc="demo", enabled=False):
    ...     pass
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any


def quiet() -> bool:
    """True when the user asked for no progress output (``vitcurate -q`` sets ``HF_VITCURATE_QUIET=1``)."""
    return os.environ.get("HF_VITCURATE_QUIET", "") not in ("", "0")


def progress(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any):
    """A ``tqdm`` bar over ``iterable`` (or with ``total=``), off when ``enabled`` is false or quiet."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled or quiet(), **kwargs)
