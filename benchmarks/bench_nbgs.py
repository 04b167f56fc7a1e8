"""NBGS speed on a large pool: vectorised ``nbgs`` vs a per-group Python loop baseline.

    python benchmarks/bench_nbgs.py --rows 10000000
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pyarrow as pa
from datasets import Dataset

from hf_vitcurate.select.nbgs import largest_remainder, nbgs


def loop_baseline(scores: np.ndarray, ids: list[str], n: int, k: int, tau: float, seed: int) -> list[int]:
    """Straightforward version: Python sort with id ties, then per-group numpy choice with p=softmax."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], ids[i]))
    sizes = np.array([min(k, len(order) - g) for g in range(0, len(order), k)])
    quotas = largest_remainder(n, sizes)
    rng = np.random.default_rng(seed)
    out = []
    for g, q in enumerate(quotas):
        members = np.array(order[g * k : g * k + sizes[g]])
        s = scores[members] / tau
        p = np.exp(s - s.max())
        p /= p.sum()
        out.extend(members[rng.choice(len(members), size=q, replace=False, p=p)].tolist())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--baseline-rows", type=int, default=1_000_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    scores = rng.normal(100, 30, args.rows)
    ids = pa.array([f"row-{i:09d}" for i in range(args.rows)])
    ds = Dataset(pa.table({"id": ids, "necessity": scores}))
    t0 = time.perf_counter()
    sub, man = nbgs(ds, fraction=0.25, tau=1.0, seed=0)
    t_vec = time.perf_counter() - t0
    print(f"nbgs: {args.rows:,} rows -> {len(sub):,} in {t_vec:.2f} s (k={man['params']['k']}, groups={man['n_groups']})")

    nb = args.baseline_rows
    small = Dataset(pa.table({"id": ids[:nb], "necessity": scores[:nb]}))
    t0 = time.perf_counter()
    nbgs(small, n=nb // 4, tau=1.0, seed=0)
    t_vec_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop_baseline(scores[:nb], ids[:nb].to_pylist(), nb // 4, math.ceil(nb / 13), 1.0, 0)
    t_loop = time.perf_counter() - t0
    print(f"on {nb:,} rows: nbgs {t_vec_small:.2f} s, loop baseline {t_loop:.2f} s, ratio {t_loop / t_vec_small:.1f}x")


if __name__ == "__main__":
    main()
