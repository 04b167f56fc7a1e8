"""MLLM-Selector necessity: throughput, padding, memory, and the effect of NBGS on ShapesWorld.

    python benchmarks/bench_necessity.py throughput --images 300 --rows 2000 --threads 2 --procs 2
    python benchmarks/bench_necessity.py memory --images 60           # peak RSS for a pool and a 10x pool
    python benchmarks/bench_necessity.py effect --images 4000         # 25% budget: NBGS vs random/top/bottom

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
    from hf_vitcurate.testing import tiny_checkpoint

    return tiny_checkpoint(ds, output_dir=out)


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


def forward_only(ds, ckpt: str, batch_size: int) -> dict:
    """Seconds of encoding and of model forward alone, at batch 1 and at ``batch_size``.

    Separates what batching can win (per-call overhead) from what it cannot (FLOPs): when
    the per-row forward time is the same at both batch sizes the model is compute-bound.
    """
    from hf_vitcurate.models.chat import encode
    from hf_vitcurate.models.loading import load
    from hf_vitcurate.models.loss import row_nll

    model, processor = load(ckpt)
    model.eval()
    out = {}
    for bs in (1, batch_size):
        t0 = time.perf_counter()
        batches = [encode(processor, ds[i : i + bs]) for i in range(0, len(ds), bs)]
        t1 = time.perf_counter()
        with torch.inference_mode():
            for b in batches:
                row_nll(model, b)
        out[f"encode_s_batch{bs}"] = round(t1 - t0, 2)
        out[f"forward_s_batch{bs}"] = round(time.perf_counter() - t1, 2)
    return out


def padding_share(ds, ckpt: str, batch_size: int, sort: bool) -> float:
    from hf_vitcurate.models.chat import encode
    from hf_vitcurate.models.loading import load_processor
    from hf_vitcurate.models.batching import row_lengths, token_batches

    processor = load_processor(ckpt)
    rows = ds[:]
    if sort:
        batches = token_batches(row_lengths(rows), batch_size)
    else:
        batches = [np.arange(i, min(i + batch_size, len(ds))) for i in range(0, len(ds), batch_size)]
    pad = total = 0
    for idx in batches:
        mask = encode(processor, ds[idx.tolist()])["attention_mask"]
        pad += int((mask == 0).sum())
        total += mask.numel()
    return pad / total


def _launched(ds_dir: str, ckpt: str, out: str, procs: int, dtype: str, batch_size: int) -> float:
    """Wall seconds of ``vitcurate score necessity`` under ``accelerate launch`` (N CPU processes, 1 thread each)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", str(procs), "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "hf_vitcurate.cli", "score", "necessity",
           ds_dir, "--model", ckpt, "--output", out, "--batch-size", str(batch_size), "--dtype", dtype]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0


