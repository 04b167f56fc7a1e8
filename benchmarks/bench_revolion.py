"""REVO-LION on ShapesWorld: answer-generation throughput, and does S1 keep fewer degraded rows than S2?

    python benchmarks/bench_revolion.py generation --rows 256
    python benchmarks/bench_revolion.py effect --images 200 --epochs 4 --work-dir runs/bench_revo

``generation``: :func:`hf_vitcurate.stages.generate` (length-sorted batches, KV cache,
sharded runner) vs ``models.generate.generate_answers`` with ``batch_size=1`` (one
``model.generate`` call per row), same tiny checkpoint, same greedy answers (checked).

``effect``: the tune-cross-evaluation over ShapesWorld's training sources (each source
one protocol dataset, rows exploded to single turns; ``_truth`` is removed before the
method runs and joined back by id only to measure), then the share of degraded rows
(hallucination / leak / duplicate) in the pool and in S1 vs S2 at each portion P
(``--fraction``). With
``--train-eval``, a tiny model is also fine-tuned on the S1 and the S2 selection and
scored on the ShapesWorld benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def generation(args) -> dict:
    from datasets import concatenate_datasets

    from hf_vitcurate import explode_turns
    from hf_vitcurate.columns import list_column
    from hf_vitcurate.models import generate_answers
    from hf_vitcurate.testing import tiny_checkpoint
    from hf_vitcurate.models.loading import set_threads
    from hf_vitcurate.stages.generate import generate
    from hf_vitcurate.synthetic import shapesworld

    set_threads(args.threads)
    dd = shapesworld(args.images, 0)
    pool = concatenate_datasets([explode_turns(dd[k]) for k in dd if k != "benchmark"])
    rows = pool.shuffle(seed=0).select(range(min(args.rows, len(pool))))
    work = tempfile.mkdtemp(prefix="bench-gen-")
    ckpt = tiny_checkpoint(pool, output_dir=os.path.join(work, "tiny"))
    t0 = time.perf_counter()
    out = generate(rows, model=ckpt, column="answer", max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                   work_dir=os.path.join(work, "chunks"))
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = generate_answers(rows, model=ckpt, max_new_tokens=args.max_new_tokens, batch_size=1, progress=False)
    t_single = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(list_column(out, "answer"), single))
    res = {"rows": len(rows), "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
           "threads": args.threads, "batched_rows_per_s": len(rows) / t_batched,
           "batch1_rows_per_s": len(rows) / t_single, "ratio": t_single / t_batched, "same_answers": same}
    print(json.dumps(res, indent=2))
    return res


def effect(args) -> dict:
    from datasets import concatenate_datasets

    from hf_vitcurate import explode_turns
    from hf_vitcurate.columns import list_column
    from hf_vitcurate.testing import tiny_checkpoint
    from hf_vitcurate.models.loading import set_threads
    from hf_vitcurate.select.revolion import s1, s2
    from hf_vitcurate.select.revolion_driver import default_recipe, tune_cross_evaluate
    from hf_vitcurate.synthetic import shapesworld

    set_threads(args.threads)
    dd = shapesworld(args.images, args.seed)
    names = args.datasets or [k for k in dd if k != "benchmark"]
    sources, truth = {}, {}
    for name in names:
        ds = explode_turns(dd[name])
        truth.update(zip(list_column(ds, "id"), list_column(ds, "_truth")))
        sources[name] = ds.remove_columns([c for c in ds.column_names if c.startswith("_")])
    os.makedirs(args.work_dir, exist_ok=True)
    base = os.path.join(args.work_dir, "base")
    if not os.path.isfile(os.path.join(base, "config.json")):
        tiny_checkpoint(concatenate_datasets([s.select_columns(["conversations"]) for s in sources.values()]), output_dir=base)
    recipe = default_recipe(base) or {"train_parts": ("vision", "projector", "language"), "learning_rate": 2e-3,
                                      "batch_size": 16, "warmup_ratio": 0.05, "progress": False}
    recipe = {**recipe, "epochs": args.epochs}
    if args.pretrain_epochs:  # LLaVA stage 1 on the captions: the vision tower learns what is in the images
        from hf_vitcurate.models import pretrain

        pre = os.path.join(args.work_dir, "pretrained")
        if not os.path.isfile(os.path.join(pre, "train_log.json")):
            pretrain(dd["captions"], model=base, output_dir=pre, train_parts=("vision", "projector", "language"),
                     learning_rate=2e-3, epochs=args.pretrain_epochs, batch_size=16, progress=False)
        base = pre
    t0 = time.perf_counter()
    result = tune_cross_evaluate(sources, model=base, work_dir=args.work_dir, recipe=recipe,
                                 max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=args.seed)
    pool, cross = result
    wall = time.perf_counter() - t0

    def shares(ds) -> dict:
        labels = [truth[i] for i in list_column(ds, "id")]
        n = max(1, len(labels))
        out = {k: sum(t == k for t in labels) / n for k in ("hallucination", "leak", "duplicate")}
        out["degraded"] = sum(t != "clean" for t in labels) / n
        return out

    res = {"images": args.images, "datasets": {k: len(v) for k, v in sources.items()}, "epochs": args.epochs,
           "pretrain_epochs": args.pretrain_epochs, "wall_seconds": round(wall, 1), "trained": cross["trained"],
           "dq": dict(zip(result.dq.names, map(float, result.dq.dq))), "pool": shares(pool), "by_fraction": {}}
    for fraction in args.fraction:
        a, _ = s1(pool, fraction=fraction, by=cross["by"])
        s2_shares = [shares(s2(pool, fraction=fraction, seed=s, by=cross["by"])[0]) for s in range(args.s2_seeds)]
        mean_s2 = {k: sum(x[k] for x in s2_shares) / len(s2_shares) for k in s2_shares[0]}
        std_s2 = {k: (sum((x[k] - mean_s2[k]) ** 2 for x in s2_shares) / max(1, len(s2_shares) - 1)) ** 0.5
                  for k in s2_shares[0]}
        res["by_fraction"][str(fraction)] = {"rows": len(a), "s1": shares(a), "s2_mean": mean_s2, "s2_std": std_s2}
        if args.train_eval:
            from hf_vitcurate.models import train
            from hf_vitcurate.synthetic.evaluate import evaluate

            scores = {}
            for tag, sub in (("s1", a), ("s2", s2(pool, fraction=fraction, seed=0, by=cross["by"])[0])):
                ck = train(sub, model=base, output_dir=os.path.join(args.work_dir, f"sel-{tag}-{fraction}"), **recipe)
                scores[tag] = evaluate(model=ck, max_new_tokens=16, progress=False)["average"]
            res["by_fraction"][str(fraction)]["benchmark_average"] = scores
    print(json.dumps(res, indent=2))
    print(result.dq.to_markdown())
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    g = sub.add_parser("generation")
    g.add_argument("--images", type=int, default=40)
    g.add_argument("--rows", type=int, default=256)
    g.add_argument("--max-new-tokens", type=int, default=32)
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("effect")
    e.add_argument("--images", type=int, default=200)
    e.add_argument("--datasets", nargs="*", default=None)
    e.add_argument("--epochs", type=float, default=4.0)
    e.add_argument("--pretrain-epochs", type=float, default=0.0)
    e.add_argument("--max-new-tokens", type=int, default=48)
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--fraction", type=float, nargs="*", default=[0.5, 0.7], help="portions P of S1 and S2")
    e.add_argument("--s2-seeds", type=int, default=20)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--train-eval", action="store_true")
    e.add_argument("--work-dir", default="runs/bench_revolion")
    for p in (g, e):
        p.add_argument("--json", default=None)
    args = ap.parse_args()
    res = generation(args) if args.what == "generation" else effect(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
