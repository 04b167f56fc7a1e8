"""Curation against random on ShapesWorld: does each method beat random draws on its pathology?

For each world seed, builds the demo-size pool with the pathologies on
(``hf_vitcurate.synthetic.DEMO_PATHOLOGIES`` unless overridden), runs the selections that
need no model (leakage clean-up, near-duplicate removal, SVIT balance and core, and the
recommended combination without its model step: clean-up, near-duplicates, then SVIT's
diversity and balance down to the budget) and, with ``--models``, MLLM-Selector
(necessity from a tiny seed model, then NBGS) and REVO-LION (tune-cross-evaluation over
the demo recipe's protocol datasets, SQ, then S1 at the budget). Each output goes through
``hf_vitcurate.report.curation_report`` (5 random draws of the same size per output).
Printed: per output and target, the kept share, random's mean ± std, z, and over the
world seeds the mean and spread of z and of the ratio kept / random. The last line is JSON.

    python benchmarks/bench_curation.py                    # demo size: 160 images, 3 world seeds
    python benchmarks/bench_curation.py --images 40 --worlds 1   # toy size (tests)
    python benchmarks/bench_curation.py --ratio 2          # balance where the demo pool's yes:no (~6) is above the cap
    python benchmarks/bench_curation.py --models           # adds mllm_selector and revo_lion (tiny models; minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def outputs(pool, *, fraction: float, seed: int, models: bool, work_dir: str, ratio: float = 8) -> dict:
    """Every output of one pool, each built as a user would with the package's stages and selections."""
    from hf_vitcurate import select, stages

    n = round(fraction * len(pool))
    tagged = stages.yes_no(stages.concepts(stages.leakage(pool)))
    cleaned = stages.reject(tagged, where="leakage").kept
    deduped = stages.near_duplicates(tagged).kept
    out = {
        "cleanup": cleaned,
        "near_duplicates": deduped,
        "balance": select.balance(tagged, n=n, seed=seed, ratio=ratio).dataset,
        "svit_core": select.core(tagged, n=n, seed=seed, ratio=ratio, per_task=True, allow_short=True).dataset,
    }
    both = stages.near_duplicates(cleaned).kept
    # Diversity drops the less informative half; only what is left above the budget goes.
    half = select.diversity(both, n=min(n, len(both)), seed=seed, per_task=True, allow_short=True).dataset
    out["recommended"] = select.balance(half, n=len(half), seed=seed, ratio=ratio, allow_short=True).dataset
    if models:
        from hf_vitcurate.testing import tiny_recipe, train_tiny

        f_pre = train_tiny(pool, work_dir=os.path.join(work_dir, "models"), seed=seed)
        res = select.mllm_selector(pool, n=n, model=f_pre, work_dir=os.path.join(work_dir, "mllm"), seed=seed,
                                   recipe=tiny_recipe())
        out["mllm_selector"] = res.dataset
        out["revo_lion"] = revo_lion_s1(pool, f_pre, fraction=fraction, seed=seed, work_dir=work_dir)
    return out


# The demo recipe's protocol datasets; a source in no group (web_vqa) is a dataset of its own.
GROUPS = {"llava": ["llava_conv", "llava_detail", "llava_complex", "text_only"],
          "svit": ["svit_referring", "svit_judgement", "captions"],
          "mminstruct": ["mm_multiple_choice", "mm_short_vqa"]}


def revo_lion_s1(pool, f_pre: str, *, fraction: float, seed: int, work_dir: str):
    """REVO-LION: tune-cross-evaluation over the protocol datasets, then S1 (top SQ per dataset) at ``fraction``."""
    from hf_vitcurate import select
    from hf_vitcurate.select.revolion_driver import default_recipe

    names = pool.unique("source")
    owner = {m: g for g, ms in GROUPS.items() for m in ms}
    sources = {}
    for g in sorted({owner.get(n, n) for n in names}):
        members = [n for n in names if owner.get(n, n) == g]
        sources[g] = pool.filter(lambda s, members=members: s in members, input_columns="source")
    recipe = {**default_recipe(f_pre), "progress": False, "max_steps": 60, "batch_size": 16}
    scored, cross = select.tune_cross_evaluate(sources, model=f_pre, work_dir=os.path.join(work_dir, "revo_lion"),
                                               recipe=recipe, seed=seed, max_new_tokens=24, batch_size=32)
    print(f"REVO-LION DQ: {cross['dq']}")
    return select.s1(scored, fraction=fraction, by=cross["by"]).dataset


