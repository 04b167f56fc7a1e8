"""Identity costs: ``model_fingerprint`` with and without its hash cache, ``data_fingerprint`` by rows.

Model: a checkpoint folder whose weight file holds ``--size-mb`` MiB. Each repeat, interleaved,
times (1) a plain ``hashlib.sha256`` of the folder's files (what any content fingerprint pays
without a cache; the baseline), (2) ``model_fingerprint`` with an empty hash cache, (3) it
again with the cache filled. Data: ``data_fingerprint`` of ``--rows`` LLaVA-like rows (image
paths and a two-turn conversation) against hashing each row's JSON (the per-row hashing the
REVO-LION driver used before).

Usage:
    python benchmarks/bench_identity.py                         # 1 GiB weights, 200k rows
    python benchmarks/bench_identity.py --size-mb 4096 --rows 665000 --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time

from datasets import Dataset

from hf_vitcurate import identity


def checkpoint(folder: str, size_mb: int) -> str:
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model_type": "llava"}, f)
    block = os.urandom(1 << 20)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        for _ in range(size_mb):
            f.write(block)
    past = time.time() - 3600  # settled files are the ones the cache keeps
    for name in os.listdir(folder):
        os.utime(os.path.join(folder, name), (past, past))
    return folder


def plain_sha256(folder: str) -> str:
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
    return h.hexdigest()


def rows(n: int) -> Dataset:
    return Dataset.from_dict({
        "images": [[f"coco/train2017/{i:012d}.jpg"] for i in range(n)],
        "conversations": [[{"from": "human", "value": f"<image>\nWhat is in picture {i}?"},
                           {"from": "gpt", "value": f"A photo with {i % 7} people and a dog on a bench."}]
                          for i in range(n)],
    })


def per_row_json(ds: Dataset) -> str:
    h = hashlib.sha256()
    for batch in ds.with_format("arrow").iter(batch_size=10_000):
        for img, conv in zip(batch.column("images").to_pylist(), batch.column("conversations").to_pylist()):
            h.update(json.dumps([img, conv], sort_keys=True).encode())
    return h.hexdigest()


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def summary(name: str, times: list[float], base: list[float]) -> str:
    ratios = [t / b for t, b in zip(times, base)]
    return (f"{name:<34} median {statistics.median(times):8.4f} s (min {min(times):.4f}, max {max(times):.4f});"
            f" ratio to baseline {statistics.median(ratios):.4f} (min {min(ratios):.4f}, max {max(ratios):.4f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[identity.CACHE_ENV] = os.path.join(tmp, "cache")
        folder = checkpoint(os.path.join(tmp, "ckpt"), args.size_mb)
        cache = os.path.join(tmp, "cache", identity.HASH_CACHE)
        plain, cold, warm = [], [], []
        for _ in range(args.repeats):
            plain.append(timed(plain_sha256, folder))
            if os.path.exists(cache):
                os.remove(cache)
            cold.append(timed(identity.model_fingerprint, folder))
            warm.append(timed(identity.model_fingerprint, folder))
        print(f"model folder, {args.size_mb} MiB of weights, {args.repeats} interleaved repeats")
        print(summary("plain sha256 (baseline)", plain, plain))
        print(summary("model_fingerprint, empty cache", cold, plain))
        print(summary("model_fingerprint, cache filled", warm, plain))
        ds = rows(args.rows)
        ds.to_parquet(os.path.join(tmp, "rows.parquet"))
        ds = Dataset.from_parquet(os.path.join(tmp, "rows.parquet"))  # on disk, as a loaded pool is
        base, content = [], []
        for _ in range(args.repeats):
            base.append(timed(per_row_json, ds))
            content.append(timed(identity.data_fingerprint, ds, ["images", "conversations"]))
        print(f"data, {args.rows:,} rows (image paths + two turns), {args.repeats} interleaved repeats")
        print(summary("per-row JSON sha256 (baseline)", base, base))
        print(summary("data_fingerprint", content, base))


if __name__ == "__main__":
    main()
