"""columns.arrow_column reads a view's row mapping (a private field of ``datasets``, for speed):
it must give what the public routes give, for every kind of view, so a ``datasets`` release
that changes the field fails here rather than reordering columns silently."""

from __future__ import annotations

import pytest
from datasets import Dataset, concatenate_datasets

from hf_vitcurate.columns import add_columns, arrow_column, ids_sha256, list_column, numpy_column, row_mapping

BASE = Dataset.from_dict({"id": [f"r{i}" for i in range(40)], "s": [float((i * 7) % 40) for i in range(40)],
                          "tags": [[f"t{i % 3}"] * (i % 4) for i in range(40)]})
VIEWS = {
    "plain": lambda: BASE,
    "select": lambda: BASE.select([39, 3, 3, 0, 17]),
    "shuffle": lambda: BASE.shuffle(seed=1),
    "filter": lambda: BASE.filter(lambda s: s > 10, input_columns="s"),
    "sort": lambda: BASE.sort("s", reverse=True),
    "select of a shuffle": lambda: BASE.shuffle(seed=2).select(range(5, 25)),
    "columns of a shuffle": lambda: BASE.shuffle(seed=3).select_columns(["s", "id"]),
    "concatenated views": lambda: concatenate_datasets([BASE.select([5, 1]), BASE.shuffle(seed=4).select(range(3))]),
    "split": lambda: BASE.train_test_split(test_size=0.25, seed=0)["test"],
    "empty": lambda: BASE.select([]),
}


@pytest.mark.parametrize("view", VIEWS)
def test_arrow_column_equals_the_public_routes(view):
    ds = VIEWS[view]()
    public = ds.with_format("arrow")
    for name in ds.column_names:
        got = arrow_column(ds, name).to_pylist()
        assert got == public[name].to_pylist() == list(ds[name]), (view, name)
    assert numpy_column(ds, "s").tolist() == list_column(ds, "s") == public["s"].to_pylist()
    assert ids_sha256(ds) == ids_sha256(public["id"].to_pylist())
    mapping = row_mapping(ds)
    if mapping is not None:  # the mapping names rows of ds.data: taking them gives the view
        assert ds.data.table.take(mapping).to_pylist() == public[:].to_pylist()


def test_add_columns_to_an_empty_view_keeps_the_description():
    empty = BASE.select([])
    empty.info.description = "provenance"
    out = add_columns(empty, {"x": []})
    assert out.column_names == [*BASE.column_names, "x"] and out.info.description == "provenance"
