"""Fast whole-column access that respects a dataset's indices mapping.

In ``datasets`` 4+, ``ds["col"]`` is a lazy ``Column`` read row by row; selections and
scorers need a whole column at once, so they go through these helpers instead.

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a", "b", "c"], "s": [1.0, 2.0, 3.0]}).select([2, 0])
    >>> arrow_column(ds, "id").to_pylist(), numpy_column(ds, "s").tolist()
    (['c', 'a'], [3.0, 1.0])
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from .errors import MissingColumnError


def row_mapping(ds: Dataset) -> pa.ChunkedArray | None:
    """The rows of ``ds.data`` that a ``select()``/``shuffle()``/``sort()`` view shows, in order; ``None`` for a plain table.

    The one read of a private field in the package's column helpers (``Dataset._indices``):
    ``datasets`` (5.2, the floor, to the current release) has no public accessor, and its
    public routes gather row by row in Python. For one float column of a shuffled 1M-row
    dataset (``benchmarks/bench_columns.py``, median of 3): ``pc.take`` with this mapping
    0.03 s, ``with_format("arrow")[name]`` 3.4 s, ``select_columns(...).flatten_indices()`` 14 s.
    tests/test_columns_public.py pins the result to the public routes', so a ``datasets``
    release that changes the field fails there, not silently.

    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"s": [1, 2, 3]})
    >>> row_mapping(ds) is None, row_mapping(ds.select([2, 0])).to_pylist()
    (True, [2, 0])
    """
    indices = ds._indices
    return None if indices is None else indices.column(0)


def arrow_column(ds: Dataset, name: str) -> pa.ChunkedArray:
    """Column ``name`` as a pyarrow ChunkedArray, in the dataset's row order."""
    if name not in ds.column_names:
        raise MissingColumnError(f"column {name!r} not in dataset (columns: {ds.column_names})")
    col = ds.data.column(name)
    rows = row_mapping(ds)
    return col if rows is None else pc.take(col, rows)


def numpy_column(ds: Dataset, name: str, dtype=None) -> np.ndarray:
    """Column ``name`` as a numpy array (strings become an object array)."""
    col = arrow_column(ds, name)
    arr = col.to_numpy() if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) else np.asarray(col.to_pylist(), dtype=object)
    return arr.astype(dtype) if dtype is not None else arr


def list_column(ds: Dataset, name: str) -> list:
    """Column ``name`` as a Python list (decoded values of plain types, not images)."""
    return arrow_column(ds, name).to_pylist()


def add_columns(ds: Dataset, columns: dict[str, list], features: dict | None = None) -> Dataset:
    """``ds`` with new columns (same length), also for an empty ``ds``.

    ``Dataset.add_column`` fails on an empty selection of a concatenated table, and
    ``map`` adds nothing to an empty dataset; an empty input is rebuilt from its schema.
    """
    from datasets import Features, Value

    features = dict(features or {})
    if len(ds) == 0:
        feats = Features({**ds.features, **{k: features.get(k, Value("string")) for k in columns}})
        out = Dataset.from_dict({k: [] for k in feats}, features=feats)
        out.info.description = ds.info.description  # keeps provenance (``info`` is the dataset's own object)
        return out
    for name, values in columns.items():
        ds = ds.add_column(name, values, feature=features.get(name))
    return ds


def ids_sha256(ids: Dataset | pa.Array | pa.ChunkedArray | list[str]) -> str:
    """SHA-256 of the sorted ids, each followed by ``"\\n"``: order-independent identity of a selection.

    Accepts a dataset (its ``id`` column), an Arrow array or a list; streams in slices so
    millions of ids never become one Python string.
    """
    h = hashlib.sha256()
    if isinstance(ids, Dataset):
        if "id" not in ids.column_names:
            return h.hexdigest()
        ids = arrow_column(ids, "id")
    arr = pa.array(ids, pa.string()) if isinstance(ids, list) else ids
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.take(pc.sort_indices(arr))
    if arr.null_count == 0 and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        # Each id followed by "\n" is one Arrow string; their bytes lie end to end in its data buffer.
        joined = pc.binary_join_element_wise(arr, pa.scalar("", arr.type), pa.scalar("\n", arr.type))
        width = 8 if pa.types.is_large_string(joined.type) else 4
        offsets = np.frombuffer(joined.buffers()[1], dtype=f"<i{width}", count=len(joined) + 1, offset=joined.offset * width)
        if len(joined):
            h.update(memoryview(joined.buffers()[2])[int(offsets[0]) : int(offsets[-1])])
        return h.hexdigest()
    for start in range(0, len(arr), 100_000):
        h.update("".join(f"{i}\n" for i in arr.slice(start, 100_000).to_pylist()).encode())
    return h.hexdigest()


class _HashSink:
    """A write-only file object that feeds a hash (pyarrow writes the IPC stream into it)."""

    def __init__(self, h):
        self.h = h
        self.closed = False

    def write(self, data) -> int:
        self.h.update(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def content_sha256(ds: Dataset, batch_size: int = 1000) -> str:
    """SHA-256 of the Arrow IPC stream of all rows in order, in batches of ``batch_size``.

    Independent of how the data is chunked or whether ``ds`` has an indices mapping.
    Images stored as paths hash as their paths (publishing embeds the bytes).
    """
    h = hashlib.sha256()
    schema = ds.features.arrow_schema.remove_metadata()
    with pa.ipc.new_stream(pa.PythonFile(_HashSink(h), mode="w"), schema) as writer:
        for table in ds.with_format("arrow").iter(batch_size=batch_size):
            # A copy with fresh buffers: a zero-copy slice keeps its parent's offsets, and the IPC
            # bytes of a sliced list column depend on them (the same rows chunked otherwise hashed
            # differently, so a saved-and-reloaded dataset looked changed).
            table = table.replace_schema_metadata(None).take(np.arange(table.num_rows))
            writer.write_table(table.combine_chunks())
    return h.hexdigest()
