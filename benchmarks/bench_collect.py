"""engine.collect's nearest-neighbour index against brute-force numpy: build, query, memory, recall@10.

    python benchmarks/bench_collect.py --rows 100000 --repeats 3
    python benchmarks/bench_collect.py --rows 1000000 --repeats 1 --methods numpy flat ivf
    python benchmarks/bench_collect.py --rows 100000 --methods numpy ivf hnsw --nprobe 1 4 16 --ef-search 16 64

Vectors: ``--rows`` unit vectors of ``--dim`` float32 in a ``Dataset`` with an ``image_embedding``
column (``--data clustered``: ``--clusters`` Gaussian clusters, closer to image embeddings;
``--data uniform``: uniform on the sphere, the worst case for approximate indexes), and
``--queries`` fresh vectors from the same distribution. Methods, each in its own subprocess
(so its peak RSS, ``VmHWM``, is its own), interleaved over ``--repeats`` with the order rotated:

- ``numpy``: the strongest simple baseline, ``queries @ vectors.T`` over blocks of the base and
  ``np.argpartition`` top-10 per block (memory bounded), no build;
- ``flat``: the package's index, ``engine.collection.build_index`` (exact ``IndexFlatIP`` through
  ``Dataset.add_faiss_index``, as ``collect`` builds it), queried with ``search_batch``;
- ``ivf``: ``build_index(string_factory="IVF<nlist>,Flat")`` (trained on up to 65,536 vectors),
  queried at each ``--nprobe`` (lists visited; several values: one build, one query pass each);
- ``hnsw``: ``build_index(string_factory="HNSW32")``, queried at each ``--ef-search``.

The search settings go through ``engine.collection.set_search_params``, as ``collect(...,
nprobe=, ef_search=)`` sets them.

Printed: JSON (per method median and range of build s, query s, peak RSS, recall@10 against the
numpy top-10, and numpy's query time over the method's, per repeat), then a markdown table.
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

import numpy as np

METHODS = ("numpy", "flat", "ivf", "hnsw")
K = 10


def make_vectors(path: str, rows: int, dim: int, *, data: str, clusters: int, seed: int) -> None:
    """Write ``rows`` unit vectors to ``path`` (.npy), in chunks so memory stays at the output size."""
    # The centres are the same for every seed: the base and the queries share them, the points differ.
    centers = np.random.default_rng(0).standard_normal((clusters, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    for start in range(0, rows, 100_000):
        n = min(100_000, rows - start)
        v = rng.standard_normal((n, dim), dtype=np.float32)
        if data == "clustered":
            # Noise of norm ~0.7 around a unit centre: neighbours mostly share a cluster, as images of one kind do.
            v = centers[rng.integers(0, clusters, n)] + v * (0.7 / np.sqrt(dim))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[start:start + n] = v
    out.flush()
    del out


def numpy_topk(vectors: np.ndarray, queries: np.ndarray, k: int = K, block: int = 65_536) -> np.ndarray:
    """Exact top-k ids by inner product: blocks of the base, argpartition, then a merge per block."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), block):
        s = queries @ vectors[start:start + block].T
        kk = min(k, s.shape[1])
        part = np.argpartition(s, -kk, axis=1)[:, -kk:]  # largest last: no negated copy of the block
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + start], axis=1)
        top = np.argpartition(cand_s, -k, axis=1)[:, -k:]
        best_s, best_i = np.take_along_axis(cand_s, top, axis=1), np.take_along_axis(cand_i, top, axis=1)
    return best_i


