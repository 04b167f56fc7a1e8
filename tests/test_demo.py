"""`vitcurate demo` end to end on a small ShapesWorld: the published dataset loads back."""

from __future__ import annotations

import json

import pytest
from datasets import load_dataset

from hf_vitcurate.cli import main


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out), "--n-images", "30", "--fraction", "0.3"]) == 0
    printed = capsys.readouterr().out
    assert "MLLM-Selector" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads(printed[printed.index("\n{") :]) == {"output": str(out), **summary}  # the closing summary
    assert summary["rows_in"] == summary["kept"] + summary["rejected"]
    back = load_dataset(str(out / "hub"), "default", split="train")
    assert len(back) == summary["selected"] == summary["n"]
    assert {"necessity", "informativeness", "yes_no"} <= set(back.column_names)
    assert "_truth" not in back.column_names
    card = (out / "hub" / "README.md").read_text()
    assert "MLLM-Selector" in card and "nbgs" in card
