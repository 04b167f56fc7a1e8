"""Provenance travels with the dataset through datasets' own operations."""

from __future__ import annotations

import json

from datasets import Dataset, DatasetDict, load_from_disk

from hf_vitcurate import provenance


def test_steps_survive_map_filter_select_and_disk(tmp_path):
    ds = Dataset.from_dict({"id": ["a", "b", "c"]})
    ds.info.description = "user text"
    ds = provenance.record(ds, "convert", kind="convert", rows_in=3, params={"format": "llava", "path": tmp_path})
    ds = ds.map(lambda b: {"n": [1] * len(b["id"])}, batched=True)
    ds = ds.filter(lambda r: r["id"] != "b").select([0])
    ds = provenance.record(ds, "pick", kind="select", rows_in=2, seed=3)
    ds.save_to_disk(str(tmp_path / "d"))
    back = load_from_disk(str(tmp_path / "d"))
    names = [s["name"] for s in provenance.steps(back)]
    assert names == ["convert", "pick"]
    last = provenance.steps(back)[-1]
    assert last["rows_in"] == 2 and last["rows_out"] == 1 and last["seed"] == 3 and last["version"]
    # Parameters are made JSON-safe (a Path becomes its string).
    assert provenance.steps(back)[0]["params"]["path"] == str(tmp_path)
    # The user's own description is kept beside the record.
    assert json.loads(back.info.description)["description"] == "user text"


def test_record_does_not_modify_its_input():
    ds = Dataset.from_dict({"id": ["a"]})
    out = provenance.record(ds, "x", kind="stage")
    assert provenance.steps(ds) == [] and len(provenance.steps(out)) == 1


def test_parent_history_and_merge():
    a = provenance.record(Dataset.from_dict({"id": ["a"]}), "load a", kind="convert")
    b = provenance.record(Dataset.from_dict({"id": ["b"]}), "load b", kind="convert")
    child = provenance.record(Dataset.from_dict({"id": ["z"]}), "derived", kind="stage", parent=a)
    assert [s["name"] for s in provenance.steps(child)] == ["load a", "derived"]
    merged = provenance.merge([a, b])
    assert [(s["name"], s["input"]) for s in merged] == [("load a", 0), ("load b", 1)]
    text = provenance.to_json(DatasetDict({"train": a}))
    assert json.loads(text)["train"][0]["name"] == "load a"
