"""MMInstruct-style layout: one config per domain, an ``instruction_type`` column, splits by type on request.

Works on any rows with ``domain`` and ``instruction_type`` columns: the engine's output or
rows tagged by :func:`hf_vitcurate.stages.taxonomy.taxonomy`. The result is what
:func:`hf_vitcurate.hub.publish` takes for several configs.

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a", "b", "c"], "domain": ["ocr", "ocr", "landmark"],
    ...                         "instruction_type": ["judgement", "caption", "judgement"]})
    >>> {k: dict(v.num_rows) for k, v in mminstruct_configs(ds).items()}
    {'landmark': {'train': 1}, 'ocr': {'train': 2}}
    >>> {k: dict(v.num_rows) for k, v in mminstruct_configs(ds, split_by_type=True).items()}
    {'landmark': {'judgement': 1}, 'ocr': {'judgement': 1, 'caption': 1}}
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from datasets import Dataset, DatasetDict

from ..errors import MissingColumnError
from .. import provenance
from ..columns import list_column
from .taxonomy import INSTRUCTION_TYPES


def mminstruct_configs(
    ds: Dataset,
    *,
    split_by_type: bool = False,
    split: str = "train",
    domains: list[str] | None = None,
    drop_columns: list[str] | None = None,
) -> dict[str, DatasetDict]:
    """``{domain: DatasetDict}``: split ``split`` (default), or one split per instruction type.

    ``domains``: keep only these configs (default all present, sorted). ``drop_columns``:
    columns to leave out of the release (e.g. the engine's ``caption`` or cost columns).
    Every input row lands in exactly one config and split.
    """
    for col in ("domain", "instruction_type"):
        if col not in ds.column_names:
            raise MissingColumnError(f"rows need a {col!r} column (run the engine or stages.taxonomy first)")
    if drop_columns:
        ds = ds.remove_columns([c for c in drop_columns if c in ds.column_names])
    dom = np.asarray(list_column(ds, "domain"), dtype=object)
    kind = np.asarray(list_column(ds, "instruction_type"), dtype=object)
    names = sorted(set(dom.tolist())) if domains is None else list(domains)
    out: dict[str, DatasetDict] = {}
    for name in names:
        idx = np.flatnonzero(dom == name)
        if not len(idx):
            continue
        if not split_by_type:
            parts = {split: idx}
        else:
            groups: dict[str, list[int]] = defaultdict(list)
            for i in idx:
                groups[kind[i]].append(int(i))
            # Types in the taxonomy's order, then any others (rows tagged by other tools).
            order = [t for t in INSTRUCTION_TYPES if t in groups] + sorted(t for t in groups if t not in INSTRUCTION_TYPES)
            parts = {t: np.asarray(groups[t]) for t in order}
        dd = {}
        for s, rows in parts.items():
            sub = ds.select(rows)
            dd[s] = provenance.record(sub, "mminstruct_configs", kind="select", rows_in=len(ds), rows_out=len(sub),
                                      params={"config": name, "split": s, "split_by_type": split_by_type}, parent=ds)
        out[name] = DatasetDict(dd)
    return out


__all__ = ["mminstruct_configs"]
