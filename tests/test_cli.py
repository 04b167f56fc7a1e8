"""The command line mirrors the API: every subcommand builds, and errors are one clear line."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from hf_vitcurate import FEATURES
from hf_vitcurate.cli import COMMANDS, build_parser, main


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([name.replace("_", "-"), "--help"])
        assert exit_.value.code == 0
        assert "usage" in capsys.readouterr().out


def test_validate_command_writes_kept_and_rejected(tmp_path, capsys):
    rows = {
        "id": ["a", "b", "a"],
        "images": [[], [], []],
        "conversations": [[{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]] * 2 + [[]],
        "source": ["s"] * 3,
        "task": ["t"] * 3,
    }
    Dataset.from_dict(rows, features=FEATURES).save_to_disk(str(tmp_path / "in"))
    code = main(["validate", str(tmp_path / "in"), "--output", str(tmp_path / "kept.jsonl"),
                 "--rejected", str(tmp_path / "rej.jsonl")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"rows_in": 3, "kept": 2, "rejected": 1, "reasons": {"duplicate_id": 1}}
    assert len((tmp_path / "rej.jsonl").read_text().splitlines()) == 1


def test_strict_validation_error_is_one_line(tmp_path, capsys):
    rows = {"id": ["x"], "images": [[]], "conversations": [[{"from": "human", "value": "Hi"}]], "source": ["s"], "task": ["t"]}
    Dataset.from_dict(rows, features=FEATURES).save_to_disk(str(tmp_path / "in"))
    assert main(["validate", str(tmp_path / "in"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "row id='x'" in err and "last_not_gpt" in err and "Traceback" not in err


def test_select_commands(tmp_path, capsys):
    ds = Dataset.from_dict({"id": [f"r{i}" for i in range(20)], "necessity": [float(i) for i in range(20)]})
    ds.save_to_disk(str(tmp_path / "scored"))
    assert main(["select", "nbgs", str(tmp_path / "scored"), "--n", "5", "--k", "10", "--tau", "0",
                 "--output", str(tmp_path / "sel"), "--manifest", str(tmp_path / "m.json")]) == 0
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["n_selected"] == 5 and sorted(manifest["ids"]) == ["r17", "r18", "r19", "r8", "r9"]
    capsys.readouterr()
    assert main(["select", "top", str(tmp_path / "scored"), "--n", "3", "--output", str(tmp_path / "top")]) == 0
    assert json.loads(capsys.readouterr().out)["n_selected"] == 3
