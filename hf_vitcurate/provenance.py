"""Provenance: the record of every step that made a dataset.

Each converter, stage and selection appends one :class:`Step` (rows in/out, rejected
rows by reason, parameters, model, seed, package version). The list travels with the
dataset inside ``Dataset.info.description`` as JSON, which ``datasets`` keeps through
``map``/``filter``/``select``/``save_to_disk``, and ends up in the card and in the
``curation.json`` manifest. A user description already present is kept alongside.

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a", "b"]})
    >>> ds = record(ds, "demo", kind="stage", rows_in=2, params={"k": 1})
    >>> [s["name"] for s in steps(ds)]
    ['demo']
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from datasets import Dataset, DatasetDict

_KEY = "hf_vitcurate"


@dataclass
class Step:
    """One step of the curation: what ran, on how many rows, with which settings."""

    name: str
    kind: str  # "convert" | "validate" | "stage" | "select" | "train" | "publish" | ...
    rows_in: int | None = None
    rows_out: int | None = None
    rejected: dict[str, int] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    seed: int | None = None
    version: str = ""
    time: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _envelope(ds: Dataset) -> dict[str, Any]:
    text = ds.info.description or ""
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and _KEY in data:
            return data
    return {"description": text, _KEY: {"steps": []}}


def steps(ds: Dataset) -> list[dict[str, Any]]:
    """The provenance steps recorded on ``ds``, oldest first (plain dicts, JSON-ready)."""
    return list(_envelope(ds)[_KEY]["steps"])


def last_step(ds: Dataset, name: str | None = None) -> dict[str, Any] | None:
    """The newest step recorded on ``ds`` (named ``name`` if given), or ``None`` if there is none.

    >>> ds = record(Dataset.from_dict({"id": ["a"]}), "collect", kind="stage", params={"k": 4})
    >>> ds = record(ds, "pick", kind="select")
    >>> last_step(ds, "collect")["params"], last_step(ds)["name"], last_step(ds, "train")
    ({'k': 4}, 'pick', None)
    """
    found = [s for s in steps(ds) if name is None or s.get("name") == name]
    return found[-1] if found else None


def with_steps(ds: Dataset, step_list: list[dict[str, Any]]) -> Dataset:
    """Return a shallow copy of ``ds`` (same Arrow data) carrying ``step_list``."""
    env = _envelope(ds)
    env[_KEY] = {"steps": [_jsonable(s) for s in step_list]}
    out = copy.copy(ds)
    # The info object is shared between copies: give the copy its own.
    out._info = ds.info.copy()
    out._info.description = json.dumps(env, sort_keys=True)
    return out


def record(
    ds: Dataset,
    name: str,
    *,
    kind: str,
    rows_in: int | None = None,
    rows_out: int | None = None,
    rejected: dict[str, int] | None = None,
    params: dict[str, Any] | None = None,
    model: str | None = None,
    seed: int | None = None,
    parent: Dataset | None = None,
) -> Dataset:
    """Append a step to the provenance of ``parent`` (default ``ds``) and attach it to ``ds``.

    ``rows_out`` defaults to ``len(ds)``. Returns a new ``Dataset`` object sharing the
    same Arrow data; the input is not modified.
    """
    from . import __version__

    history = steps(parent if parent is not None else ds)
    step = Step(
        name=name,
        kind=kind,
        rows_in=rows_in,
        rows_out=len(ds) if rows_out is None else rows_out,
        rejected=dict(rejected or {}),
        params=dict(params or {}),
        model=model,
        seed=seed,
        version=__version__,
        time=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return with_steps(ds, history + [step.to_dict()])


def merge(parents: list[Dataset]) -> list[dict[str, Any]]:
    """Provenance of several inputs combined (e.g. a pool concatenated from sources).

    Steps are kept in input order, each tagged with the index of its input so a card
    can tell which source went through which steps.
    """
    merged: list[dict[str, Any]] = []
    for i, parent in enumerate(parents):
        for s in steps(parent):
            merged.append({**s, "input": s.get("input", i)})
    return merged


def to_json(obj: Dataset | DatasetDict, indent: int = 2) -> str:
    """Serialise the provenance of a ``Dataset`` or of each split of a ``DatasetDict``."""
    if isinstance(obj, DatasetDict):
        return json.dumps({k: steps(v) for k, v in obj.items()}, indent=indent, sort_keys=True)
    return json.dumps(steps(obj), indent=indent, sort_keys=True)


PARQUET_KEY = b"hf_vitcurate_provenance"


def parquet_metadata(ds: Dataset) -> dict[bytes, bytes]:
    """The steps of ``ds`` as a Parquet key-value entry (``datasets`` keeps only the features there).

    >>> ds = record(Dataset.from_dict({"id": ["a"]}), "demo", kind="stage", rows_in=1)
    >>> [s["name"] for s in steps_from_parquet_metadata(parquet_metadata(ds))]
    ['demo']
    """
    return {PARQUET_KEY: json.dumps(steps(ds), sort_keys=True).encode()}


def steps_from_parquet_metadata(metadata: dict[bytes, bytes] | None) -> list[dict[str, Any]]:
    """Steps stored by :func:`parquet_metadata` in a Parquet file's key-value metadata (``[]`` if none)."""
    raw = (metadata or {}).get(PARQUET_KEY)
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []  # a damaged entry is no provenance, not a failed load
    return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []


def _jsonable(value: Any) -> Any:
    """Make parameters JSON-safe (paths, numpy scalars, tuples) without losing meaning."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return str(value)
