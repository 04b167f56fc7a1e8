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

        new_fingerprint = Hasher.hash([fingerprint(ds), desc, fingerprint_params, str(features), __version__])
    out = ds.with_format("arrow").map(
        apply, batched=True, batch_size=batch_size, features=features, num_proc=num_proc, desc=desc,
        new_fingerprint=new_fingerprint,
    )
    return with_format_of(out, ds, new_features)


def fingerprint(ds: Dataset) -> str:
    """``ds``'s ``datasets`` fingerprint (what its cache files are named by).

    ``datasets`` (5.2) has no public accessor for it; this is the one place the stages read it.
    """
    return ds._fingerprint


def with_format_of(out: Dataset, ds: Dataset, new_columns) -> Dataset:
    """``out`` in ``ds``'s format (``Dataset.format``), the ``new_columns`` visible.

    ``ds.format["columns"]`` lists all columns even when none were chosen, and some operations
    (``concatenate_datasets``) set an explicit list: "all old columns" means all columns.

    >>> ds = Dataset.from_dict({"a": [1], "b": [2]}).with_format("numpy", columns=["a"])
    >>> with_format_of(Dataset.from_dict({"a": [1], "b": [2], "c": [3]}), ds, ["c"]).format["columns"]
    ['a', 'c']
    """
    fmt = ds.format
    columns = fmt["columns"]
    if set(ds.column_names) <= set(columns):
        columns = None
    else:
        columns = list(columns) + [c for c in new_columns if c not in columns]
    return out.with_format(fmt["type"], columns=columns, output_all_columns=fmt["output_all_columns"],
                           **fmt["format_kwargs"])


def map_beside(ds: Dataset, fn: Callable[[pa.Table], Mapping[str, pa.Array]], new_features: Mapping, *,
               batch_size: int, num_proc: int | None = None, desc: str, fingerprint_params: object) -> Dataset:
    """As :func:`map_arrow`, but ``map`` writes only the new columns and ``concatenate_datasets(axis=1)``
    puts them beside ``ds``'s untouched ones.

    ``map_arrow`` rewrites every column (a stage reading conversations rewrites their text:
    ~30% of the concepts stage's time on SVIT rows). A selection (an indices mapping) is
    flattened by the concatenation, as ``map_arrow`` rewrites it. No rows give the new columns
    empty and typed (``map`` would add none).

    >>> from datasets import Value
    >>> ds = Dataset.from_dict({"id": ["a", "b"]})
    >>> out = map_beside(ds, lambda t: {"n": pa.array([1, 2], pa.int32())}, {"n": Value("int32")},
    ...                  batch_size=10, desc="demo", fingerprint_params={"v": 1})
    >>> out.column_names, out["n"][:]
    (['id', 'n'], [1, 2])
    """
    from datasets import Features, concatenate_datasets

    from ..columns import add_columns

    base = ds.remove_columns([c for c in new_features if c in ds.column_names])
    if len(ds) == 0:  # map calls nothing on no rows, concatenate drops an empty side: typed empty columns
        out = add_columns(base.with_format(None), {name: [] for name in new_features}, features=dict(new_features))
    else:
        from datasets.fingerprint import Hasher

        from .. import __version__

        new = base.with_format("arrow").map(
            lambda t: pa.table(dict(fn(t))), batched=True, batch_size=batch_size, remove_columns=base.column_names,
            features=Features(new_features), num_proc=num_proc, desc=desc,
            new_fingerprint=Hasher.hash([fingerprint(ds), desc, "beside", fingerprint_params, __version__]),
        )
        out = concatenate_datasets([base.with_format(None), new], axis=1)
    return with_format_of(out, ds, new_features)


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
