"""Whole-column reads of a ``select()``/``shuffle()`` view: the package's ``arrow_column`` against the public routes.

``columns.arrow_column`` reads the view's row mapping (``Dataset._indices``, no public
accessor in ``datasets``) and gathers with one ``pc.take``. The public routes that give the
same column: ``ds.with_format("arrow")[name]`` and ``ds.select_columns([name]).flatten_indices()``.
Each runs ``--repeats`` times, interleaved, on one float column of a shuffled dataset;
prints the median time per route and its ratio to ``arrow_column`` (min-max over repeats).

Usage:
    python benchmarks/bench_columns.py --rows 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeats < 1:
        parser.error("--rows and --repeats must be >= 1")

    import numpy as np
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar

    from hf_vitcurate.columns import arrow_column

    disable_progress_bar()
    ds = Dataset.from_dict({"s": np.random.default_rng(0).random(args.rows)}).shuffle(seed=0)
    routes = {
        "arrow_column": lambda: arrow_column(ds, "s"),
        "with_format_arrow": lambda: ds.with_format("arrow")["s"],
        "flatten_indices": lambda: ds.select_columns(["s"]).flatten_indices(keep_in_memory=True).data.column("s"),
    }
    times: dict[str, list[float]] = {name: [] for name in routes}
    for _ in range(args.repeats):
        for name, route in routes.items():
            start = time.perf_counter()
            route()
            times[name].append(time.perf_counter() - start)
    out = {"rows": args.rows, "repeats": args.repeats}
    for name, t in times.items():
        ratios = [a / b for a, b in zip(t, times["arrow_column"])]
        out[name] = {"median_s": round(statistics.median(t), 4), "ratio_median": round(statistics.median(ratios), 1),
                     "ratio_min": round(min(ratios), 1), "ratio_max": round(max(ratios), 1)}
        print(f"{name}: median {statistics.median(t):.4f} s, x{statistics.median(ratios):.1f} of arrow_column "
              f"({min(ratios):.1f}-{max(ratios):.1f})")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
