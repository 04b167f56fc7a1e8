"""research.lm_pretraining: the text corpus, the language-model stage, its script and train_tiny_lm."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
import torch

from hf_vitcurate.synthetic import make_scene


def test_text_rows_describe_a_scene_and_ask_in_every_format():
    """The language-model corpus: a seeded stream, scenes in words, every format, letters that match their options."""
    import re

    from research.lm_pretraining import FORMATS, LM_SEED, held_out_rows, text_row
    from hf_vitcurate.synthetic.world import COLOR_NAMES
    from hf_vitcurate.synthetic.writers import describe

    rows = [text_row(i, seed=3, questions=3, match_share=0.25) for i in range(200)]
    assert rows == [text_row(i, seed=3, questions=3, match_share=0.25) for i in range(200)]
    assert rows != [text_row(i, seed=4, questions=3, match_share=0.25) for i in range(200)]
    formats = Counter(r["format"] for r in rows)
    assert set(formats) == {*FORMATS, "match"} and 25 < formats["match"] < 75
    for i, row in enumerate(rows):
        conv = row["conversations"]
        assert [t["from"] for t in conv] == ["human", "gpt"] * 3
        assert not any("<image>" in t["value"] for t in conv)  # text only: the scene is in words
        if row["format"] != "match":
            assert conv[0]["value"].startswith(describe(make_scene(i, seed=LM_SEED + 3)) + "\n")
            continue
        opts = dict(re.findall(r"^([ABCD])\. (.+)$", conv[0]["value"], flags=re.M))
        assert len(opts) == 4
        for q, a in zip(conv[::2], conv[1::2]):
            asked = re.search(r"(?:Which option is (.+)\?|What is option ([ABCD])\?)$", q["value"])
            value, letter = asked.groups()
            assert a["value"] == (opts[letter] if letter else next(k for k, v in opts.items() if v == value))
    judged = [r for r in (text_row(i, formats=("judgement",), match_share=0.0) for i in range(60))]
    answers = [r["conversations"][1]["value"] for r in judged]
    assert all(a.startswith(("Yes", "No")) for a in answers) and 15 < sum(a.startswith("Yes") for a in answers) < 45
    held = held_out_rows(5, seed=3)
    assert Counter(r["format"] for r in held) == {f: 5 for f in (*FORMATS, "match")}
    assert not {str(r["conversations"]) for r in held} & {str(r["conversations"]) for r in rows}
    # Held-out match rows ask value -> letter, the step multiple choice needs.
    assert all(r["conversations"][1]["value"] in "ABCD" for r in held if r["format"] == "match")
    colors = [text_row(i, match_share=1.0, questions=1, match_kinds=("color",)) for i in range(20)]
    assert all(set(re.findall(r"^[ABCD]\. (.+)$", r["conversations"][0]["value"], flags=re.M)) <= set(COLOR_NAMES)
               for r in colors)


def test_pretrain_language_model_trains_the_language_model_only(tmp_path, toy_vit):
    """A few steps lower the answer loss; the tower and projector stay as they were; the checkpoint reloads."""
    import json

    import torch
    from transformers import AutoModelForImageTextToText

    from hf_vitcurate.testing import tiny_checkpoint
    from research.lm_pretraining import REPORT_FILE, pretrain_language_model, text_row

    from datasets import Dataset

    corpus = Dataset.from_list([{"conversations": text_row(i)["conversations"]} for i in range(64)])
    base = tiny_checkpoint(corpus, output_dir=tmp_path / "b", vision_width=32, vision_mlp=64, vision_heads=2,
                           text_width=64, text_layers=2, text_heads=2, text_mlp=128, vocab_size=400)
    before = AutoModelForImageTextToText.from_pretrained(base).state_dict()
    report = pretrain_language_model(base, tmp_path / "lm", steps=40, batch_size=8, held_out=4, eval_every=20,
                                     learning_rate=3e-3, progress=False)
    assert report["loss_last"] < 0.8 * report["loss_first"]
    assert set(report["held_out"]) == {"short", "judgement", "multiple_choice", "sentence", "match"}
    assert [c["step"] for c in report["curve"]] == [20]
    after = AutoModelForImageTextToText.from_pretrained(tmp_path / "lm").state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("language_model" in k or "lm_head" in k for k in changed)
    assert json.loads((tmp_path / "lm" / REPORT_FILE).read_text())["steps"] == 40
    assert (tmp_path / "lm" / "tokenizer.json").exists()
    with pytest.raises(ValueError, match="steps, batch_size and questions"):
        pretrain_language_model(base, steps=0, progress=False)
    with pytest.raises(ValueError, match="match_share"):
        pretrain_language_model(base, match_share=1.5, progress=False)
    with pytest.raises(ValueError, match="loss_on"):
        pretrain_language_model(base, loss_on="questions", progress=False)
    with pytest.raises(ValueError, match="match_kinds"):
        pretrain_language_model(base, match_kinds=("size",), progress=False)


def test_text_dataset_is_canonical_text_only_rows():
    """The text stage's rows as a text-only source to mix into a fine-tune: valid rows, no image,
    seeded, and a stream apart from the one the stage trains on."""
    from hf_vitcurate.schema import validate
    from research.lm_pretraining import text_dataset, text_row

    ds = text_dataset(20, seed=1, match_share=1.0, questions=1, forward=0.0, match_kinds=("color",))
    kept, bad = validate(ds)
    assert len(bad) == 0 and len(kept) == 20 and len(set(ds["id"])) == 20
    assert set(ds["task"]) == {"match"} and all(r == [] for r in ds["images"])
    assert all(c[1]["value"] in ("A", "B", "C", "D") for c in ds["conversations"])
    assert ds["conversations"] == text_dataset(20, seed=1, match_share=1.0, questions=1, forward=0.0,
                                               match_kinds=("color",))["conversations"]
    # Not the rows the stage trains on at the same seed (indices from 0): scene rows, whose scenes
    # are unique (a match row's options come from a small space, so they may repeat by chance).
    scenes = text_dataset(20, seed=1, match_share=0.0, questions=1)["conversations"]
    trained_on = [text_row(i, s, match_share=0.0, questions=1)["conversations"] for s in (1, 8) for i in range(200)]
    assert not any(c in trained_on for c in scenes)


def test_pretrain_language_model_frozen_embeddings_and_early_stop(tmp_path):
    """``train_embeddings=False`` leaves the (tied) embedding table as it was while the layers
    train; ``until`` stops at the first held-out check that reaches it, and the report says so."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText

    from hf_vitcurate.testing import tiny_checkpoint
    from research.lm_pretraining import pretrain_language_model, text_row

    corpus = Dataset.from_list([{"conversations": text_row(i)["conversations"]} for i in range(64)])
    base = tiny_checkpoint(corpus, output_dir=tmp_path / "b", vision_width=32, vision_mlp=64, vision_heads=2,
                           text_width=64, text_layers=2, text_heads=2, text_mlp=128, vocab_size=400)
    before = AutoModelForImageTextToText.from_pretrained(base).state_dict()
    # match >= 0 holds at the first check: the run stops after eval_every of its 50 steps.
    report = pretrain_language_model(base, tmp_path / "lm", steps=50, batch_size=4, held_out=2, eval_every=10,
                                     learning_rate=3e-3, train_embeddings=False, until={"match": 0}, progress=False)
    assert (report["steps"], report["max_steps"], report["until"], report["curve"]) == (10, 50, {"match": 0}, [])
    assert report["train_embeddings"] is False and set(report["held_out"]) >= {"match"}
    after = AutoModelForImageTextToText.from_pretrained(tmp_path / "lm").state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("layers." in k or k.endswith("language_model.norm.weight") for k in changed), changed
    # A bar nobody can reach runs every step. A second stage on the result: one format only.
    report = pretrain_language_model(tmp_path / "lm", tmp_path / "lm2", steps=12, batch_size=4, held_out=2, eval_every=5,
                                     until={"match": 101}, formats=("multiple_choice",), match_share=0.0, progress=False)
    assert report["steps"] == 12 and [c["step"] for c in report["curve"]] == [5, 10]
    assert report["formats"] == ["multiple_choice"]
    with pytest.raises(ValueError, match="until names formats"):
        pretrain_language_model(base, until={"letters": 90}, progress=False)
    with pytest.raises(ValueError, match="match_share and forward"):
        pretrain_language_model(base, forward=-0.1, progress=False)
    with pytest.raises(ValueError, match="eval_every"):
        pretrain_language_model(base, eval_every=-1, progress=False)
    with pytest.raises(ValueError, match="formats must be among"):
        pretrain_language_model(base, formats=("essay",), progress=False)


