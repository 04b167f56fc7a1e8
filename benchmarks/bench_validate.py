"""Validation throughput: ``schema.validate`` against the strongest simple baseline; and its image check.

Text rules: builds N text rows in the canonical schema (``--bad`` of them broken: an empty
answer, a missing source, a last turn from the human, an unknown role, rotating; one
duplicate id) as ONE Arrow chunk (``--chunk`` rows per chunk otherwise), then times, on
the same dataset, interleaved, ``--repeats`` times:

- ``validate``: vectorised checks, kept rows a selection, rejected rows with reasons;
- the baseline a user would write: every column to Python once (``to_pylist()``), then
  one loop applying the same rules in the same order (first failing rule wins), giving a
  reason per row; checked to agree with ``validate`` row for row.

    python benchmarks/bench_validate.py --rows 1000000 --repeats 3
    python benchmarks/bench_validate.py --rows 300000 --chunk 1000    # same rows, 1000-row chunks

Image check (``--images N``): N image files (half 640x480 JPEG, half 640x480 PNG, photo-like
noise and gradients, 2% truncated), one row each; times ``validate(check_images="open")``
(reads headers: the default) and ``"verify"`` (decodes every pixel: catches truncated files)
on the same files, interleaved, page cache warm, and prints the ratio and how many
truncated files each caught.

    python benchmarks/bench_validate.py --images 2000 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pyarrow as pa
from datasets import Dataset

from hf_vitcurate import FEATURES, validate
from hf_vitcurate.schema import IMAGE_TOKEN, check


def build(n: int, *, bad: float = 0.01, chunk: int = 0, seed: int = 0) -> Dataset:
    """N canonical text rows, 1-3 exchanges each, a share ``bad`` broken; one Arrow chunk unless ``chunk``."""
    rng = np.random.default_rng(seed)
    n_turns = rng.integers(1, 4, size=n) * 2
    broken = np.flatnonzero(rng.random(n) < bad)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(n_turns, out=offsets[1:])
    pos = np.arange(offsets[-1]) - np.repeat(offsets[:-1], n_turns)
    roles = np.where(pos % 2 == 0, "human", "gpt").astype(object)
    values = np.where(pos % 2 == 0, "What colour is the large square on the left?",
                      "It is red, and it sits next to a small blue circle.").astype(object)
    source = np.full(n, "bench", dtype=object)
    kinds = ("empty_answer", "missing_source", "last_not_gpt", "unknown_role")
    for k, i in enumerate(broken):
        kind, last = kinds[k % len(kinds)], offsets[i + 1] - 1
        if kind == "empty_answer":
            values[last] = ""
        elif kind == "missing_source":
            source[i] = ""
        elif kind == "last_not_gpt":
            roles[last] = "human"
        else:
            roles[offsets[i]] = "assistant"
    turns = pa.StructArray.from_arrays([pa.array(roles, pa.string()), pa.array(values, pa.string())], names=["from", "value"])
    ids = np.array([f"row-{i}" for i in range(n)], dtype=object)
    ids[5] = ids[4]  # one duplicate
    image = FEATURES["images"].feature.pa_type
    table = pa.table({
        "id": pa.array(ids, pa.string()),
        "images": pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], image)),
        "conversations": pa.ListArray.from_arrays(pa.array(offsets), turns),
        "source": pa.array(source, pa.string()),
        "task": pa.array(np.full(n, "conversation", dtype=object), pa.string()),
    }, schema=FEATURES.arrow_schema)
    if chunk:
        table = pa.Table.from_batches(table.to_batches(max_chunksize=chunk))
    return Dataset(table.combine_chunks() if not chunk else table)


def _blank(s) -> bool:
    return s is None or not s.strip()


def _row_reason(rid, seen, source, task, conv, n_images) -> str:
    """The first rule row breaks, as ``validate`` orders them (``""``: passes)."""
    if _blank(rid):
        return "missing_id"
    if rid in seen:
        return "duplicate_id"
    if _blank(source):
        return "missing_source"
    if _blank(task):
        return "missing_task"
    if not conv:
        return "empty_conversation"
    if any(t["from"] is None or t["value"] is None for t in conv):
        return "non_text_value"
    if any(t["from"] not in ("human", "gpt") for t in conv):
        return "unknown_role"
    if conv[0]["from"] != "human":
        return "first_not_human"
    if any(t["from"] != ("human" if k % 2 == 0 else "gpt") for k, t in enumerate(conv)):
        return "not_alternating"
    if conv[-1]["from"] != "gpt":
        return "last_not_gpt"
    if any(t["from"] == "human" and not t["value"].strip() for t in conv):
        return "empty_question"
    if any(t["from"] == "gpt" and not t["value"].strip() for t in conv):
        return "empty_answer"
    if sum(t["value"].count(IMAGE_TOKEN) for t in conv) != n_images:
        return "image_placeholder_mismatch"
    return ""


def baseline(ds: Dataset) -> list[str]:
    """The strongest simple baseline: columns to Python once, one loop, same rules and order."""
    table = ds.with_format("arrow")[:]
    ids, sources, tasks = (table.column(c).to_pylist() for c in ("id", "source", "task"))
    convs, images = table.column("conversations").to_pylist(), table.column("images").to_pylist()
    seen, out = set(), []
    for rid, source, task, conv, imgs in zip(ids, sources, tasks, convs, images):
        out.append(_row_reason(rid, seen, source, task, conv or [], len(imgs or [])))
        seen.add(rid if rid is not None else "")
    return out


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


def _spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f})"


def bench_text(rows: int, *, bad: float, chunk: int, repeats: int) -> None:
    ds = build(rows, bad=bad, chunk=chunk)
    times: dict[str, list[float]] = {"validate": [], "baseline": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        kept, rejected = validate(ds)
        times["validate"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reasons = baseline(ds)
        times["baseline"].append(time.perf_counter() - t0)
    assert reasons == list(check(ds)), "baseline and validate give different reasons"
    assert len(rejected) == sum(1 for r in reasons if r)
    layout = f"{chunk}-row chunks" if chunk else "one chunk"
    print(f"rows={len(ds):,} ({layout}) kept={len(kept):,} rejected={len(rejected):,} repeats={repeats}")
    for name, xs in times.items():
        print(f"{name}: {_spread(xs)}, {len(ds) / statistics.median(xs):,.0f} rows/s")
    ratios = [b / v for v, b in zip(times["validate"], times["baseline"])]
    print(f"baseline/validate: {statistics.median(times['baseline']) / statistics.median(times['validate']):.1f}x "
          f"(per repeat {min(ratios):.1f}-{max(ratios):.1f}x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--bad", type=float, default=0.01, help="share of broken rows")
    ap.add_argument("--chunk", type=int, default=0, help="rows per Arrow chunk (0: one chunk)")
    ap.add_argument("--images", type=int, default=0, help="time the image check on this many files instead")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.images:
        bench_images(args.images, args.repeats)
        return
    bench_text(args.rows, bad=args.bad, chunk=args.chunk, repeats=args.repeats)


if __name__ == "__main__":
    main()