def one_world(world_seed: int, args) -> dict:
    from hf_vitcurate.report import curation_report, report_table
    from hf_vitcurate.synthetic import DEMO_PATHOLOGIES, pool_and_truth

    options = {**DEMO_PATHOLOGIES, **json.loads(args.world)}
    pool, truth = pool_and_truth(args.images, seed=world_seed, benchmark_images=0, **options)
    t = time.time()
    built = outputs(pool, fraction=args.fraction, seed=world_seed, models=args.models, ratio=args.ratio,
                    work_dir=os.path.join(args.work_dir, f"world{world_seed}"))
    seconds = time.time() - t
    report = curation_report(pool, built, truth=truth, seeds=args.seeds, seed=1000 * world_seed)
    print(f"\n## world seed {world_seed}: {len(pool)} rows, options {options}, selections {seconds:.0f} s\n")
    print(report_table(report))
    return report


def summarise(reports: list[dict]) -> dict:
    """Per output and measure (its targets and every degraded kind): z and kept/random over world seeds."""
    out: dict = {}
    for name in reports[0]["configs"]:
        entry = {}
        for key in reports[0]["configs"][name]["metrics"]:
            ms = [r["configs"][name]["metrics"][key] for r in reports]
            zs = [m["z"] for m in ms if m["z"] is not None]
            ratios = [m["config"] / m["random_mean"] for m in ms if m["random_mean"]]
            entry[key] = {
                "share": round(statistics.mean(m["config"] for m in ms), 4),
                "pool": round(statistics.mean(m["pool"] for m in ms), 4),
                "z_mean": round(statistics.mean(zs), 1) if zs else None,
                "z_min": round(min(zs), 1) if zs else None,
                "ratio_mean": round(statistics.mean(ratios), 3) if ratios else None,
                "ratio_sd": round(statistics.stdev(ratios), 3) if len(ratios) > 1 else 0.0,
            }
        out[name] = {"rows": round(statistics.mean(r["configs"][name]["rows"] for r in reports)),
                     "targets": reports[0]["configs"][name]["targets"],
                     "goals_met": sum(all(r["configs"][name]["goals"].values()) for r in reports),
                     "measures": entry}
    return out


def print_summary(summary: dict, worlds: int, pool_rows: int) -> None:
    print(f"\n## over {worlds} world seed(s): target measures (kept share / random mean, z mean [min])\n")
    print("| output | rows | target | kept | pool | kept / random | z mean [min] | goal met |")
    print("|---|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        for t in s["targets"] or ["degraded"]:
            m = s["measures"].get(t)
            if m is None:
                continue
            print(f"| {name} | {s['rows']} / {pool_rows} | {t} | {m['share']} | {m['pool']} | "
                  f"{m['ratio_mean']} ± {m['ratio_sd']} | {m['z_mean']} [{m['z_min']}] | {s['goals_met']}/{worlds} |")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=160, help="images per world (the demo recipe's 160)")
    ap.add_argument("--worlds", type=int, default=3, help="world seeds 0..N-1, each a new pool")
    ap.add_argument("--fraction", type=float, default=0.5, help="budget of the budgeted outputs")
    ap.add_argument("--seeds", type=int, default=5, help="random draws per output")
    ap.add_argument("--ratio", type=float, default=8.0, help="SVIT balance: yes:no at most this (the paper's 8)")
    ap.add_argument("--world", default="{}", help='JSON options over DEMO_PATHOLOGIES, e.g. \'{"easy": 2.0}\'')
    ap.add_argument("--models", action="store_true", help="also MLLM-Selector and REVO-LION S1 with tiny models (minutes)")
    ap.add_argument("--work-dir", default=None)
    args = ap.parse_args(argv)
    if args.worlds < 1 or args.images < 10:
        ap.error("--worlds must be >= 1 and --images >= 10")
    try:
        json.loads(args.world)
    except json.JSONDecodeError as err:
        ap.error(f"--world: not JSON ({err})")
    args.work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_curation-")
    t = time.time()
    reports = [one_world(w, args) for w in range(args.worlds)]
    summary = summarise(reports)
    print_summary(summary, args.worlds, reports[0]["pool"]["rows"])
    result = {"images": args.images, "worlds": args.worlds, "fraction": args.fraction, "pool_rows": reports[0]["pool"]["rows"],
              "pool_degraded": reports[0]["pool"]["degraded"], "outputs": summary, "seconds": round(time.time() - t)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