def test_train_tiny_lm_pretrains_the_language_model_after_stage_1(tmp_path):
    """``language_steps`` runs the text-only stage last, into a folder of its own, and records it."""
    from hf_vitcurate.testing import toy_dataset
    from research.lm_pretraining import REPORT_FILE, train_tiny_lm

    path = train_tiny_lm(toy_dataset(8), work_dir=tmp_path / "m", vision_steps=0, language_steps=2, progress=False,
                         language_options={"batch_size": 4, "held_out": 2, "learning_rate": 3e-4})
    # toy rows have no captions: no stage 1, so the stage runs on the base, which stays as it was.
    assert path == str(tmp_path / "m" / "tiny_lm") and not os.path.exists(tmp_path / "m" / "tiny" / REPORT_FILE)
    report = json.loads(open(os.path.join(path, REPORT_FILE)).read())
    assert (report["steps"], report["batch_size"], report["learning_rate"]) == (2, 4, 3e-4)
    mtime = os.path.getmtime(os.path.join(path, "model.safetensors"))
    assert train_tiny_lm(toy_dataset(8), work_dir=tmp_path / "m", vision_steps=0, language_steps=2, progress=False) == path
    assert os.path.getmtime(os.path.join(path, "model.safetensors")) == mtime  # reused, not retrained
    # With stage-1 rows the text stage comes after stage 1, on a copy of f_pre.
    path = train_tiny_lm(toy_dataset(8), work_dir=tmp_path / "c", vision_steps=0, captions=toy_dataset(4), language_steps=2,
                         progress=False, max_steps=1, batch_size=4, language_options={"batch_size": 4, "held_out": 2})
    assert path == str(tmp_path / "c" / "f_pre_lm") and os.path.exists(os.path.join(path, REPORT_FILE))
    assert os.path.exists(tmp_path / "c" / "f_pre" / "train_log.json") and not os.path.exists(tmp_path / "c" / "f_pre" / REPORT_FILE)
    assert set(report["held_out"]) >= {"judgement", "multiple_choice", "match"}


