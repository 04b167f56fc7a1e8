"""The two result shapes every selection and every kept/rejected split returns.

A selection returns :class:`Selection` (unpacks as ``(dataset, manifest)``); a split of a
dataset into the rows kept and the rows set aside with a ``reject_reason`` returns
:class:`Split` (unpacks as ``(kept, rejected)``). Both are NamedTuples, so
``sub, manifest = nbgs(...)`` and ``kept, rejected = validate(...)`` keep working, and
``result.dataset`` / ``result.kept`` read better in longer code.

Drivers that also produce other things (a trained seed model, a scored pool, a DQ table)
return a subclass of :class:`Selection` that carries them as attributes; it still unpacks
as ``(dataset, manifest)``.

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a", "b"]})
    >>> sel = Selection(ds.select([1]), {"method": "demo", "n_selected": 1})
    >>> sub, manifest = sel
    >>> list(sub["id"]), sel.manifest["n_selected"]
    (['b'], 1)
    >>> kept, rejected = Split(ds.select([0]), ds.select([1]))
    >>> len(kept) + len(rejected)
    2
"""

from __future__ import annotations

from typing import Any, NamedTuple

from datasets import Dataset


class Selection(NamedTuple):
    """A selection: the chosen rows and the manifest (method, params, seed, ids, ids_sha256, ...)."""

    dataset: Dataset
    manifest: dict[str, Any]


class Split(NamedTuple):
    """A kept/rejected split: ``len(kept) + len(rejected)`` equals the rows in; rejected rows carry ``reject_reason``."""

    kept: Dataset
    rejected: Dataset


class DriverSelection(Selection):
    """A :class:`Selection` from a driver that trains or scores, with what it made as attributes.

    Unpacks as ``(dataset, manifest)``; ``extras`` become attributes (``result.f_seed``,
    ``result.scored``, ``result.dq``), so nothing a driver computed is lost.

    Example:
        >>> from datasets import Dataset
        >>> r = DriverSelection.of(Dataset.from_dict({"id": ["a"]}), {"method": "x"}, f_seed="runs/f_seed")
        >>> sub, manifest = r
        >>> r.f_seed
        'runs/f_seed'
    """

    @classmethod
    def of(cls, dataset: Dataset, manifest: dict[str, Any], **extras: Any) -> "DriverSelection":
        result = cls(dataset, manifest)
        for name, value in extras.items():
            object.__setattr__(result, name, value)
        return result
