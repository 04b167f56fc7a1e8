"""The ``yes_no`` column: does a row's first answer start with "yes" or "no" (SVIT, arXiv:2307.04087).

A row is ``"yes"``/``"no"`` when its first ``gpt`` turn starts with that word,
case-insensitive, after stripping leading punctuation and spaces ("Yes.", " no,",
"NO!", '"Yes, it is"'); otherwise ``"none"`` ("Yesterday", "Not really", rows without
an answer). The SVIT balance recipe (:func:`hf_vitcurate.select.balance`) reads it.

Only the first answer counts (docs/methods.md, SVIT); a multi-turn row whose later
answers are yes/no stays ``"none"`` (the other reading, counting every answer, would
need per-turn rows: apply :func:`hf_vitcurate.explode_turns` first).

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"conversations": [
    ...     [{"from": "human", "value": "Is it red?"}, {"from": "gpt", "value": " No, it is blue."}],
    ...     [{"from": "human", "value": "When?"}, {"from": "gpt", "value": "Yesterday."}]]})
    >>> yes_no(ds)["yes_no"][:]
    ['no', 'none']
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Value

from .. import provenance
from ._arrow import map_arrow, turns

LABELS = ("yes", "no", "none")
# Leading non-word characters, then the word, then a non-word character or the end.
_PATTERN = r"^[^\p{L}\p{N}]*(?P<word>yes|no)(?:[^\p{L}\p{N}_]|$)"


def first_answers(table: pa.Table) -> pa.Array:
    """The first ``gpt`` turn of each row of an Arrow batch (``""`` when a row has none)."""
    values, roles, turn_row, _ = turns(table)
    is_gpt = np.asarray(pc.equal(roles, "gpt"), dtype=bool)
    rows_with, first = np.unique(turn_row[is_gpt], return_index=True)
    out = np.full(table.num_rows, -1, dtype=np.int64)
    out[rows_with] = np.flatnonzero(is_gpt)[first]
    taken = values.take(pa.array(out, mask=out < 0))
    return pc.fill_null(taken, "")


def yes_no_labels(answers: pa.Array) -> pa.Array:
    """``"yes"``/``"no"``/``"none"`` for each answer text (vectorised; see module docstring)."""
    word = pc.struct_field(pc.extract_regex(pc.utf8_lower(answers), _PATTERN), [0])
    return pc.fill_null(word, "none")


def yes_no(ds: Dataset, *, map_batch_size: int = 10_000, num_proc: int | None = None) -> Dataset:
    """Add the ``yes_no`` column (``"yes"``, ``"no"`` or ``"none"``) from each row's first answer.

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"conversations": [[{"from": "human", "value": "Ok?"},
        ...                                              {"from": "gpt", "value": "YES!"}]]})
        >>> yes_no(ds)[0]["yes_no"]
        'yes'
    """
    out = map_arrow(
        ds, lambda t: {"yes_no": yes_no_labels(first_answers(t))}, {"yes_no": Value("string")},
        batch_size=map_batch_size, num_proc=num_proc, desc="yes_no",
    )
    counts = dict(zip(*np.unique(np.asarray(out.with_format("arrow")["yes_no"]), return_counts=True))) if len(out) else {}
    return provenance.record(
        out, "yes_no", kind="stage", rows_in=len(ds),
        params={"rule": "first gpt answer starts with yes/no", "counts": {str(k): int(v) for k, v in counts.items()}},
        parent=ds,
    )
