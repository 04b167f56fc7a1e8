"""What a saved version costs now that it is a copy (not hard links), and what the lock costs.

Publishes a text-only canonical dataset once (``hub.publish``, no version), then, in
interleaved repeats, saves the working tree as a version three ways:

- ``copy``: :func:`hf_vitcurate.hub.versions.snapshot` as it is now (``shutil.copy2`` per file);
- ``link``: the old snapshot, hard links (``os.link`` per file): free, but a link shares the
  file, so editing the working tree edited the version too (the baseline);
- ``lock``: taking and releasing the folder's lock (``locks.hold``), which every publish now adds.

Prints one JSON object: medians with (min, max) over the repeats, the copy's ratio to the
link and to the publish itself, and the bytes a version adds.

Usage:
    python benchmarks/bench_publish_versions.py --rows 500000 --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def dataset(rows: int):
    import numpy as np
    import pyarrow as pa
    from datasets import Dataset

    rng = np.random.default_rng(0)
    words = np.array("the a red blue green circle square triangle left right of on is there how many".split())
    q = [" ".join(words[rng.integers(0, len(words), 8)]) for _ in range(1000)]
    a = [" ".join(words[rng.integers(0, len(words), 14)]) for _ in range(1000)]
    # The row number in each turn keeps Parquet from compressing the shards to nothing.
    conv = [[{"from": "human", "value": f"{q[i % 1000]} {i}"}, {"from": "gpt", "value": f"{a[(i * 7) % 1000]} {i * 31}"}]
            for i in range(rows)]
    return Dataset(pa.table({"id": [f"r{i}" for i in range(rows)], "conversations": conv,
                             "source": ["bench"] * rows, "task": ["conversation"] * rows}))


def link_snapshot(local_dir: str, target: str) -> None:
    """The old snapshot: hard links to the working tree's files."""
    from hf_vitcurate.hub.layout import repo_files

    for rel in repo_files(local_dir):
        dst = os.path.join(target, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.link(os.path.join(local_dir, rel), dst)


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    from datasets.utils.logging import disable_progress_bar

    from hf_vitcurate.hub import publish, versions
    from hf_vitcurate.hub.layout import repo_files
    from hf_vitcurate.locks import hold

    disable_progress_bar()
    ds = dataset(args.rows)
    root = tempfile.mkdtemp(prefix="bench-versions-")
    local = os.path.join(root, "repo")
    t = time.perf_counter()
    publish(ds, "bench/versions", local_dir=local)
    publish_s = time.perf_counter() - t
    repo_bytes = sum(os.path.getsize(os.path.join(local, f)) for f in repo_files(local))
    copy_s, link_s, lock_s = [], [], []
    for r in range(args.repeats):  # interleaved: the machine's noise hits every method alike
        t = time.perf_counter()
        versions.snapshot(local, f"c{r}")
        copy_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        link_snapshot(local, os.path.join(root, f"links{r}"))
        link_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        with hold(local, what="bench"):
            pass
        lock_s.append(time.perf_counter() - t)
        shutil.rmtree(versions.version_dir(local, f"c{r}"))
        shutil.rmtree(os.path.join(root, f"links{r}"))
    print(json.dumps({
        "rows": args.rows, "repeats": args.repeats, "repo_bytes": repo_bytes, "publish_s": round(publish_s, 3),
        "copy_s": spread(copy_s), "link_s": spread(link_s), "lock_s": spread(lock_s),
        "copy_over_link": spread([c / max(lk, 1e-9) for c, lk in zip(copy_s, link_s)]),
        "copy_over_publish": spread([c / publish_s for c in copy_s]),
        "lock_over_publish": spread([lk / publish_s for lk in lock_s]),
        "bytes_added_by_a_version": {"copy": repo_bytes, "link": 0},
    }, indent=2))
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
