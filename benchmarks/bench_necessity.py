"""MLLM-Selector necessity: throughput, padding, memory, and the effect of NBGS on ShapesWorld.

    python benchmarks/bench_necessity.py throughput --images 100      # batched vs naive loop, padding share
    python benchmarks/bench_necessity.py memory --images 60           # peak RSS for a pool and a 10x pool
    python benchmarks/bench_necessity.py effect --images 300          # degraded share of selections at 25%

All parts build a tiny checkpoint (default architecture) on the ShapesWorld pool; the
naive baseline scores one row at a time in pool order (batch size 1, no length sorting),
with the same encoder and loss as the stage.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from datasets import concatenate_datasets


def pool(n_images: int, seed: int = 0, with_truth: bool = False):
    """The validated ShapesWorld pool (ground truth set aside; returned only if asked)."""
    from hf_vitcurate import validate
    from hf_vitcurate.synthetic import pool_and_truth

    ds, truth = pool_and_truth(n_images, seed=seed)
    kept, _ = validate(ds)
    return (kept, truth) if with_truth else kept


def checkpoint(ds, out: str) -> str:
    from hf_vitcurate.models import tiny_checkpoint

    return tiny_checkpoint(out, ds)


def naive(ds, ckpt: str) -> float:
    from hf_vitcurate.models.chat import encode
    from hf_vitcurate.models.loading import load
    from hf_vitcurate.models.loss import row_nll

    model, processor = load(ckpt)
    model.eval()
    t0 = time.perf_counter()
    for i in range(len(ds)):
        row_nll(model, encode(processor, ds[i : i + 1]))
    return time.perf_counter() - t0


def padding_share(ds, ckpt: str, batch_size: int, sort: bool) -> float:
    from hf_vitcurate.models.chat import encode
    from hf_vitcurate.models.loading import load_processor
    from hf_vitcurate.stages.necessity import length_batches, text_length

    processor = load_processor(ckpt)
    rows = ds[:]
    if sort:
        batches = length_batches(text_length(rows), batch_size)
    else:
        batches = [np.arange(i, min(i + batch_size, len(ds))) for i in range(0, len(ds), batch_size)]
    pad = total = 0
    for idx in batches:
        mask = encode(processor, ds[idx.tolist()])["attention_mask"]
        pad += int((mask == 0).sum())
        total += mask.numel()
    return pad / total


def throughput(args) -> dict:
    from hf_vitcurate.stages.necessity import necessity

    torch.set_num_threads(args.threads)
    ds = pool(args.images)
    if args.rows:
        ds = ds.shuffle(seed=0).select(range(min(args.rows, len(ds))))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint(ds, os.path.join(tmp, "tiny"))
        t0 = time.perf_counter()
        necessity(ds, ckpt, batch_size=args.batch_size, out_dir=os.path.join(tmp, "w"))
        t_batched = time.perf_counter() - t0
        t_naive = naive(ds, ckpt)
        pad_sorted = padding_share(ds, ckpt, args.batch_size, sort=True)
        pad_plain = padding_share(ds, ckpt, args.batch_size, sort=False)
    return {
        "rows": len(ds), "batch_size": args.batch_size, "threads": args.threads,
        "batched_rows_per_s": round(len(ds) / t_batched, 1), "naive_rows_per_s": round(len(ds) / t_naive, 1),
        "speedup": round(t_naive / t_batched, 2),
        "padding_share_length_sorted": round(pad_sorted, 4), "padding_share_pool_order": round(pad_plain, 4),
    }


def _memory_child(n_images: int, repeat: int, ckpt: str, out: str) -> None:
    from hf_vitcurate.stages.necessity import necessity

    torch.set_num_threads(1)
    ds = pool(n_images)
    ds = concatenate_datasets([ds] * repeat) if repeat > 1 else ds
    ds = ds.map(lambda b, idx: {"id": [f"{i}-{j}" for i, j in zip(b["id"], idx)]}, batched=True, with_indices=True)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    necessity(ds, ckpt, batch_size=16, out_dir=out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": len(ds), "peak_rss_mb": round(peak / 1024, 1), "rise_mb": round((peak - base) / 1024, 1),
                      "seconds": round(time.perf_counter() - t0, 1)}))


def memory(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint(pool(args.images), os.path.join(tmp, "tiny"))
        out = {}
        for repeat in (1, 10):
            cmd = [sys.executable, __file__, "_memory_child", str(args.images), str(repeat), ckpt, os.path.join(tmp, f"w{repeat}")]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out[f"x{repeat}"] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def effect(args) -> dict:
    """Degraded share (``_truth``, measurement only) of NBGS vs baselines at a 25% budget."""
    from hf_vitcurate.models import tiny_recipe, train
    from hf_vitcurate.select import baselines
    from hf_vitcurate.select.mllm_selector import mllm_selector
    from hf_vitcurate.synthetic import degraded_share

    ds, truth = pool(args.images, with_truth=True)
    budget = len(ds) // 4
    with tempfile.TemporaryDirectory() as tmp:
        base = checkpoint(ds, os.path.join(tmp, "tiny"))
        # f_pre: the tiny model trained briefly on the whole pool stands in for a pretrained MLLM.
        f_pre = train(base, ds, os.path.join(tmp, "f_pre"), **tiny_recipe())
        res = mllm_selector(ds, budget, f_pre, os.path.join(tmp, "mllm"), seed=0, train_recipe=tiny_recipe())
        scored = res["scored"]
        n2 = budget - len(res["seed_rows"])
        shares = {"pool": degraded_share(ds, truth), "nbgs(seed+drawn)": degraded_share(res["selection"], truth)}
        for name, (sub, _) in {
            "random": baselines.random(scored, n2, seed=0), "top": baselines.top(scored, n2), "bottom": baselines.bottom(scored, n2),
        }.items():
            shares[name + "(drawn only)"] = degraded_share(sub, truth)
        shares["nbgs(drawn only)"] = degraded_share(res["selection"].select(range(len(res["seed_rows"]), budget)), truth)
    return {"rows": len(ds), "budget": budget, "degraded_share": {k: round(v, 4) for k, v in shares.items()}}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_memory_child":
        _memory_child(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["throughput", "memory", "effect"])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--rows", type=int, default=400, help="throughput: rows scored by both methods")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    result = {"throughput": throughput, "memory": memory, "effect": effect}[args.part](args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
