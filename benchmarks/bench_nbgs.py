"""NBGS speed against the strongest simple baseline: vectorised numpy, in the same run, interleaved.

    python benchmarks/bench_nbgs.py --rows 1000000 --repeats 7
    python benchmarks/bench_nbgs.py --rows 10000000 --repeats 3

The baseline is what a user writes with numpy for the same selection: one ``np.lexsort``
by (score descending, id ascending), groups of k consecutive rows, largest-remainder
quotas, per group ``rng.choice(size=quota, replace=False, p=softmax(s / tau))``, then
``ds.select`` of the drawn rows. ``nbgs`` does the same and also returns the manifest (all
drawn ids and their sha256) and provenance. Each repeat runs both, in alternating order, on
the same in-memory pool (scores ~ N(100, 30), string ids); printed: the median and range of
each and the ratio baseline / nbgs per repeat (median and range), as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np
import pyarrow as pa
from datasets import Dataset

from hf_vitcurate.select.nbgs import default_k, largest_remainder, nbgs


def numpy_baseline(ds: Dataset, *, n: int, k: int, tau: float, seed: int) -> Dataset:
    """NBGS as a user writes it with numpy: lexsort, then ``rng.choice`` with softmax weights per group."""
    table = ds.data
    scores = table.column("necessity").to_numpy()
    ids = table.column("id").to_numpy(zero_copy_only=False)
    order = np.lexsort((ids, -scores))  # last key first: score descending, then id
    sizes = np.array([min(k, len(order) - start) for start in range(0, len(order), k)])
    quotas = largest_remainder(n, sizes)
    rng = np.random.default_rng(seed)
    drawn = []
    for g, q in enumerate(quotas):
        members = order[g * k : g * k + sizes[g]]
        s = scores[members] / tau
        p = np.exp(s - s.max())
        drawn.append(members[rng.choice(len(members), size=q, replace=False, p=p / p.sum())])
    return ds.select(np.sort(np.concatenate(drawn)))


def pool(rows: int) -> Dataset:
    scores = np.random.default_rng(0).normal(100, 30, rows)
    ids = pa.array([f"row-{i:09d}" for i in range(rows)])
    return Dataset(pa.table({"id": ids, "necessity": scores}))


def spread(values: list[float], digits: int = 3) -> dict:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--fraction", type=float, default=0.25)
    ap.add_argument("--tau", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    ds = pool(args.rows)
    n, k = round(args.fraction * args.rows), default_k(args.rows)
    runs = {
        "nbgs": lambda: nbgs(ds, n=n, k=k, tau=args.tau, seed=0),
        "numpy_baseline": lambda: numpy_baseline(ds, n=n, k=k, tau=args.tau, seed=0),
    }
    for run in runs.values():  # warm-up: imports, first allocations
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.repeats):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):  # alternate who goes first
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
    ratios = [b / a for a, b in zip(times["nbgs"], times["numpy_baseline"])]
    print(json.dumps({"rows": args.rows, "n": n, "k": k, "groups": math.ceil(args.rows / k), "tau": args.tau,
                      "repeats": args.repeats, "seconds": {name: spread(t) for name, t in times.items()},
                      "ratio_baseline_over_nbgs": spread(ratios, 2)}, indent=1))


if __name__ == "__main__":
    main()
