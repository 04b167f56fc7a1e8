"""What verifying finished chunks costs on resume: full sha256 against reading the parquet footer.

``distributed.check_chunk`` hashes every finished chunk before a resume reuses it. This
measures that choice on chunks shaped like the model stages' outputs (``--chunk-size`` rows):
necessity (row index, score, token count, flag) and generate (row index, a ~300-character
answer). Each repeat, interleaved, times over all chunk files (1) reading each parquet footer
and its row count (the cheap baseline: catches truncation, not a corrupt page), (2) the
file's sha256 (what ``check_chunk`` does), (3) ``check_chunk`` itself (marker, size, sha256).
Reported per chunk and scaled to a 665k-row run.

Usage:
    python benchmarks/bench_chunk_verify.py                      # 200 chunks of 512 rows, 7 repeats
    python benchmarks/bench_chunk_verify.py --chunks 1300 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hf_vitcurate.distributed import ROW, _write_chunk, check_chunk, file_sha256


def tables(kind: str, n: int, rng) -> pa.Table:
    rows = pa.array(np.arange(n), pa.int64())
    if kind == "necessity":
        return pa.table({ROW: rows, "necessity": rng.random(n) * 300, "necessity_tokens": rng.integers(1, 500, n).astype("int32"),
                         "necessity_flag": [""] * n})
    answers = ["".join(chr(97 + x) for x in rng.integers(0, 26, 300)) for _ in range(n)]
    return pa.table({ROW: rows, "answer": answers, "answer_flag": [""] * n})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunks", type=int, default=200)
    p.add_argument("--chunk-size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    scale = 665_000 / args.chunk_size
    for kind in ("necessity", "generate"):
        folder = tempfile.mkdtemp()
        table = tables(kind, args.chunk_size, rng)
        paths = [os.path.join(folder, "rank-00000", f"chunk-{c:05d}.parquet") for c in range(args.chunks)]
        for c, path in enumerate(paths):
            _write_chunk(path, table, 0, args.chunk_size)
        ways = {"footer + row count (baseline)": lambda q: pq.ParquetFile(q).metadata.num_rows,
                "sha256": file_sha256, "check_chunk": lambda q: check_chunk(q, 0, args.chunk_size)}
        times: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(args.repeats):
            for name, fn in ways.items():  # interleaved: load changes hit every way alike
                t0 = time.perf_counter()
                for path in paths:
                    fn(path)
                times[name].append((time.perf_counter() - t0) / args.chunks)
        base = times["footer + row count (baseline)"]
        size = os.path.getsize(paths[0])
        print(f"{kind}: {size / 1024:.0f} KiB a chunk of {args.chunk_size} rows")
        for name, ts in times.items():
            ratios = [t / b for t, b in zip(ts, base)]
            print(f"  {name:32s} {statistics.median(ts) * 1e6:7.0f} us/chunk  665k rows: {statistics.median(ts) * scale:5.2f} s"
                  f"  ratio {statistics.median(ratios):.2f} ({min(ratios):.2f}, {max(ratios):.2f})")


if __name__ == "__main__":
    main()
