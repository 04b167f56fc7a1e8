"""Loading with bad lines: what the byte check, the line pass and the image-root check cost.

Writes a LLaVA JSON Lines file of N rows (image paths into one folder of real files), and a
copy with one malformed line in the middle. Each loader runs in its own fresh subprocess
with an empty ``HF_DATASETS_CACHE`` (imports not timed), interleaved, ``--repeats`` times:

- ``load_dataset``: ``datasets.load_dataset("json")`` on the clean file (the read alone);
- ``old load_vit`` (with ``--old SRC``, a checkout of the package before this change): the
  clean file, no byte check and no image-root check;
- ``load_vit``: the clean file (byte check, fast path, image-root check);
- ``load_vit, 1 bad line``: the copy, ``errors="reject"`` (fast path fails, line pass,
  fast path on the cleaned copy).

    python benchmarks/bench_faults.py --rows 100000 --repeats 3 --old /tmp/old_src
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

# (imports, timed call): imports are not timed.
CODE = {
    "load_dataset": ("from datasets import load_dataset", "load_dataset('json', data_files=PATH, split='train')"),
    "load_vit": ("from hf_vitcurate import load_vit", "load_vit(PATH)"),
    "old load_vit": ("from hf_vitcurate import load_vit", "load_vit(PATH)"),
    "load_vit, 1 bad line": ("from hf_vitcurate import load_vit", "load_vit(PATH, errors='reject')"),
}


def write(folder: str, n: int) -> tuple[str, str]:
    images = os.path.join(folder, "coco")
    os.makedirs(images)
    for i in range(min(n, 20_000)):
        open(os.path.join(images, f"{i:012d}.jpg"), "wb").close()
    clean, bad = os.path.join(folder, "pool.jsonl"), os.path.join(folder, "pool_bad.jsonl")
    with open(clean, "w") as f, open(bad, "w") as g:
        for i in range(n):
            rec = {"id": f"{i:09d}", "image": f"coco/{i % 20_000:012d}.jpg", "conversations": [
                {"from": "human", "value": "<image>\nWhat is the man on the left holding, and why?"},
                {"from": "gpt", "value": "He is holding a red umbrella, because it is raining over the street."}]}
            text = json.dumps(rec)
            f.write(text + "\n")
            g.write((text[:40] if i == n // 2 else text) + "\n")
    return clean, bad


def run(name: str, path: str, src: str) -> float:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "HF_DATASETS_CACHE": cache, "PYTHONPATH": src, "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
        imports, call = CODE[name]
        code = f"import time; {imports}; PATH = {path!r}; t0 = time.perf_counter(); ds = {call}; print(time.perf_counter() - t0)"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old", default=None, help="a folder holding the package before this change (for 'old load_vit')")
    args = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as folder:
        clean, bad = write(folder, args.rows)
        plan = [("load_dataset", clean, here), ("load_vit", clean, here), ("load_vit, 1 bad line", bad, here)]
        if args.old:
            plan.insert(1, ("old load_vit", clean, args.old))
        times: dict[str, list[float]] = {name: [] for name, _, _ in plan}
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            for name, path, src in plan:
                times[name].append(run(name, path, src))
        print(f"rows={args.rows} repeats={args.repeats} file={os.path.getsize(clean) / 2**20:.0f} MiB ({time.perf_counter() - t0:.0f} s in all)")
        base = statistics.median(times["load_dataset"])
        for name, values in times.items():
            med = statistics.median(values)
            print(f"{name}: median {med:.2f} s (min {min(values):.2f}, max {max(values):.2f}), {med / base:.2f}x load_dataset")


if __name__ == "__main__":
    main()
