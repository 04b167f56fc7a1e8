"""Validation throughput: vectorised ``schema.validate`` vs a per-row Python loop; and its image check.

Text rules: builds N text rows in the canonical schema (1% of them broken in various ways),
then times ``validate`` and a straightforward per-row loop that applies the same rules, on
the same dataset in the same run.

    python benchmarks/bench_validate.py --rows 1000000

Image check (``--images N``): N image files (half 640x480 JPEG, half 640x480 PNG, photo-like
noise and gradients, 2% truncated), one row each; times ``validate(check_images="open")``
(reads headers: the default) and ``"verify"`` (decodes every pixel: catches truncated files)
on the same files, interleaved, page cache warm, and prints the ratio and how many
truncated files each caught.

    python benchmarks/bench_validate.py --images 2000 --repeats 5
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


def build_images(n: int, folder: str, seed: int = 0) -> Dataset:
    """N rows, one image file each (JPEG and PNG, 640x480); 2% of the files cut in half."""
    import io
    import os

    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    y, x = np.mgrid[0:480, 0:640]
    paths = []
    for i in range(n):
        base = np.stack([(x + 7 * i) % 256, (y * 2) % 256, (x + y) % 256], axis=-1)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        fmt = "JPEG" if i % 2 == 0 else "PNG"
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt, quality=90) if fmt == "JPEG" else Image.fromarray(img).save(buf, format=fmt)
        data = buf.getvalue()
        if i % 50 == 25:
            data = data[: len(data) // 2]  # truncated
        path = os.path.join(folder, f"{i:06d}.{fmt.lower()}")
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    turns = [[{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "Noise."}]] * n
    rows = {"id": [f"img-{i}" for i in range(n)], "images": [[{"bytes": None, "path": p}] for p in paths],
            "conversations": turns, "source": ["bench"] * n, "task": ["conversation"] * n}
    return Dataset.from_dict(rows, features=FEATURES)


def bench_images(n: int, repeats: int) -> None:
    import statistics
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ds = build_images(n, tmp)
        times: dict[str, list[float]] = {"open": [], "verify": []}
        caught = {}
        validate(ds, check_images="open")  # warm the page cache
        for _ in range(repeats):
            for mode in ("open", "verify"):
                t0 = time.perf_counter()
                _, rejected = validate(ds, check_images=mode)
                times[mode].append(time.perf_counter() - t0)
                caught[mode] = len(rejected)
        med = {m: statistics.median(t) for m, t in times.items()}
        print(f"images={n} truncated={sum(1 for i in range(n) if i % 50 == 25)} repeats={repeats}")
        for m in ("open", "verify"):
            print(f"{m}: median {med[m]:.2f} s (min {min(times[m]):.2f}, max {max(times[m]):.2f}), "
                  f"{n / med[m]:,.0f} images/s, rejected {caught[m]}")
        ratios = [v / o for o, v in zip(times["open"], times["verify"])]
        print(f"verify/open: {med['verify'] / med['open']:.1f}x (per repeat {min(ratios):.1f}-{max(ratios):.1f}x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--naive-rows", type=int, default=200_000, help="rows for the slow baseline")
    ap.add_argument("--images", type=int, default=0, help="time the image check on this many files instead")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.images:
        bench_images(args.images, args.repeats)
        return
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
