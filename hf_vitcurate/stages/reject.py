"""Split flagged rows off: the one kept/rejected form of every flag a stage adds.

A score stage only adds columns (:func:`~hf_vitcurate.stages.leakage` adds ``leakage``,
:func:`~hf_vitcurate.stages.qa_count` adds ``qa_short``, :func:`~hf_vitcurate.stages.necessity`
adds ``necessity_flag``). :func:`reject` turns any such column into a
:class:`~hf_vitcurate.results.Split`: the rows kept, and the rows rejected with
``reject_reason`` and ``reject_detail`` like :func:`hf_vitcurate.validate`'s (rows in =
kept + rejected). Both carry a ``reject`` provenance step with the counts per reason.

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a", "b", "c"], "necessity_flag": ["", "truncated", "no_response_tokens"]})
    >>> kept, rejected = reject(ds, where="necessity_flag", values=["no_response_tokens"])
    >>> kept["id"][:], rejected[0]["reject_reason"]
    (['a', 'b'], 'no_response_tokens')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Value

from .. import provenance
from ..columns import add_columns, arrow_column
from ..errors import ConfigError, missing_column
from ..results import Split

# The reason code of a boolean flag column (else the column's name is the code).
REASONS = {"leakage": "leakage", "qa_short": "too_few_qa"}
# How a rejected row's detail reads, per flag column (else "column=value").
DETAILS: dict[str, Callable[[dict], str]] = {
    "leakage": lambda r: f"answer mentions {r['leakage_phrases']}",
    "qa_short": lambda r: f"{r['qa_pairs']} QA pairs, expected {r['qa_expected']}",
}


def reject(
    ds: Dataset,
    *,
    where: str,
    values: Sequence[str] | None = None,
    reason: str | None = None,
) -> Split:
    """Split ``ds`` into rows kept and rows flagged in column ``where`` (rejected, with reasons).

    ``where``: a boolean column (rows where it is true are rejected; reason
    :data:`REASONS` or the column's name) or a string column (rows whose value is in
    ``values``, default any non-empty value, are rejected; the value is the reason).
    ``reason`` overrides the reason code. Returns :class:`~hf_vitcurate.results.Split`.
    """
    if where not in ds.column_names:
        raise missing_column(where, ds.column_names, what="flag column")
    col = arrow_column(ds, where)
    if pa.types.is_boolean(col.type):
        if values is not None:
            raise ConfigError(f"values= applies to a string column; {where!r} is boolean")
        bad = np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)
        codes = np.full(len(ds), reason or REASONS.get(where, where), dtype=object)
    else:
        flags = np.asarray(pc.fill_null(col.cast(pa.string()), "").to_numpy(zero_copy_only=False), dtype=object)
        bad = np.isin(flags, list(values)) if values is not None else flags != ""
        codes = np.full(len(ds), reason, dtype=object) if reason else flags
    bad_idx = np.flatnonzero(bad)
    kept = ds.select(np.flatnonzero(~bad)) if len(bad_idx) else ds
    rejected = ds.select(bad_idx)
    # Rejected rows are few; their details are built in Python (no images decoded).
    plain = rejected.select_columns([c for c in rejected.column_names if c != "images"])
    detail = DETAILS.get(where, lambda r: f"{where}={r[where]}")
    reasons = [str(c) for c in codes[bad_idx]]
    rejected = add_columns(
        rejected, {"reject_reason": reasons, "reject_detail": [detail(r) for r in plain]},
        features={"reject_reason": Value("string"), "reject_detail": Value("string")},
    )
    counts = dict(Counter(reasons))
    params = {"where": where, "values": list(values) if values is not None else None}
    kept = provenance.record(kept, "reject", kind="stage", rows_in=len(ds), rejected=counts, params=params, parent=ds)
    rejected = provenance.record(rejected, "reject", kind="stage", rows_in=len(ds), rows_out=len(rejected),
                                 rejected=counts, params=params, parent=ds)
    return Split(kept, rejected)
