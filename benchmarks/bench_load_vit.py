"""Benchmark: ``load_vit`` of a LLaVA JSON file vs ``datasets.load_dataset("json")`` on it.

Writes a realistic LLaVA-style JSON array (default 200k rows: about half multi-turn,
COCO/GQA/VG image paths, VQA rows with LLaVA-1.5 prompts, ~8% text-only rows), then
runs each loader in its own fresh subprocess with its own empty ``HF_DATASETS_CACHE``
(so neither reuses the other's Arrow cache or memory) and reports wall time and peak
RSS (``ru_maxrss``), each the median over ``--repeats`` runs, and the ratios.

Example:
    python benchmarks/bench_load_vit.py --rows 200000 --repeats 3
    python benchmarks/bench_load_vit.py --rows 200000 --repeats 3 --lines   # JSON Lines input
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

QUESTIONS = [
    "What is the man in the image doing?",
    "What color is the bus?",
    "How many people are visible in the picture?",
    "Where is the dog sitting?",
    "What might be the reason for the crowd gathering here?",
    "Can you describe the objects on the table?",
    "Is the traffic light red or green?",
    "What is the weather like in the scene?",
]
WORDS = "the a man woman dog cat street car bus table red blue green large small near behind left right holding sitting standing".split()
SUFFIXES = [
    "",
    "\nAnswer the question using a single word or phrase.",
    "\nAnswer with the option's letter from the given choices directly.",
]
FOLDERS = ["coco/train2017", "gqa/images", "vg/VG_100K", "textvqa/train_images", "ocr_vqa/images"]


def make_rows(n: int, seed: int = 0):
    """Yield ``n`` LLaVA records (deterministic for a seed)."""
    rng = random.Random(seed)
    for i in range(n):
        text_only = rng.random() < 0.08
        turns = rng.choice([1, 1, 1, 2, 3, 4, 5, 6]) if rng.random() < 0.5 else 1
        conv = []
        for k in range(turns):
            q = rng.choice(QUESTIONS) + rng.choice(SUFFIXES)
            if k == 0 and not text_only:
                q = "<image>\n" + q
            a = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60))).capitalize() + "."
            conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
        rec = {"id": f"{i:012d}" if not text_only else f"sharegpt_{i}"}
        if not text_only:
            rec["image"] = f"{rng.choice(FOLDERS)}/{rng.randint(0, 10**9):012d}.jpg"
        rec["conversations"] = conv
        yield rec


def write_file(path: str, n: int) -> None:
    # LLaVA ships one JSON array (llava_v1_5_mix665k.json); --lines writes JSON Lines.
    lines = path.endswith(".jsonl")
    with open(path, "w") as f:
        f.write("" if lines else "[\n")
        for i, rec in enumerate(make_rows(n)):
            f.write(json.dumps(rec) + "\n" if lines else ("" if i == 0 else ",\n") + json.dumps(rec))
        f.write("" if lines else "\n]\n")


def child(which: str, path: str) -> None:
    """Run one loader and print one JSON line of measurements."""
    import datasets

    import hf_vitcurate

    datasets.disable_progress_bars()
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if which == "load_dataset":
        ds = datasets.load_dataset("json", data_files=path, split="train")
    else:
        ds = hf_vitcurate.load_vit(path, image_root="/data/llava")
    seconds = time.perf_counter() - start
    assert len(ds) > 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"which": which, "rows": len(ds), "seconds": seconds, "peak_mb": peak / 1024, "imports_mb": rss_imports / 1024}))


def run_child(which: str, path: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "HF_DATASETS_CACHE": cache, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
        out = subprocess.run(
            [sys.executable, __file__, "--child", which, path], env=env, capture_output=True, text=True, check=True
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lines", action="store_true", help="write JSON Lines instead of one JSON array")
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "bench_load_vit"))
    parser.add_argument("--child", nargs=2, metavar=("WHICH", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    os.makedirs(args.work_dir, exist_ok=True)
    path = os.path.join(args.work_dir, f"llava_{args.rows}.json" + ("l" if args.lines else ""))
    if not os.path.exists(path):
        write_file(path, args.rows)
    print(f"file: {path} ({os.path.getsize(path) / 2**20:.0f} MiB, {args.rows} rows)")
    results: dict[str, list[dict]] = {"load_dataset": [], "load_vit": []}
    for _ in range(args.repeats):
        for which in results:  # interleaved so machine noise hits both alike
            results[which].append(run_child(which, path))
    med = {w: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "peak_mb", "imports_mb")} for w, rs in results.items()}
    for w, m in med.items():
        print(f"{w:13s} time {m['seconds']:6.2f} s   peak RSS {m['peak_mb']:7.0f} MiB   (after imports {m['imports_mb']:.0f} MiB)")
    b, v = med["load_dataset"], med["load_vit"]
    print(f"ratio load_vit / load_dataset: time {v['seconds'] / b['seconds']:.2f}x, peak RSS {v['peak_mb'] / b['peak_mb']:.2f}x, "
          f"peak above imports {(v['peak_mb'] - v['imports_mb']) / (b['peak_mb'] - b['imports_mb']):.2f}x")


if __name__ == "__main__":
    main()
