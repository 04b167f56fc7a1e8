"""Arrow helpers shared by the text stages: batches in and out as Arrow, no per-row Python.

Example:
    >>> import pyarrow as pa
    >>> from datasets import Dataset, Value
    >>> ds = Dataset.from_dict({"id": ["a", "b"]})
    >>> out = map_arrow(ds, lambda t: {"n": pa.array([1, 2], pa.int32())}, {"n": Value("int32")})
    >>> out["n"][:]
    [1, 2]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset


def map_arrow(
    ds: Dataset,
    fn: Callable[[pa.Table], Mapping[str, pa.Array]],
    new_features: Mapping,
    batch_size: int = 10_000,
    num_proc: int | None = None,
    desc: str | None = None,
    fingerprint_params: object = None,
) -> Dataset:
    """``Dataset.map`` over Arrow batches; ``fn(table)`` returns the new columns only.

    Columns named in ``new_features`` that already exist are replaced; all other
    columns pass through untouched. The input's format (e.g. ``"numpy"``) is restored.
    ``fingerprint_params``: when given (JSON-able, everything that determines the
    output), the new fingerprint is hashed from it instead of from ``fn`` - hashing a
    closure over a compiled matcher with dill costs ~0.1 s per call.
    """
    features = ds.features.copy()
    for name in new_features:
        features.pop(name, None)
    for name, feature in new_features.items():
        features[name] = feature

    def apply(table: pa.Table) -> pa.Table:
        new = fn(table)
        # With Arrow formatting, datasets replaces the batch by what we return, so the
        # untouched columns are returned too (zero-copy).
        table = table.select([c for c in table.column_names if c not in new_features])
        for name in new_features:
            table = table.append_column(name, new[name])
        return table

    new_fingerprint = None
    if fingerprint_params is not None:
        from datasets.fingerprint import Hasher

        from .. import __version__

        new_fingerprint = Hasher.hash([ds._fingerprint, desc, fingerprint_params, str(features), __version__])
    out = ds.with_format("arrow").map(
        apply, batched=True, batch_size=batch_size, features=features, num_proc=num_proc, desc=desc,
        new_fingerprint=new_fingerprint,
    )
    # Restore the input's format with the new columns visible. ``ds.format["columns"]``
    # lists all columns even when none were chosen, and some operations (e.g.
    # ``concatenate_datasets``) set an explicit list: "all old columns" means all columns.
    columns = ds._format_columns
    if columns is not None:
        columns = None if set(ds.column_names) <= set(columns) else list(columns) + [c for c in new_features if c not in columns]
    return out.with_format(
        ds._format_type, columns=columns, output_all_columns=ds._output_all_columns, **ds._format_kwargs
    )


def turns(table: pa.Table) -> tuple[pa.Array, pa.Array, np.ndarray, np.ndarray]:
    """Flatten ``conversations`` of a batch: ``(values, roles, turn_row, turn_pos)``.

    ``values``/``roles`` have one entry per turn (nulls as ``""``), ``turn_row[i]`` is the
    row of turn ``i`` and ``turn_pos[i]`` its position inside the row.
    """
    conv = table.column("conversations")
    conv = conv.combine_chunks() if isinstance(conv, pa.ChunkedArray) else conv
    if isinstance(conv, pa.ChunkedArray):  # pragma: no cover - pyarrow version differences
        conv = pa.concat_arrays(conv.chunks) if conv.num_chunks else pa.array([], conv.type)
    flat = pc.list_flatten(conv)
    turn_row = np.asarray(pc.list_parent_indices(conv), dtype=np.int64)
    lengths = np.asarray(pc.fill_null(pc.list_value_length(conv), 0), dtype=np.int64)
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    turn_pos = np.arange(len(flat), dtype=np.int64) - starts[turn_row]
    values = pc.fill_null(flat.field("value"), "")
    roles = pc.fill_null(flat.field("from"), "")
    return values, roles, turn_row, turn_pos
