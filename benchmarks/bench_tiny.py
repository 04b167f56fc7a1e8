"""Time ``testing.train_tiny`` on the demo pool: cold (empty cache), warm (cache filled), and another checkout.

Each measurement is a fresh process (imports included in ``total_s``, not in ``train_tiny_s``),
run as the demo calls it: ``pool_and_truth(160)``, validated and tagged, captions = its caption rows.
Rounds are interleaved (baseline, cold, warm, baseline, ...), so load changes hit every variant
alike. Besides seconds it records the signal the methods need: the tower's held-out per-cell
accuracy (``vision_pretraining.json``) and f_pre's last caption loss.

Command (the RESULTS.md figures; ``OLD`` a ``git archive`` of an earlier commit's ``hf_vitcurate``):
    python benchmarks/bench_tiny.py --rounds 3 --baseline-src OLD
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(work_dir: str) -> dict:
    """One build in this process (the child's job): seconds and signal."""
    t0 = time.perf_counter()
    from hf_vitcurate import validate
    from hf_vitcurate.stages import concepts, leakage, yes_no
    from hf_vitcurate.synthetic import pool_and_truth
    from hf_vitcurate.testing import train_tiny

    pool, _ = pool_and_truth(160, seed=0)
    tagged = leakage(yes_no(concepts(validate(pool)[0])))
    captions = tagged.filter(lambda t: t == "caption", input_columns="task")
    t1 = time.perf_counter()
    f_pre = train_tiny(tagged, work_dir=work_dir, seed=0, captions=captions, progress=False)
    t2 = time.perf_counter()
    with open(os.path.join(work_dir, "tiny", "vision_pretraining.json")) as f:
        vision = json.load(f)
    with open(os.path.join(f_pre, "train_log.json")) as f:
        log = json.load(f)
    return {"train_tiny_s": round(t2 - t1, 1), "prep_s": round(t1 - t0, 1), "tower_accuracy": vision["held_out"],
            "caption_loss": log["history"][-1]["loss"], "load": round(os.getloadavg()[0], 1)}


def child(src: str, cache: str, work_dir: str) -> dict:
    """A fresh process on the package at ``src`` with the cache folder ``cache``."""
    env = {**os.environ, "PYTHONPATH": src, "HF_VITCURATE_CACHE": cache, "HF_VITCURATE_QUIET": "1"}
    t = time.perf_counter()
    run = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", work_dir], env=env, cwd=src,
                         capture_output=True, text=True, check=True)
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "total_s": round(time.perf_counter() - t, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--baseline-src", default=None, help="a folder holding another version's hf_vitcurate package")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return 0
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    tmp = tempfile.mkdtemp(prefix="bench_tiny-")
    warm_cache = os.path.join(tmp, "warm-cache")
    child(ROOT, warm_cache, os.path.join(tmp, "prefill"))
    variants = {"cold": lambda r: child(ROOT, os.path.join(tmp, f"cold-cache{r}"), os.path.join(tmp, f"cold{r}")),
                "warm": lambda r: child(ROOT, warm_cache, os.path.join(tmp, f"warm{r}"))}
    if args.baseline_src:
        variants = {"baseline": lambda r: child(args.baseline_src, os.path.join(tmp, f"base-cache{r}"),
                                                os.path.join(tmp, f"base{r}")), **variants}
    runs: dict[str, list] = {k: [] for k in variants}
    for r in range(args.rounds):
        for name, run in variants.items():
            runs[name].append(run(r))
            print(name, r, json.dumps(runs[name][-1]), file=sys.stderr)
    summary = {}
    for name, rs in runs.items():
        secs = [x["train_tiny_s"] for x in rs]
        summary[name] = {"train_tiny_s": [min(secs), statistics.median(secs), max(secs)],
                         "tower_shape_accuracy": [x["tower_accuracy"]["shape"] for x in rs],
                         "caption_loss": [x["caption_loss"] for x in rs], "load": [x["load"] for x in rs]}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
