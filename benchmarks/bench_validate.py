"""Validation throughput: vectorised ``schema.validate`` vs a per-row Python loop.

Builds N text rows in the canonical schema (1% of them broken in various ways), then
times ``validate`` and a straightforward per-row loop that applies the same rules, on
the same dataset in the same run.

    python benchmarks/bench_validate.py --rows 1000000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa
from datasets import Dataset

from hf_vitcurate import FEATURES, validate


def build(n: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n_turns = rng.integers(1, 4, size=n) * 2
    roles, values, offsets = [], [], [0]
    broken = rng.random(n) < 0.01
    for i in range(n):
        for t in range(n_turns[i]):
            roles.append("human" if t % 2 == 0 else "gpt")
            values.append("What colour is the large square on the left?" if t % 2 == 0 else "It is red, and it sits next to a small blue circle.")
        if broken[i]:
            values[-1] = ""  # empty answer
        offsets.append(len(roles))
    turns = pa.StructArray.from_arrays([pa.array(roles), pa.array(values)], names=["from", "value"])
    conv = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), turns)
    ids = [f"row-{i}" for i in range(n)]
    ids[5] = ids[4]  # one duplicate
    table = pa.table(
        {
            "id": ids,
            "images": pa.array([[]] * n, pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
            "conversations": conv,
            "source": ["bench"] * n,
            "task": ["conversation"] * n,
        }
    )
    return Dataset(table).cast(FEATURES)


def naive(ds: Dataset) -> int:
    """Per-row loop with the same text rules (the baseline a user would write)."""
    seen, bad = set(), 0
    for row in ds.select_columns(["id", "conversations"]):
        conv = row["conversations"]
        ok = bool(row["id"]) and row["id"] not in seen and bool(conv)
        seen.add(row["id"])
        for k, turn in enumerate(conv):
            ok = ok and turn["from"] == ("human" if k % 2 == 0 else "gpt") and bool((turn["value"] or "").strip())
        ok = ok and conv[-1]["from"] == "gpt" if conv else False
        bad += not ok
    return bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--naive-rows", type=int, default=200_000, help="rows for the slow baseline")
    args = ap.parse_args()
    ds = build(args.rows)
    t0 = time.perf_counter()
    kept, rejected = validate(ds)
    t_vec = time.perf_counter() - t0
    sub = ds.select(range(min(args.naive_rows, len(ds))))
    t0 = time.perf_counter()
    naive(sub)
    t_naive = (time.perf_counter() - t0) * len(ds) / len(sub)
    print(f"rows={len(ds)} kept={len(kept)} rejected={len(rejected)}")
    print(f"validate: {t_vec:.2f} s ({len(ds) / t_vec:,.0f} rows/s)")
    print(f"naive loop (extrapolated from {len(sub)} rows): {t_naive:.2f} s")
    print(f"speed-up: {t_naive / t_vec:.1f}x")


if __name__ == "__main__":
    main()
