"""stages._arrow: map_beside (new columns written alone, put beside the old ones) agrees with map_arrow
on plain datasets, selections, shuffles, narrowed formats and no rows, through public Dataset API."""

from __future__ import annotations

import inspect

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Value, concatenate_datasets

from hf_vitcurate.stages import _arrow, concepts as concepts_module
from hf_vitcurate.stages._arrow import map_arrow, map_beside

NEW = {"n": Value("int32")}


def lengths(table: pa.Table) -> dict:
    return {"n": pc.cast(pc.utf8_length(table.column("text")), pa.int32())}


def views(ds: Dataset):
    yield "plain", ds
    yield "selection", ds.select([3, 1, 2])
    yield "shuffle", ds.shuffle(seed=0)
    yield "narrowed", ds.with_format("numpy", columns=["id"])
    yield "concatenated", concatenate_datasets([ds.select(range(2)), ds.select(range(2, 5))])
    yield "replacing", ds.add_column("n", [0] * len(ds))


def test_map_beside_agrees_with_map_arrow_on_every_view():
    ds = Dataset.from_dict({"id": list("abcde"), "text": ["x", "yy", "zzz", "", "wwww"]})
    for name, view in views(ds):
        beside = map_beside(view, lengths, NEW, batch_size=2, desc="t", fingerprint_params={"v": 1})
        arrow = map_arrow(view, lengths, NEW, batch_size=2)
        assert beside.column_names == arrow.column_names, name
        assert beside.format == arrow.format, name
        assert beside.with_format(None).to_dict() == arrow.with_format(None).to_dict(), name
        assert beside.features["n"] == Value("int32"), name
    # No rows: map calls nothing (map_arrow's output has no n); map_beside adds it, typed.
    empty = map_beside(ds.select([]), lengths, NEW, batch_size=2, desc="t", fingerprint_params={"v": 1})
    assert len(empty) == 0 and empty.column_names == ["id", "text", "n"] and empty.features["n"] == Value("int32")


def test_the_stage_helpers_read_no_private_dataset_fields_but_the_fingerprint():
    """Review: concepts read ds._indices / ds._format_*; the helpers use Dataset.format, and the
    fingerprint (no public accessor in datasets) is read in one named place."""
    assert "_beside" not in dir(concepts_module)
    source = inspect.getsource(concepts_module) + inspect.getsource(_arrow)
    for private in ("._indices", "._format_type", "._format_columns", "._output_all_columns", "._format_kwargs"):
        assert private not in source, private
    assert source.count("._fingerprint") == 1
