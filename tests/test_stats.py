"""`stats` numbers on a hand-made dataset, its Markdown/PNG renderings and `vitcurate stats`."""

from __future__ import annotations

import io
import json

import datasets
import pytest
from datasets import Dataset
from PIL import Image

from hf_vitcurate.schema import FEATURES
from hf_vitcurate.stats import plot_first_words, stats, to_markdown

datasets.disable_progress_bars()


def _png() -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def turn(who: str, text: str) -> dict:
    return {"from": who, "value": text}


@pytest.fixture
def hand_made() -> Dataset:
    """4 rows: 2 conv (one with 2 QA pairs), 1 ref, 1 text-only caption; 2 sources."""
    return Dataset.from_dict(
        {
            "id": ["a", "b", "c", "d"],
            "images": [[_png()], [_png()], [_png()], []],
            "conversations": [
                [turn("human", "<image>\nWhat is it?"), turn("gpt", "A red ball."),
                 turn("human", "How many balls?"), turn("gpt", "Two.")],
                [turn("human", "<image>\nWhat color is it?"), turn("gpt", "Red")],
                [turn("human", "<image> Is there a cat?"), turn("gpt", "No, there is no cat here.")],
                [turn("human", "Write a caption."), turn("gpt", "Sunny day at the beach today")],
            ],
            "source": ["s1", "s1", "s2", "s2"],
            "task": ["conv", "conv", "ref", "caption"],
        },
        features=FEATURES,
    )


def test_stats_numbers(hand_made):
    r = stats(hand_made)
    assert (r["rows"], r["images"], r["rows_without_images"], r["turns"], r["qa_pairs"]) == (4, 3, 1, 10, 5)
    conv = r["groups"]["conv"]
    # questions: "What is it?" 3, "How many balls?" 3, "What color is it?" 4 -> 10/3
    assert conv["mean_question_words"] == round(10 / 3, 2)
    # answers: 3 + 1 + 1 words over 3 QA pairs
    assert conv["mean_answer_words"] == round(5 / 3, 2)
    assert conv["mean_qa_pairs_per_row"] == 1.5 and conv["images"] == 2
    assert r["groups"]["caption"]["rows_without_images"] == 1
    assert r["groups"]["ref"]["mean_answer_words"] == 6.0
    assert r["mean_question_words"] == round((10 + 4 + 3) / 5, 2)
    assert r["rows_per_source_task"] == {"s1": {"conv": 2}, "s2": {"caption": 1, "ref": 1}}
    first = {p: (c, s) for p, c, s in r["first_words"]["all"]["1"]}
    assert first["what"] == (2, 0.4) and first["is"] == (1, 0.2)
    assert ["what is it", 1, round(1 / 3, 4)] in r["first_words"]["conv"]["3"]


def test_stats_by_source_and_tag_columns(hand_made):
    tagged = hand_made.add_column("yes_no", ["none", "none", "no", "none"]).add_column("informativeness", [2, 1, 0, 0])
    r = stats(tagged, by="source")
    assert set(r["groups"]) == {"s1", "s2"} and r["groups"]["s1"]["rows"] == 2
    assert r["groups"]["s1"]["mean_informativeness"] == 1.5 and r["groups"]["s2"]["no"] == 1
    with pytest.raises(ValueError):
        stats(hand_made, by="id")


def test_stats_empty_and_missing_columns(hand_made):
    r = stats(hand_made.select([]))
    assert r["rows"] == 0 and r["mean_question_words"] is None
    with pytest.raises(KeyError, match="task"):
        stats(hand_made.remove_columns("task"))


def test_markdown_and_chart(hand_made, tmp_path):
    r = stats(hand_made)
    md = to_markdown(r)
    assert "| conv | 2 | 2 | 0 | 3 | 1.50 | 3.33 | 1.67 |" in md
    assert "## Rows per source and task" in md and "'what' 40%" in md
    path = plot_first_words(r, str(tmp_path / "fw.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_stats(hand_made, tmp_path, capsys):
    from hf_vitcurate.cli import main

    hand_made.save_to_disk(str(tmp_path / "ds"))
    assert main(["stats", str(tmp_path / "ds"), "--json", "--by", "source", "--chart", str(tmp_path / "c.png"),
                 "--markdown", str(tmp_path / "r.md")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["by"] == "source" and report["rows"] == 4
    assert (tmp_path / "c.png").stat().st_size > 1000 and "# Dataset statistics" in (tmp_path / "r.md").read_text()
    assert main(["stats", str(tmp_path / "ds")]) == 0
    assert "| **all** | 4 |" in capsys.readouterr().out
