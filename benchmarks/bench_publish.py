"""Publishing a dataset larger than the memory it is allowed: peak memory of ``hub.publish``.

Builds a text-only dataset in the canonical schema (2M rows by default: ``images`` empty,
two turns, a ``source``, a float ``sq`` score) as a memory-mapped Arrow file, then
publishes it in a fresh subprocess and measures that process's memory:

- ``VmHWM``: peak resident set, *including* pages of the memory-mapped Arrow file that
  were read (page cache the kernel can drop at any time, shared with other readers);
- peak ``RssAnon`` (sampled every 10 ms): memory the process itself allocated, which is
  what "does it fit" depends on.

The same run also measures push_to_hub's own shard writer (``map(embed_table_storage,
keep_in_memory=True)`` then ``to_parquet``, shard by shard, no upload), which holds a
whole shard in memory because ``images`` is an Image column, as the baseline.

Usage:
    python benchmarks/bench_publish.py                      # 2M rows
    python benchmarks/bench_publish.py --rows 200000        # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
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
    """Runs in the measured subprocess: load (memory-mapped), publish, print memory as JSON."""
    from datasets import Dataset, DatasetDict

    from hf_vitcurate.hub import layout, publish

    ds = Dataset.from_file(data)
    before = _status()
    peak = {"anon": before["RssAnon"]}
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak["anon"] = max(peak["anon"], _status()["RssAnon"])
            time.sleep(0.01)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    start = time.perf_counter()
    if mode == "publish":
        publish(DatasetDict({"train": ds}), "bench/text-2m", local_dir=out)
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
    done.set()
    t.join()
    after = _status()
    peak["anon"] = max(peak["anon"], after["RssAnon"])
    mb = 1 << 20
    print(json.dumps({"mode": mode, "seconds": round(elapsed, 1),
                      "before_MB": {"rss": before["VmRSS"] // mb, "anon": before["RssAnon"] // mb, "file": before["RssFile"] // mb},
                      "peak_rss_MB": after["VmHWM"] // mb, "peak_anon_MB": peak["anon"] // mb,
                      "peak_rss_increase_MB": (after["VmHWM"] - before["VmRSS"]) // mb,
                      "peak_anon_increase_MB": (peak["anon"] - before["RssAnon"]) // mb}))


def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp dir, removed after)")
    parser.add_argument("--modes", default="publish,push_to_hub_writer")
    parser.add_argument("--child", nargs=3, metavar=("DATA", "OUT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    work = args.work or tempfile.mkdtemp(prefix="bench_publish-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "text.arrow")
    try:
        t0 = time.perf_counter()
        build(data, args.rows)
        from datasets import Dataset

        ds = Dataset.from_file(data)
        sizes = {"rows": len(ds), "arrow_MB": os.path.getsize(data) >> 20, "build_seconds": round(time.perf_counter() - t0, 1)}
        del ds
        print(json.dumps(sizes))
        digests: dict[str, list[str]] = {}
        for mode in args.modes.split(","):
            out = os.path.join(work, f"out-{mode}")
            proc = subprocess.run([sys.executable, __file__, "--child", data, out, mode],
                                  check=True, capture_output=True, text=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            shards = sorted(os.listdir(os.path.join(out, "data")))
            result["parquet_MB"] = sum(os.path.getsize(os.path.join(out, "data", f)) for f in shards) >> 20
            # Below 1 MB of Arrow (a smoke run) the ratio says nothing: left out.
            result["increase_over_arrow_size"] = round(result["peak_rss_increase_MB"] / sizes["arrow_MB"], 3) if sizes["arrow_MB"] else None
            digests[mode] = [_sha256(os.path.join(out, "data", f)) for f in shards]
            print(json.dumps(result))
        if len(digests) > 1:
            print(json.dumps({"same_parquet_bytes": len({tuple(d) for d in digests.values()}) == 1}))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
