"""ShapesWorld generation: rows/s and peak RSS as the pool grows 10×.

Each measurement runs in a fresh subprocess (so peak RSS is its own) with an empty
cache directory (so nothing is reused). ``chunked`` is :func:`shapesworld` (images
encoded once into a memory-mapped table, sources streamed with ``from_generator``);
``in_memory`` is the naive baseline on the same rows: every row built in a Python
list, then ``Dataset.from_list``.

Usage:
    python benchmarks/bench_shapesworld.py                 # 1,300 and 13,000 images (~10k and ~105k rows)
    python benchmarks/bench_shapesworld.py --sizes 500 5000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
mode, n, cache = sys.argv[1], int(sys.argv[2]), sys.argv[3]
from hf_vitcurate.synthetic import shapesworld
from hf_vitcurate.synthetic.sources import SOURCES, SOURCE_FEATURES, DEFAULT_ROWS_PER_IMAGE, DEFAULT_DEGRADE, image_table, _source_rows, _code_version
t = time.perf_counter()
if mode == "chunked":
    dd = shapesworld(n, seed=0, cache_dir=cache, benchmark_images=0)
    rows = sum(len(d) for d in dd.values())
else:
    from datasets import Dataset
    images = image_table(n, seed=0, cache_dir=cache)
    files = "|".join(f["filename"] for f in images.cache_files)
    out = {}
    for name in SOURCES:
        rows_list = list(_source_rows(name, n, 0, 64, DEFAULT_ROWS_PER_IMAGE[name], DEFAULT_DEGRADE.get(name, {}),
                                      "confusion", 20.0, files, _code_version()))
        out[name] = rows_list  # held, as a naive build would, until every source is done
    dd = {k: Dataset.from_list(v, features=SOURCE_FEATURES) for k, v in out.items()}
    rows = sum(len(d) for d in dd.values())
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mode": mode, "n_images": n, "rows": rows, "seconds": round(dt, 1), "rows_per_s": round(rows / dt), "peak_rss_mb": round(rss)}))
"""


def measure(mode: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(n), cache], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1300, 13000])
    parser.add_argument("--modes", nargs="+", default=["chunked", "in_memory"])
    args = parser.parse_args()
    print("| mode | images | rows | seconds | rows/s | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for mode in args.modes:
        for n in args.sizes:
            r = measure(mode, n)
            print(f"| {r['mode']} | {r['n_images']:,} | {r['rows']:,} | {r['seconds']} | {r['rows_per_s']:,} | {r['peak_rss_mb']} |", flush=True)


if __name__ == "__main__":
    main()
