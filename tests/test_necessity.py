"""MLLM-Selector necessity: equals an independent per-row computation, shards, resumes."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, load_from_disk
from PIL import Image as PILImage, ImageDraw

from hf_vitcurate import FEATURES
from hf_vitcurate.distributed import done_chunks
from hf_vitcurate.errors import ConfigError
from hf_vitcurate.results import Split
from hf_vitcurate.stages import necessity, reject

COLORS = ["red", "blue", "green", "yellow"]


def picture(color: str, shape: str) -> bytes:
    im = PILImage.new("RGB", (32, 32), "white")
    d = ImageDraw.Draw(im)
    (d.ellipse if shape == "circle" else d.rectangle)([6, 6, 26, 26], fill=color)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def rows(n: int = 24) -> Dataset:
    out = {k: [] for k in FEATURES}
    for i in range(n):
        color, shape = COLORS[i % 4], ["circle", "square"][i % 2]
        if i % 5 == 4:  # text-only
            conv = [{"from": "human", "value": "Name a colour."}, {"from": "gpt", "value": color}]
            images = []
        else:
            conv = [{"from": "human", "value": "<image>\nWhat colour is the shape?"}, {"from": "gpt", "value": f"It is {color}."}]
            if i % 3 == 0:  # multi-turn
                conv += [{"from": "human", "value": "And its shape?"}, {"from": "gpt", "value": f"A {shape}, " * (1 + i % 4)}]
            images = [{"bytes": picture(color, shape), "path": None}]
        out["id"].append(f"row-{i}")
        out["images"].append(images)
        out["conversations"].append(conv)
        out["source"].append("toy")
        out["task"].append("conversation")
    return Dataset.from_dict(out, features=FEATURES)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from hf_vitcurate.testing import tiny_checkpoint

    ds = rows()
    return tiny_checkpoint(ds, output_dir=str(tmp_path_factory.mktemp("tiny")), image_size=32, patch_size=8,
                           vision_layers=1, text_layers=1)


def reference_nll(ckpt: str, ds: Dataset) -> tuple[list[float], list[int]]:
    """Straightforward: one row at a time, full logits, log-softmax, sum over answer tokens."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from hf_vitcurate.models.chat import encode, model_inputs

    model = AutoModelForImageTextToText.from_pretrained(ckpt).eval()
    processor = AutoProcessor.from_pretrained(ckpt)
    sums, counts = [], []
    for i in range(len(ds)):
        batch = encode(processor, ds[i : i + 1])
        with torch.no_grad():
            logits = model(**model_inputs(batch, model)).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        labels = batch["labels"][0]
        total, count = 0.0, 0
        for t in range(1, len(labels)):
            if labels[t] != -100:
                total -= logp[t - 1, labels[t]].item()
                count += 1
        sums.append(total)
        counts.append(count)
    return sums, counts


def test_equals_per_row_computation(ckpt, tmp_path):
    ds = rows()
    scored = necessity(ds, model=ckpt, batch_size=5, chunk_size=7, work_dir=str(tmp_path / "w"))
    sums, counts = reference_nll(ckpt, ds)
    assert list(scored["necessity_tokens"]) == counts
    assert np.allclose(list(scored["necessity"]), sums, atol=1e-4, rtol=1e-5)
    assert list(scored["id"]) == list(ds["id"]) and set(scored["necessity_flag"]) == {""}
    mean = necessity(ds, model=ckpt, reduction="mean", batch_size=4)
    assert np.allclose(list(mean["necessity"]), np.array(sums) / np.array(counts), atol=1e-5)
    loglik = necessity(ds, model=ckpt, sign="loglik", batch_size=8)
    assert np.allclose(list(loglik["necessity"]), -np.array(sums), atol=1e-4)


def test_bfloat16_weights_score_close_to_float32(ckpt):
    """bf16 weights (GPUs, CPUs with AVX512-BF16) change the scores by rounding only; the ranking holds."""
    ds = rows()
    full = np.array(list(necessity(ds, model=ckpt, batch_size=8, dtype="float32")["necessity"]))
    half = np.array(list(necessity(ds, model=ckpt, batch_size=8, dtype="bfloat16")["necessity"]))
    assert np.allclose(half, full, rtol=0.05, atol=0.05)
    assert np.corrcoef(half, full)[0, 1] > 0.99


