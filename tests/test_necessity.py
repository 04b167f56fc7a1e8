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