def throughput(args) -> dict:
    """The stage vs a naive loop on the same rows and checkpoint, in one run.

    In-process (``--threads`` torch threads): naive fp32 batch-1 loop; the stage in fp32 and
    in bf16. With ``--procs N`` also the stage as users run it on a whole machine:
    ``accelerate launch`` with N CPU processes of one thread, bf16, timed end to end (process
    start and model load included) and net of a 16-row launch of the same command.
    """
    from hf_vitcurate.stages.necessity import necessity

    torch.set_num_threads(args.threads)
    ds = pool(args.images)
    if args.rows:
        ds = ds.shuffle(seed=0).select(range(min(args.rows, len(ds))))
    res = {"rows": len(ds), "batch_size": args.batch_size, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint(ds, os.path.join(tmp, "tiny"))
        t_naive = naive(ds, ckpt)
        res["naive_rows_per_s"] = round(len(ds) / t_naive, 1)
        for dtype in ("float32", "bfloat16"):
            t0 = time.perf_counter()
            necessity(ds, model=ckpt, batch_size=args.batch_size, work_dir=os.path.join(tmp, f"w-{dtype}"), dtype=dtype)
            t = time.perf_counter() - t0
            res[f"stage_{dtype}_rows_per_s"] = round(len(ds) / t, 1)
            res[f"speedup_{dtype}"] = round(t_naive / t, 2)
        if args.procs > 1:
            ds_dir = os.path.join(tmp, "rows")
            ds.save_to_disk(ds_dir)
            small_dir = os.path.join(tmp, "small")
            ds.select(range(16)).save_to_disk(small_dir)
            t_small = _launched(small_dir, ckpt, os.path.join(tmp, "o-small"), args.procs, "bfloat16", args.batch_size)
            t_all = _launched(ds_dir, ckpt, os.path.join(tmp, "o-all"), args.procs, "bfloat16", args.batch_size)
            res[f"launch_{args.procs}procs_bf16_wall_s"] = round(t_all, 1)
            res[f"launch_{args.procs}procs_startup_s"] = round(t_small, 1)
            res[f"speedup_launch_{args.procs}procs_bf16_end_to_end"] = round(t_naive / t_all, 2)
            res[f"speedup_launch_{args.procs}procs_bf16_net_of_startup"] = round(t_naive / max(1e-9, t_all - t_small), 2)
        res.update(forward_only(ds, ckpt, args.batch_size))
        res["padding_share_length_sorted"] = round(padding_share(ds, ckpt, args.batch_size, sort=True), 4)
        res["padding_share_pool_order"] = round(padding_share(ds, ckpt, args.batch_size, sort=False), 4)
    res["naive_seconds"] = round(t_naive, 1)
    return res


def _memory_child(n_images: int, repeat: int, ckpt: str, out: str) -> None:
    from hf_vitcurate.stages.necessity import necessity

    torch.set_num_threads(1)
    ds = pool(n_images)
    ds = concatenate_datasets([ds] * repeat) if repeat > 1 else ds
    ds = ds.map(lambda b, idx: {"id": [f"{i}-{j}" for i, j in zip(b["id"], idx)]}, batched=True, with_indices=True)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    necessity(ds, model=ckpt, batch_size=16, work_dir=out)
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


def _train_and_score(start: str, rows, out: str, seed: int) -> dict:
    """Stage 2 on one selection from ``start`` and its benchmark scores (own process, one thread)."""
    from hf_vitcurate.models import train
    from hf_vitcurate.testing import tiny_recipe
    from hf_vitcurate.synthetic.evaluate import evaluate

    path = train(rows, model=start, output_dir=out, **tiny_recipe(seed=seed, num_threads=1, progress=False))
    return evaluate(model=path, progress=False, num_threads=1)


def effect(args) -> dict:
    """NBGS vs random / top / bottom at a 25% budget: degraded share and benchmark of a model trained on each.

    Every selection has the same rows budget: MLLM-Selector's seed rows (which trained
    f_seed) plus ``budget - n_seed`` rows drawn from the scored rest by NBGS or by a baseline
    (random, highest or lowest necessity). A tiny model is fine-tuned from the same f_pre
    on each selection (``tiny_recipe``, two at a time, one thread each) and scored on the
    fixed benchmark. The degraded share reads ``_truth`` (measurement only).
    """
    from concurrent.futures import ProcessPoolExecutor

    from hf_vitcurate.testing import tiny_recipe, train_tiny
    from hf_vitcurate.select import baselines
    from hf_vitcurate.select.mllm_selector import mllm_selector
    from hf_vitcurate.synthetic import degraded_share

    ds, truth = pool(args.images, seed=args.seed, with_truth=True)
    budget = len(ds) // 4
    out = args.out or tempfile.mkdtemp(prefix="bench_necessity-")
    t = time.time()
    f_pre = train_tiny(ds, work_dir=os.path.join(out, "models"), seed=args.seed)
    res = mllm_selector(ds, n=budget, model=f_pre, work_dir=os.path.join(out, "mllm"), seed=args.seed,
                        recipe=tiny_recipe())
    select_s = time.time() - t
    scored, seed_rows = res.scored, res.seed_rows
    n_drawn = budget - len(seed_rows)
    seed_part = seed_rows.select_columns(["id", "images", "conversations", "source", "task"])

    def with_seed(drawn):
        return concatenate_datasets([seed_part, drawn.select_columns(seed_part.column_names)])

    selections = {"nbgs": res.dataset.select_columns(seed_part.column_names)}
    for name, (drawn, _) in {"random": baselines.random_subset(scored, n=n_drawn, seed=args.seed),
                             "top": baselines.top(scored, n=n_drawn),
                             "bottom": baselines.bottom(scored, n=n_drawn)}.items():
        selections[name] = with_seed(drawn)
    t = time.time()
    with ProcessPoolExecutor(2) as ex:
        futures = {name: ex.submit(_train_and_score, f_pre, sel, os.path.join(out, f"stage2_{name}"), args.seed)
                   for name, sel in selections.items()}
        scores = {name: f.result() for name, f in futures.items()}
    train_s = time.time() - t
    keys = ["average", "judgement", "multiple_choice", "short_vqa", "caption"]
    table = {name: {"rows": len(sel), "degraded_share": round(degraded_share(sel, truth), 4),
                    **{k: round(scores[name].get(k, float("nan")), 1) for k in keys}}
             for name, sel in selections.items()}
    print(f"\npool {len(ds)} rows (degraded share {degraded_share(ds, truth):.4f}), budget {budget} "
          f"= {len(seed_rows)} seed + {n_drawn} drawn; out {out}\n")
    print("| selection | rows | degraded share | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 3) + "|")
    for name, row in table.items():
        print(f"| {name} | {row['rows']} | {row['degraded_share']:.3f} | " + " | ".join(f"{row[k]:.1f}" for k in keys) + " |")
    return {"rows": len(ds), "budget": budget, "n_seed": len(seed_rows), "pool_degraded_share": round(degraded_share(ds, truth), 4),
            "selections": table, "seconds": {"select": round(select_s), "train_and_score": round(train_s)}, "out": out}


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
    ap.add_argument("--procs", type=int, default=1, help="throughput: also time accelerate launch with N CPU processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="effect: keep the models and selections here")
    args = ap.parse_args()
    result = {"throughput": throughput, "memory": memory, "effect": effect}[args.part](args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
