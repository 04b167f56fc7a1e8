"""Progress output for long steps, silenced by ``vitcurate -q`` (``HF_VITCURATE_QUIET=1``).

:func:`progress` is a bar over an iterable; :func:`say` a printer of one line per stage.

Example:
    >>> for _ in progress(range(3), desc="demo", enabled=False):
    ...     pass
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Callable


def quiet() -> bool:
    """True when the user asked for no progress output (``vitcurate -q`` sets ``HF_VITCURATE_QUIET=1``)."""
    return os.environ.get("HF_VITCURATE_QUIET", "") not in ("", "0")


def progress(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any):
    """A ``tqdm`` bar over ``iterable`` (or with ``total=``), off when ``enabled`` is false or quiet."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled or quiet(), **kwargs)


def say(prefix: str) -> Callable[[str], None]:
    """A printer of one progress line per stage, ``[prefix] msg``, silent under ``vitcurate -q``.

    What ``vitcurate curate`` and ``vitcurate demo`` print while a recipe runs.

    >>> say("vitcurate demo")("validate: 12 rows")
    [vitcurate demo] validate: 12 rows
    """

    def _say(msg: str) -> None:
        if not quiet():  # vitcurate -q: the closing summary only
            print(f"[{prefix}] {msg}", flush=True)

    return _say
