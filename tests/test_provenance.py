"""Provenance travels with the dataset through datasets' own operations."""

from __future__ import annotations

import os
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


def test_provenance_survives_parquet_outputs_and_reaches_the_card(tmp_path, capsys):
    """Issue 18 item 11: CLI outputs in Parquet keep the steps; the card's sources table shows rows in and license."""
    import json

    from hf_vitcurate.cli import main
    from hf_vitcurate import load_vit
    from hf_vitcurate.commands.common import load_input, save_output
    from hf_vitcurate.formats import with_license
    from hf_vitcurate.hub import publish

    rows = [{"id": f"r{i}", "conversations": [{"from": "human", "value": f"What is {i}?"},
                                               {"from": "gpt", "value": f"It is {i}."}]} for i in range(5)]
    (tmp_path / "pool.json").write_text(json.dumps(rows))
    # A source whose own card declares a license (a Hub dataset: load_vit notes ds.info.license).
    save_output(with_license(load_vit(str(tmp_path / "pool.json")), "cc-by-4.0"), str(tmp_path / "loaded.parquet"))
    assert main(["-q", "validate", str(tmp_path / "loaded.parquet"), "--output", str(tmp_path / "kept.parquet")]) == 0
    assert main(["-q", "score", "leakage", str(tmp_path / "kept.parquet"), "--output", str(tmp_path / "t.parquet")]) == 0
    capsys.readouterr()
    ds = load_input(str(tmp_path / "t.parquet"))
    names = [s["name"] for s in provenance.steps(ds)]
    assert names[0] == "llava" and "validate" in names and "leakage" in names  # was: only the last read's step
    out = publish(ds, "test/prov", local_dir=str(tmp_path / "hub"))
    readme = open(os.path.join(out, "README.md")).read()
    sources = readme[readme.index("## Sources"):]
    line = next(x for x in sources.splitlines() if x.startswith("| pool"))
    assert "cc-by-4.0" in line and "| 5 |" in line, line


def test_parquet_metadata_round_trip_and_damaged_entry():
    ds = provenance.record(Dataset.from_dict({"id": ["a"]}), "demo", kind="stage", rows_in=1)
    assert [s["name"] for s in provenance.steps_from_parquet_metadata(provenance.parquet_metadata(ds))] == ["demo"]
    # A damaged or foreign entry is no provenance, not a failed load.
    for raw in (b"{not json", b'"a string"', b"[1, 2]"):
        assert provenance.steps_from_parquet_metadata({provenance.PARQUET_KEY: raw}) == []
    assert provenance.steps_from_parquet_metadata(None) == []


def test_last_step_is_the_newest_step_of_a_name(tmp_path):
    ds = Dataset.from_dict({"id": ["a", "b"]})
    assert provenance.last_step(ds) is None and provenance.last_step(ds, "collect") is None
    ds = provenance.record(ds, "collect", kind="stage", params={"k": 1})
    ds = provenance.record(ds, "collect", kind="stage", params={"k": 2})
    ds = provenance.record(ds.select([0]), "pick", kind="select", parent=ds)
    ds.save_to_disk(str(tmp_path / "d"))
    back = load_from_disk(str(tmp_path / "d"))
    assert provenance.last_step(back, "collect")["params"] == {"k": 2}  # the newest of that name
    assert provenance.last_step(back)["name"] == "pick" and provenance.last_step(back, "train") is None
