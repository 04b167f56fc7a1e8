"""Tiny models: training and generation throughput of the default tiny architecture.

    python benchmarks/bench_models.py speed [--seed 0] [--out DIR]

``speed``: a tiny checkpoint (``hf_vitcurate.testing.tiny_checkpoint``) on 1,600 clean
ShapesWorld rows, 60 training steps at batch 16 with one and with two threads (rows per
second from ``train_log.json``), then greedy answers to 400 benchmark rows (rows per second).
Times depend on the machine's load, which is printed with them.

The tiny-model studies (the clean-vs-degraded gap, binding, language-model pretraining) are
in ``research/`` (``python -m research.bench_models gap``; results in research/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def speed(args) -> dict:
    from hf_vitcurate.models import generate_answers, train
    from hf_vitcurate.synthetic import benchmark, training_pool
    from hf_vitcurate.testing import tiny_checkpoint

    out = args.out or tempfile.mkdtemp(prefix="bench_models-")
    pool = training_pool("clean", 1600, seed=args.seed)
    base = tiny_checkpoint(pool, output_dir=os.path.join(out, "base"))
    res = {}
    for threads in (1, 2):
        path = train(pool, model=base, output_dir=os.path.join(out, f"ft{threads}"), max_steps=60, batch_size=16,
                     num_threads=threads, progress=False, restart=True)
        with open(os.path.join(path, "train_log.json")) as f:
            res[f"train_rows_per_s_{threads}t"] = json.load(f)["rows_per_second"]
    bench = benchmark(100, seed=1234)
    t = time.time()
    generate_answers(bench, model=path, max_new_tokens=48, batch_size=64, progress=False, num_threads=1)
    res["generate_rows_per_s"] = round(len(bench) / (time.time() - t), 1)
    res["load_average"] = os.getloadavg()[0]
    print(json.dumps(res, indent=2))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["speed"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    {"speed": speed}[args.what](args)


if __name__ == "__main__":
    main()