def test_truncation_is_flagged_and_empty_rows_get_nan(ckpt):
    ds = rows(6)
    scored = necessity(ds, model=ckpt, batch_size=3, max_length=30)
    flags = list(scored["necessity_flag"])
    assert "truncated" in flags or "no_response_tokens" in flags
    for f, v, t in zip(flags, scored["necessity"], scored["necessity_tokens"]):
        assert (f == "no_response_tokens") == (t == 0) and (t == 0) == math.isnan(v)
    split = reject(scored, where="necessity_flag", values=["no_response_tokens"])
    assert isinstance(split, Split)
    kept, rejected = split
    assert len(kept) + len(rejected) == len(ds)
    assert list(rejected["reject_reason"]) == ["no_response_tokens"] * flags.count("no_response_tokens")
    assert "truncated" not in set(rejected["necessity_flag"])  # only the values asked for are rejected


def test_bad_options():
    with pytest.raises(ValueError, match="reduction"):
        necessity(rows(2), model="unused", reduction="max")
    with pytest.raises(ValueError, match="sign"):
        necessity(rows(2), model="unused", sign="plus")


@pytest.mark.slow
def test_two_cpu_processes_equal_one(ckpt, tmp_path, free_port):
    ds = rows()
    ds.save_to_disk(str(tmp_path / "pool"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    one = tmp_path / "one"
    subprocess.run([sys.executable, "-m", "hf_vitcurate.cli", "score", "necessity", str(tmp_path / "pool"), "--model", ckpt,
                    "--output", str(one), "--batch-size", "4", "--chunk-size", "5", "--work-dir", str(tmp_path / "w1"),
                    "--dtype", "float32"],
                   env=env, check=True, capture_output=True)
    two = tmp_path / "two"
    run = subprocess.run(["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port),
                          "-m", "hf_vitcurate.cli", "score", "necessity", str(tmp_path / "pool"), "--model", ckpt,
                          "--output", str(two), "--batch-size", "3", "--chunk-size", "5", "--work-dir", str(tmp_path / "w2")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "w2").iterdir() if p.is_dir()) == ["rank-00000", "rank-00001"]
    a, b = load_from_disk(str(one)), load_from_disk(str(two))
    assert np.allclose(list(a["necessity"]), list(b["necessity"]), atol=1e-4)
    assert len(done_chunks(str(tmp_path / "w2"))) == 5


def with_long_rows(ds: Dataset, n_long: int) -> Dataset:
    """``ds`` and ``n_long`` text-only rows whose answer starts past 200 tokens."""
    long = {k: [] for k in FEATURES}
    for i in range(n_long):
        long["id"].append(f"long-{i}")
        long["images"].append([])
        long["conversations"].append([{"from": "human", "value": "Name a colour. " * 40}, {"from": "gpt", "value": "red"}])
        long["source"].append("toy")
        long["task"].append("conversation")
    from datasets import concatenate_datasets

    return concatenate_datasets([ds, Dataset.from_dict(long, features=FEATURES)])


def test_mllm_selector_sets_rows_without_answer_tokens_aside(ckpt, tmp_path):
    from hf_vitcurate import select

    pool = with_long_rows(rows(20), 4)  # short rows hold <= 43 tokens, the long ones ~200
    recipe = {"seed": 3, "max_steps": 1, "batch_size": 2}  # a recipe holding seed is fine
    result = select.mllm_selector(pool, n=10, model=ckpt, work_dir=tmp_path, n_seed=2, k=5, max_length=64,
                                  recipe=recipe, sign="loglik", dtype="float32", batch_size=4)
    selection, manifest = result
    set_aside = result.set_aside
    assert len(selection) == manifest["n_selected"] == 10
    assert manifest["n_set_aside"] == len(set_aside) and manifest["set_aside"] == {"no_response_tokens": len(set_aside)}
    long_in_rest = [i for i in result.scored["id"] if i.startswith("long-")]
    assert sorted(set_aside["id"]) == sorted(long_in_rest) and len(long_in_rest) >= 3  # 4 long rows, 2 seed draws
    assert set(set_aside["reject_reason"]) == {"no_response_tokens"}
    assert set(selection["id"]).isdisjoint(set_aside["id"])
    assert manifest["n_pool"] == manifest["n_selected"] + manifest["n_set_aside"] + manifest["n_not_selected"]
    step = [s for s in __import__("hf_vitcurate").provenance.steps(selection) if s["name"] == "mllm_selector"][-1]
    assert step["params"]["set_aside"] == {"no_response_tokens": len(set_aside)}
    assert step["params"]["max_length"] == 64 and step["params"]["sign"] == "loglik" and step["params"]["dtype"] == "float32"
    # sign="loglik": the drawn rows carry the negated losses (Eq. 3 as printed).
    drawn = [v for v, f in zip(selection["necessity"], selection["necessity_flag"]) if f != "seed"]
    assert drawn and all(v < 0 for v in drawn)


def test_mllm_selector_recipe_defaults_to_the_tiny_preset_for_tiny_checkpoints(ckpt, tmp_path, monkeypatch):
    from hf_vitcurate import models, select
    from hf_vitcurate.models.recipes import recipe_preset
    from hf_vitcurate.select.revolion_driver import default_recipe

    # a folder that is not a tiny checkpoint gets no preset (training it is refused earlier now:
    # models.cache fingerprints the base model first)
    assert default_recipe(ckpt) == recipe_preset("tiny") and default_recipe(tmp_path) == {}
    seen = []

    def train(ds, *, model, output_dir, restart=False, fingerprint=None, **recipe):
        seen.append(recipe)
        raise RuntimeError("stop after training was asked")

    monkeypatch.setattr("hf_vitcurate.models.training.train", train)  # what models.cache.train_or_reuse calls
    monkeypatch.setenv("HF_VITCURATE_TINY_CACHE", "0")
    for model, recipe, expected in [(ckpt, None, {**recipe_preset("tiny"), "seed": 5}),
                                    (ckpt, {"epochs": 1.0, "seed": 9}, {"epochs": 1.0, "seed": 9})]:
        with pytest.raises(RuntimeError, match="stop after"):
            select.mllm_selector(rows(8), n=4, model=model, work_dir=tmp_path / "w", seed=5, recipe=recipe)
        assert seen[-1] == expected


def test_mllm_selector_cli_passes_sign_max_length_and_dtype(monkeypatch, tmp_path, capsys):
    from hf_vitcurate import select
    from hf_vitcurate.cli import main

    import functools

    import hf_vitcurate.commands.select as cmd

    seen = {}

    @functools.wraps(select.mllm_selector)  # the flags come from the real signature
    def fake(ds, **options):
        seen.update(options)
        raise ConfigError("stop here")  # a user error: the CLI prints it and exits

    monkeypatch.setitem(cmd.METHODS, "mllm-selector", cmd.METHODS["mllm-selector"].__class__(
        **{**cmd.METHODS["mllm-selector"].__dict__, "fn": fake}))
    Dataset.from_dict({"id": ["a", "b"]}).save_to_disk(str(tmp_path / "pool"))
    base = ["select", "mllm-selector", str(tmp_path / "pool"), "--n", "1", "--model", "m", "--work-dir", str(tmp_path),
            "--output", str(tmp_path / "out")]
    def stops(argv):  # the CLI reports the error (exit status or SystemExit), never returns 0
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        assert code not in (0, None)

    stops([*base, "--sign", "loglik", "--max-length", "64", "--dtype", "float32"])
    assert (seen["sign"], seen["max_length"], seen["dtype"]) == ("loglik", 64, "float32")
    stops(base)
    assert (seen["sign"], seen["max_length"], seen["dtype"], seen["recipe"]) == ("nll", 2048, "auto", None)


def test_batches_follow_true_token_lengths(ckpt):
    """Batches are cut from rows sorted by their encoded length (image tokens included), so no
    batch holds a row longer than a row of an earlier batch; characters + 100 per image did not."""
    from transformers import AutoProcessor

    from hf_vitcurate.models.chat import encode
    from hf_vitcurate.models.batching import row_lengths, token_batches
    from hf_vitcurate.stages.necessity import plan_batches, token_lengths

    ds = rows(12)
    data = ds[:]
    # a text-only row of many characters but fewer tokens than the image rows
    data["conversations"][4] = [{"from": "human", "value": "What colour is the shape? " * 4}, {"from": "gpt", "value": "red"}]
    processor = AutoProcessor.from_pretrained(ckpt)
    lengths = token_lengths(processor, data)
    assert lengths.tolist() == [encode(processor, {k: [v[i]] for k, v in data.items()})["input_ids"].shape[1]
                                for i in range(12)]
    batches = plan_batches(processor, data, batch_size=4)
    assert sorted(np.concatenate(batches).tolist()) == list(range(12))
    for a, b in zip(batches, batches[1:]):
        assert lengths[a].min() >= lengths[b].max()
    def padding(plan):
        return 1 - lengths.sum() / sum(len(b) * lengths[b].max() for b in plan)

    assert padding(batches) < padding(token_batches(row_lengths(data), 4))
    budget = plan_batches(processor, data, batch_size=12, max_batch_tokens=3 * int(lengths.max()))
    assert all(len(b) * lengths[b].max() <= 3 * lengths.max() for b in budget)
    assert len(budget[-1]) > len(budget[0])  # short rows share larger batches


def test_scores_do_not_depend_on_batching(ckpt):
    """Batch size, token budget and repeat runs change the scores by float noise only."""
    ds = rows()
    one = np.array(list(necessity(ds, model=ckpt, batch_size=1)["necessity"]))
    eight = necessity(ds, model=ckpt, batch_size=8)
    budget = np.array(list(necessity(ds, model=ckpt, batch_size=24, max_batch_tokens=200)["necessity"]))
    again = np.array(list(necessity(ds, model=ckpt, batch_size=8)["necessity"]))
    assert np.allclose(np.array(list(eight["necessity"])), one, rtol=1e-5, atol=0)
    assert np.allclose(budget, one, rtol=1e-5, atol=0)
    assert np.array_equal(again, np.array(list(eight["necessity"])))
    from hf_vitcurate import provenance

    assert provenance.last_step(eight, "necessity")["params"]["max_batch_tokens"] is None


def test_bad_batching_options():
    for options in ({"batch_size": 0}, {"max_batch_tokens": 0}, {"max_batch_tokens": 2.5}):
        with pytest.raises(ConfigError, match=next(iter(options))):
            necessity(rows(2), model="unused", **options)


def test_cli_passes_max_batch_tokens(ckpt, tmp_path, capsys):
    from hf_vitcurate.cli import main

    ds = rows(6)
    ds.save_to_disk(str(tmp_path / "pool"))
    out = tmp_path / "out.parquet"
    assert main(["score", "necessity", str(tmp_path / "pool"), "--model", ckpt, "--max-batch-tokens", "120",
                 "--output", str(out)]) == 0
    out_text = capsys.readouterr().out
    assert json.loads(out_text[out_text.index("{"):])["rows"] == 6
    try:  # the flag reaches the stage: a zero budget is the stage's ConfigError
        code = main(["score", "necessity", str(tmp_path / "pool"), "--model", ckpt, "--max-batch-tokens", "0",
                     "--output", str(tmp_path / "bad.parquet")])
    except SystemExit as exit_:
        code = exit_.code
    assert code not in (0, None) and "max-batch-tokens must be a positive" in capsys.readouterr().err


def test_lm_head_sees_each_rows_answer_tokens_only(ckpt):
    """The LM head gets one hidden state per scored token of the batch, not the union of the rows'
    answer positions times the batch size; sums equal row-at-a-time within float noise."""
    from hf_vitcurate.models.chat import encode
    from hf_vitcurate.models.loading import load
    from hf_vitcurate.models.loss import row_nll

    model, processor = load(ckpt, dtype="float32", device="cpu")
    data = rows(6)[:]
    batch = encode(processor, data)
    seen = []
    hook = model.get_output_embeddings().register_forward_hook(lambda _m, args, _o: seen.append(args[0].shape[:-1].numel()))
    try:
        sums, counts = row_nll(model, batch)
    finally:
        hook.remove()
    assert seen == [int((batch["labels"][:, 1:] != -100).sum())]
    alone = [row_nll(model, encode(processor, {k: [v[i]] for k, v in data.items()})) for i in range(6)]
    assert np.allclose(sums.numpy(), [float(s[0]) for s in alone], rtol=1e-5, atol=1e-6)
    assert counts.tolist() == [int(c[1][0]) for c in alone]


def test_encoding_ahead_gives_the_same_scores_and_flags(ckpt):
    """On a GPU each batch is encoded while the previous one runs (models.batching.ahead); forced on
    here, the scores, truncation and a row failing alone come out exactly as encoded in turn."""
    from hf_vitcurate.models.loading import load
    from hf_vitcurate.stages.necessity import score_rows

    ds = rows(14)
    data = ds.select_columns(["images", "conversations"])[:]
    data["conversations"][3] = [{"from": "human", "value": None}, {"from": "gpt", "value": "x"}]  # fails to encode
    model, processor = load(ckpt)
    model.eval()
    runs = [score_rows(model, processor, data, batch_size=4, max_length=40, strict=False, ahead=ahead)
            for ahead in (False, True, True)]
    assert runs[0]["flag"][3].startswith("model_error: ") and "truncated" in runs[0]["flag"]
    for run in runs[1:]:
        assert run["flag"] == runs[0]["flag"] and run["tokens"] == runs[0]["tokens"]
        assert run["nll"] == runs[0]["nll"]


def test_ahead_raises_a_batchs_error_at_its_own_get_and_makes_other_positions_at_once():
    from hf_vitcurate.models.batching import ahead

    made = []

    def make(idx):
        made.append(idx.tolist())
        if 5 in idx:
            raise ValueError("row 5 is bad")
        return idx.tolist()

    batches = [np.array([0, 1]), np.array([4, 5]), np.array([2, 3])]
    with ahead(batches, make) as get:
        assert get(batches[0]) == [0, 1]
        with pytest.raises(ValueError, match="row 5 is bad"):
            get(batches[1])
        assert get(np.array([4])) == [4]  # a retry alone: made now, not ahead
        assert get(batches[2]) == [2, 3]
    assert sorted(made) == [[0, 1], [2, 3], [4], [4, 5]]  # each made once (the thread and a retry may interleave)
