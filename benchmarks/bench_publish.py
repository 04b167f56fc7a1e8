"""``hub.publish`` against ``Dataset.to_parquet`` of the same rows: time and peak memory.

Builds a text-only dataset in the canonical schema (1M rows by default: ``images`` empty,
two turns, a ``source``, a float ``sq`` score) as a memory-mapped Arrow file, then runs,
interleaved, ``--repeats`` times, each in a fresh subprocess:

- ``publish``: ``hub.publish(DatasetDict({"train": ds}), ..., local_dir=...)``: shards
  byte-identical to push_to_hub's, the ``sq`` histogram, ``curation.json`` (ids and content
  hashes), the card;
- ``to_parquet``: ``ds.to_parquet(path)``, the strongest simple baseline (what a user
  writes to get Parquet files, no card, no hashes, no plot);
- ``push_to_hub_writer`` (with ``--modes``): push_to_hub's own shard writer
  (``map(embed_table_storage, keep_in_memory=True)`` then ``to_parquet``, no upload).

Time: the call only (imports and loading excluded). Memory: the child's peak resident set
(``ru_maxrss``, imports and the memory-mapped pages it read included) and its rise over
the level after loading (``VmHWM`` minus ``VmRSS`` before the call).

Usage:
    python benchmarks/bench_publish.py --rows 1000000 --repeats 5
    python benchmarks/bench_publish.py --rows 200000 --repeats 1 --modes publish,to_parquet,push_to_hub_writer
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def build(path: str, rows: int, batch: int = 100_000) -> None:
    """Write ``rows`` canonical text rows to an Arrow file with datasets' ArrowWriter, batch by batch."""
    import numpy as np
    import pyarrow as pa
    from datasets import Value
    from datasets.arrow_writer import ArrowWriter

    from hf_vitcurate.schema import FEATURES

    features = FEATURES.copy()
    features["sq"] = Value("float32")
    schema = features.arrow_schema
    rng = np.random.default_rng(0)
    words = np.array(["the", "a", "red", "blue", "green", "small", "large", "circle", "square", "triangle", "left", "right", "above", "below", "of", "is"])
    with ArrowWriter(features=features, path=path) as writer:
        for start in range(0, rows, batch):
            n = min(batch, rows - start)
            idx = np.arange(start, start + n)
            q = [" ".join(w) + "?" for w in words[rng.integers(0, len(words), (n, 8))]]
            a = [" ".join(w) + "." for w in words[rng.integers(0, len(words), (n, 14))]]
            values = pa.array([x for pair in zip(q, a) for x in pair])
            roles = pa.array(["human", "gpt"] * n)
            turns = pa.StructArray.from_arrays([roles, values], names=["from", "value"])
            conv = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), turns)
            images = pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)),
                                              pa.array([], type=schema.field("images").type.value_type))
            table = pa.table({
                "id": pa.array([f"row-{i:08d}" for i in idx]),
                "images": images,
                "conversations": conv,
                "source": pa.array(np.where(idx % 3 == 0, "shapes_conv", "shapes_vqa")),
                "task": pa.array(np.where(idx % 2 == 0, "conversation", "short_vqa")),
                "sq": pa.array(rng.random(n).astype("float32")),
            }).cast(schema)
            writer.write_table(table)


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def child(data: str, out: str, mode: str) -> None:
    """Runs in the measured subprocess: load (memory-mapped), write, print time and memory as JSON."""
    import resource

    from datasets import Dataset, DatasetDict

    from hf_vitcurate.hub import layout, publish

    ds = Dataset.from_file(data)
    before = _status()
    start = time.perf_counter()
    if mode == "publish":
        publish(DatasetDict({"train": ds}), "bench/text", local_dir=out)
    elif mode == "to_parquet":
        os.makedirs(os.path.join(out, "data"), exist_ok=True)
        ds.to_parquet(os.path.join(out, "data", "train.parquet"))
    else:  # push_to_hub's shard writer (Dataset._push_parquet_shards_to_hub_single), without the upload
        from datasets.table import embed_table_storage

        n = layout.num_shards_for(ds, "500MB")
        batch = layout.get_writer_batch_size_from_features(ds.features) or layout.get_writer_batch_size_from_data_size(
            len(ds), ds._estimate_nbytes())
        os.makedirs(os.path.join(out, "data"), exist_ok=True)
        for i in range(n):
            shard = ds.shard(num_shards=n, index=i, contiguous=True).with_format("arrow")
            shard = shard.map(embed_table_storage, batched=True, batch_size=batch, keep_in_memory=True)
            shard.to_parquet(os.path.join(out, "data", f"train-{i:05d}-of-{n:05d}.parquet"), batch_size=batch)
    elapsed = time.perf_counter() - start
    after = _status()
    mb = 1 << 20
    print(json.dumps({"mode": mode, "seconds": round(elapsed, 3),
                      "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                      "rss_before_MB": before["VmRSS"] // mb,
                      "peak_rise_MB": (after["VmHWM"] - before["VmRSS"]) // mb}))


def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def _summary(name: str, xs: list[float], unit: str) -> str:
    return f"{name}: median {statistics.median(xs):.2f}{unit} (min {min(xs):.2f}, max {max(xs):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp dir, removed after)")
    parser.add_argument("--modes", default="publish,to_parquet")
    parser.add_argument("--child", nargs=3, metavar=("DATA", "OUT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    work = args.work or tempfile.mkdtemp(prefix="bench_publish-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, f"text-{args.rows}.arrow")
    modes = args.modes.split(",")
    try:
        if not os.path.exists(data):
            build(data, args.rows)
        print(json.dumps({"rows": args.rows, "arrow_MB": os.path.getsize(data) >> 20}))
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        digests: dict[str, list[str]] = {}
        for _ in range(args.repeats):
            for mode in modes:  # interleaved: a noisy spell hits every writer alike
                out = os.path.join(work, f"out-{mode}")
                shutil.rmtree(out, ignore_errors=True)
                proc = subprocess.run([sys.executable, __file__, "--child", data, out, mode],
                                      check=True, capture_output=True, text=True)
                runs[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                if mode != "to_parquet":
                    shards = sorted(os.listdir(os.path.join(out, "data")))
                    digests[mode] = [_sha256(os.path.join(out, "data", f)) for f in shards]
        for mode, rs in runs.items():
            print(_summary(f"{mode} time", [r["seconds"] for r in rs], " s"), "|",
                  _summary("peak RSS", [r["peak_rss_MB"] for r in rs], " MB"), "|",
                  _summary("rise", [r["peak_rise_MB"] for r in rs], " MB"))
        if "publish" in runs and "to_parquet" in runs:
            t = [p["seconds"] / b["seconds"] for p, b in zip(runs["publish"], runs["to_parquet"])]
            m = [p["peak_rss_MB"] / b["peak_rss_MB"] for p, b in zip(runs["publish"], runs["to_parquet"])]
            print(f"publish/to_parquet time: median {statistics.median(t):.2f}x (per repeat {min(t):.2f}-{max(t):.2f}x); "
                  f"peak RSS: median {statistics.median(m):.2f}x ({min(m):.2f}-{max(m):.2f}x)")
        if len(digests) > 1:
            print(json.dumps({"same_parquet_bytes": len({tuple(d) for d in digests.values()}) == 1}))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