def _status_mb(field: str = "VmRSS") -> float:
    """A /proc/self/status figure in MB. ``VmHWM`` (peak RSS) starts afresh at exec and at a reset,
    unlike ru_maxrss, which keeps the parent's peak at the fork."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(method: str, base_path: str, query_path: str, ids_path: str, *, nlist: int, nprobe: list[int],
           ef_search: list[int]) -> dict:
    """One measurement in this process: load the vectors, build (timed), query at each setting
    (timed), save the ids (``ids_path`` with ``{}`` for the setting's label)."""
    import pyarrow as pa
    from datasets import Dataset

    from hf_vitcurate.engine.collection import INDEX, build_index, set_search_params

    vectors, queries = np.load(base_path), np.load(query_path)
    rows, dim = vectors.shape
    ds = Dataset(pa.table({INDEX: pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)}))
    # Loading (np.load, Dataset over the arrow table) has its own transient peak: reset the
    # high-water mark so the peak below is the build's and the queries' (Linux: clear_refs 5).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    rss0 = _status_mb()
    settings = {"ivf": [{"nprobe": n} for n in nprobe], "hnsw": [{"ef_search": e} for e in ef_search]}.get(method, [{}])
    queried = {}
    if method == "numpy":
        build = 0.0
        t0 = time.perf_counter()
        ids = numpy_topk(vectors, queries)
        queried[""] = (time.perf_counter() - t0, ids)
    else:
        factory = {"flat": None, "ivf": f"IVF{nlist},Flat", "hnsw": "HNSW32"}[method]
        t0 = time.perf_counter()
        base, _ = build_index(ds, string_factory=factory)
        build = time.perf_counter() - t0
        for setting in settings:
            set_search_params(base.get_index(INDEX).faiss_index, **setting)
            t0 = time.perf_counter()
            _, ids = base.search_batch(INDEX, queries, k=K)
            queried[" ".join(f"{k}={v}" for k, v in setting.items())] = (time.perf_counter() - t0, ids)
    out = {}
    for label, (query, ids) in queried.items():
        path = ids_path.format(label.replace("=", "").replace(" ", "_"))
        np.save(path, np.asarray(ids, dtype=np.int64))
        out[label] = {"query_s": query, "ids": path}
    peak = _status_mb("VmHWM")
    return {"build_s": build, "settings": out, "peak_rss_mb": peak, "data_rss_mb": rss0}


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def spread(values: list[float], digits: int = 3) -> dict:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def _cell(s: dict, fmt: str = "{:.2f}") -> str:
    if s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def table(summary: dict, queries: int) -> str:
    lines = ["| method | build s | query s | ms/query | recall@10 | peak RSS MB in build+query (RSS before) | "
             "numpy query / method query |", "|---|---|---|---|---|---|---|"]
    for m, s in summary["methods"].items():
        ms = {k: round(v * 1000 / queries, 3) for k, v in s["query_s"].items()}
        lines.append(f"| {m} | {_cell(s['build_s'])} | {_cell(s['query_s'])} | {_cell(ms, '{:.3f}')} | "
                     f"{_cell(s['recall_at_10'], '{:.3f}')} | {s['peak_rss_mb']['median']:.0f} "
                     f"({s['data_rss_mb']['median']:.0f}) | {_cell(s['numpy_over_method_query'])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", choices=("clustered", "uniform"), default="clustered")
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16])
    ap.add_argument("--ef-search", type=int, nargs="+", default=[64])
    ap.add_argument("--worker", nargs=4, metavar=("METHOD", "BASE", "QUERIES", "IDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    opts = {"nlist": args.nlist, "nprobe": args.nprobe, "ef_search": args.ef_search}
    if args.worker:
        print(json.dumps(worker(*args.worker, **opts)))
        return
    methods = ["numpy"] + [m for m in args.methods if m != "numpy"]  # numpy is the truth for recall
    with tempfile.TemporaryDirectory(prefix="bench_collect_") as tmp:
        base_path, query_path = os.path.join(tmp, "base.npy"), os.path.join(tmp, "queries.npy")
        make_vectors(base_path, args.rows, args.dim, data=args.data, clusters=args.clusters, seed=1)
        make_vectors(query_path, args.queries, args.dim, data=args.data, clusters=args.clusters, seed=2)
        runs: dict[str, list[dict]] = {}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                            os.environ.get("PYTHONPATH", "")])}
        for r in range(args.repeats):
            order = methods[r % len(methods):] + methods[:r % len(methods)]  # rotate who goes first
            for m in order:
                ids_path = os.path.join(tmp, f"ids_{m}_{r}_{{}}.npy")
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", m, base_path, query_path,
                                      ids_path, "--nlist", str(args.nlist), "--nprobe", *map(str, args.nprobe),
                                      "--ef-search", *map(str, args.ef_search)], capture_output=True, text=True, env=env)
                if out.returncode:
                    sys.exit(f"{m} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
                got = json.loads(out.stdout.strip().splitlines()[-1])
                for label, res in got.pop("settings").items():  # one row per (method, setting)
                    runs.setdefault(f"{m} {label}".strip(), []).append({**got, **res})
                print(f"repeat {r} {m}: {got['build_s']:.2f} s build", file=sys.stderr, flush=True)
        summary = {"rows": args.rows, "dim": args.dim, "queries": args.queries, "k": K, "data": args.data,
                   "clusters": args.clusters if args.data == "clustered" else None, "repeats": args.repeats, **opts,
                   "methods": {}}
        for m in runs:
            rs = runs[m]
            summary["methods"][m] = {
                "build_s": spread([x["build_s"] for x in rs]), "query_s": spread([x["query_s"] for x in rs]),
                "peak_rss_mb": spread([x["peak_rss_mb"] for x in rs], 0),
                "data_rss_mb": spread([x["data_rss_mb"] for x in rs], 0),
                "recall_at_10": spread([recall(np.load(x["ids"]), np.load(t["ids"])) for x, t in zip(rs, runs["numpy"])]),
                "numpy_over_method_query": spread([t["query_s"] / x["query_s"] for x, t in zip(rs, runs["numpy"])], 2),
            }
    print(json.dumps(summary, indent=1))
    print(table(summary, args.queries))


if __name__ == "__main__":
    main()