def test_pretrain_language_script_runs_the_text_stage_on_a_checkpoint(toy_vit, tmp_path, capsys):
    """``python -m research.pretrain_language MODEL OUT``: the stage on an existing checkpoint (after
    stage 1), into a folder of its own; MODEL is left as it was; a finished OUT is kept."""
    from hf_vitcurate.models.training import part_of
    from hf_vitcurate.testing import tiny_checkpoint
    from research.lm_pretraining import REPORT_FILE
    from research.pretrain_language import main

    base = tiny_checkpoint(toy_vit, output_dir=tmp_path / "f_pre")
    out = tmp_path / "f_pre_lm"
    argv = [base, str(out), "--steps", "2", "--batch-size", "4", "--learning-rate", "3e-4",
            "--match-share", "1", "--questions", "1", "--match-kinds", "color", "--freeze-embeddings",
            "--eval-every", "0", "--num-threads", "1", "--no-progress"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((out / REPORT_FILE).read_text())
    assert printed["output"] == str(out) and printed["steps"] == report["steps"] == 2
    assert (report["learning_rate"], report["batch_size"]) == (3e-4, 4)
    assert not os.path.exists(os.path.join(base, REPORT_FILE)) and not (tmp_path / "f_pre_lm.partial").exists()
    from safetensors.torch import load_file

    before, after = load_file(os.path.join(base, "model.safetensors")), load_file(out / "model.safetensors")
    changed = {part_of(k) for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"language"}
    embed = next(k for k in before if "embed_tokens" in k)
    assert torch.equal(before[embed], after[embed])  # --freeze-embeddings
    mtime = os.path.getmtime(out / "model.safetensors")
    assert main(argv) == 0 and os.path.getmtime(out / "model.safetensors") == mtime  # kept, not retrained
    with pytest.raises(SystemExit):
        main([*argv, "--match-share", "2"])
    assert "--match-share and --forward must be in [0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([base, base, "--steps", "1"])
    assert "OUTPUT must differ from MODEL" in capsys.readouterr().err


def test_pretrain_language_cli_defaults_are_the_functions():
    """The script's defaults are pretrain_language_model's (they are written out to keep `--help` fast)."""
    import argparse
    import inspect

    from research.lm_pretraining import pretrain_language_model
    from research.pretrain_language import add_stage_args, stage_options

    p = argparse.ArgumentParser()
    add_stage_args(p)
    options = stage_options(p.parse_args([]), p)
    defaults = {k: v.default for k, v in inspect.signature(pretrain_language_model).parameters.items()}
    assert {k: v for k, v in options.items() if k != "eval_every"} == {k: defaults[k] for k in options if k != "eval_every"}
