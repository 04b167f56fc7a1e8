"""Importing a review file (MMInstruct step (f)): ``engine.review.import_review`` time by rows.

Builds ``--rows`` judgement rows and a JSON-lines review file deciding them in turn accept,
reject, no decision, edit (the answer changed to "No"), then times ``import_review``
``--repeats`` times per size. Import reads the file once, applies each decision by an id
lookup and builds the output columns in Arrow, so the time grows linearly with rows.

Usage:
    python benchmarks/bench_review.py                       # 16k and 100k rows
    python benchmarks/bench_review.py --rows 1000000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from datasets import Dataset

from hf_vitcurate.engine.review import import_review

TURNS = [{"from": "human", "value": "<image>\nIs the circle red? Please answer yes or no."}, {"from": "gpt", "value": "Yes"}]


def case(rows: int, folder: str) -> tuple[Dataset, str]:
    ds = Dataset.from_dict({"id": [f"r{i}" for i in range(rows)], "instruction_type": ["judgement"] * rows,
                            "conversations": [TURNS] * rows})
    path = os.path.join(folder, f"review-{rows}.jsonl")
    decisions = ["accept", "reject", "", "edit"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps({"id": f"r{i}", "decision": decisions[i % 4], "reviewer": "ann", "reason": "checked",
                                "answer": "No"}) + "\n")
    return ds, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[16_000, 100_000])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            ds, path = case(rows, folder)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                kept, rejected = import_review(ds, path)
                times.append(time.perf_counter() - start)
            assert len(kept) + len(rejected) == rows
            print(f"{rows:>9,} rows: median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}),"
                  f" {rows / statistics.median(times):,.0f} rows/s")


if __name__ == "__main__":
    main()
