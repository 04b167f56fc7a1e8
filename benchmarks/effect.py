"""The training effect: tiny models trained on each curated config, on random draws of its size, on the whole pool.

Reads every config of a curated Hub-layout repo (``--curated DIR``, written by ``vitcurate curate``
or ``vitcurate demo``; each read with ``datasets.load_dataset(DIR, config)``), rebuilds the pool it
was curated from (from the ``recipe.yaml`` beside the card, else ``--pool-images``/``--pool-seed``
of ShapesWorld), builds one f_pre for that pool (``hf_vitcurate.curation.run.starting_model``, as the curation
does: cached, so the curation's own f_pre is reused) and fine-tunes it (``testing.cache.cached_train``: a rerun
retrains nothing) with the ``tiny`` recipe on:

- each config (all its splits but evaluation ones: ``eval``, ``test``, ``validation``);
- a uniform random draw from the pool of the same size (one per seed);
- the whole (validated) pool;

each with ``--seeds`` seeds (3), scored on the held-out ShapesWorld benchmark
(``hf_vitcurate.synthetic.evaluate``). Prints and writes a table (mean ± std over seeds per
training set) as ``effect.md`` and ``effect.json``, and a plot ``effect.png``, in ``--out``.

CPU default (about 30-60 min on 2 cores): 3 seeds, a 100-image (400-row) benchmark. ``--gpu``:
5 seeds, the 300-image benchmark. A toy run (seconds): ``--max-steps 1 --bench-images 2 --seeds 1 --vision-steps 2
--max-new-tokens 4``.

Command:
    python benchmarks/effect.py --curated vitcurate_out/hub --out effect_out
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

EVAL_SPLITS = ("eval", "test", "validation")
SCORES = ("average", "judgement", "multiple_choice", "short_vqa", "caption")


def curated_sets(repo: str) -> dict:
    """``{config: Dataset}``: every config of the local repo ``repo``, its training splits concatenated."""
    from datasets import concatenate_datasets, get_dataset_config_names, load_dataset

    sets = {}
    for config in get_dataset_config_names(repo):
        dd = load_dataset(repo, config)
        splits = [s for s in dd if s.lower() not in EVAL_SPLITS] or list(dd)
        parts = [dd[s].select_columns(["images", "conversations"]) for s in splits]
        sets[config] = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    return sets


def pool_of(repo: str, *, n_images: int, seed: int) -> tuple:
    """``(pool, recipe)``: the validated pool the repo was curated from, and its recipe (``model`` decides f_pre)."""
    from hf_vitcurate import validate
    from hf_vitcurate.curation.recipe import Recipe, Source, load_recipe
    from hf_vitcurate.curation.run import load_sources

    recipe_path = os.path.join(repo, "recipe.yaml")
    if os.path.isfile(recipe_path):
        recipe = load_recipe(recipe_path)
    else:  # no recipe beside the card: a ShapesWorld pool of the given size and seed, a tiny f_pre
        recipe = Recipe(sources=[Source("shapesworld", n_images=n_images, seed=seed)], stages=[], outputs={})
    pool, _ = load_sources(recipe)
    kept, _ = validate(pool)
    return kept, recipe


def training_sets(curated: dict, pool, seed: int) -> dict:
    """``{name: Dataset}`` for one seed: each config, a random draw of each size, the whole pool."""
    sets = {name: ds for name, ds in curated.items()}
    for n in sorted({len(ds) for ds in curated.values()}):
        if n < len(pool):
            sets[f"random ({n} rows)"] = pool.shuffle(seed=seed).select(range(n))
    sets[f"whole pool ({len(pool)} rows)"] = pool
    return sets


def score(ds, *, f_pre: str, out: str, seed: int, bench, recipe: dict, max_new_tokens: int = 48) -> dict:
    """Benchmark scores of f_pre fine-tuned on ``ds`` (the ``tiny`` recipe with ``recipe`` on top)."""
    from hf_vitcurate.synthetic import evaluate
    from hf_vitcurate.testing import tiny_recipe
    from hf_vitcurate.testing.cache import cached_train

    t = time.perf_counter()
    # Cached: a rerun (or another config with the same rows) trains nothing again.
    model = cached_train(ds.select_columns(["images", "conversations"]), model=f_pre, output_dir=out,
                  **tiny_recipe(seed=seed, progress=False, **recipe))
    scores = evaluate(bench, model=model, max_new_tokens=max_new_tokens, progress=False)
    return {**{k: scores.get(k) for k in SCORES}, "rows": len(ds), "seconds": round(time.perf_counter() - t, 1)}


def summarize(results: dict) -> list[dict]:
    """One row per training set: rows and mean ± std of each score over its seeds."""
    rows = []
    for name, runs in results.items():
        row = {"training set": name, "rows": runs[0]["rows"], "seeds": len(runs)}
        for k in SCORES:
            values = [r[k] for r in runs if r.get(k) is not None]
            if values:
                row[k] = round(statistics.mean(values), 2)
                row[k + "_std"] = round(statistics.stdev(values), 2) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """The summary as a Markdown table (``mean ± std``)."""
    head = "| training set | rows | seeds | " + " | ".join(SCORES) + " |"
    lines = [head, "|" + "---|" * (3 + len(SCORES))]
    for r in rows:
        cells = [f"{r[k]:.1f} ± {r[k + '_std']:.1f}" if k in r else "-" for k in SCORES]
        lines.append(f"| {r['training set']} | {r['rows']} | {r['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> None:
    """Bar chart of the benchmark average per training set, with the seeds' std as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rows)), 3.5))
    names = [r["training set"] for r in rows]
    ax.bar(range(len(rows)), [r.get("average", 0) for r in rows], yerr=[r.get("average_std", 0) for r in rows],
           capsize=3, color=["tab:gray" if n.startswith(("random", "whole")) else "tab:blue" for n in names])
    ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("benchmark average (0-100)")
    ax.set_title("tiny LLaVA fine-tuned on each training set (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--curated", required=True, help="a local Hub-layout repo written by vitcurate curate/demo")
    p.add_argument("--out", default="effect_out", help="where models, effect.md/json/png go")
    p.add_argument("--seeds", type=int, default=None, help="seeds per training set (default 3; --gpu 5)")
    p.add_argument("--bench-images", type=int, default=None, help="benchmark images, 4 rows each (default 100; --gpu 300)")
    p.add_argument("--pool-images", type=int, default=160, help="ShapesWorld pool size when the repo has no recipe.yaml")
    p.add_argument("--pool-seed", type=int, default=0, help="ShapesWorld pool seed when the repo has no recipe.yaml")
    p.add_argument("--max-steps", type=int, default=None, help="cap the fine-tuning steps (toy runs)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="longest answer generated on the benchmark")
    p.add_argument("--vision-steps", type=int, default=None, help="tower pretraining steps (default: the recipe's, 300)")
    p.add_argument("--gpu", action="store_true", help="the larger size for a machine with an accelerator")
    args = p.parse_args(argv)
    if not os.path.isdir(args.curated):
        p.error(f"--curated {args.curated}: no such folder (run vitcurate demo first)")
    args.seeds = args.seeds or (5 if args.gpu else 3)
    args.bench_images = args.bench_images or (300 if args.gpu else 100)
    if args.seeds < 1 or args.bench_images < 1:
        p.error("--seeds and --bench-images must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from hf_vitcurate.curation.run import starting_model
    from hf_vitcurate.synthetic import benchmark

    args = parse(argv)
    t0 = time.perf_counter()
    curated = curated_sets(args.curated)
    pool, recipe = pool_of(args.curated, n_images=args.pool_images, seed=args.pool_seed)
    if args.vision_steps is not None:
        recipe.model["vision_steps"] = args.vision_steps
    # The curation's own f_pre (same pool, seed and options: the cached one), built as curate builds it.
    f_pre = starting_model(pool, recipe, work_dir=args.out)
    bench = benchmark(args.bench_images, seed=1234)
    recipe = {} if args.max_steps is None else {"max_steps": args.max_steps}
    results: dict[str, list] = {}
    for seed in range(args.seeds):
        for name, ds in training_sets(curated, pool, seed).items():
            slug = "".join(c if c.isalnum() else "_" for c in name).strip("_")
            run = score(ds, f_pre=f_pre, out=os.path.join(args.out, "runs", f"{slug}-s{seed}"), seed=seed,
                        bench=bench, recipe=recipe, max_new_tokens=args.max_new_tokens)
            results.setdefault(name, []).append({**run, "seed": seed})
            print(f"seed {seed} {name}: average {run['average']:.1f} ({run['seconds']} s)", file=sys.stderr)
    rows = summarize(results)
    md = table(rows)
    plot(rows, os.path.join(args.out, "effect.png"))
    with open(os.path.join(args.out, "effect.md"), "w") as f:
        f.write(md + "\n")
    summary = {"curated": args.curated, "seeds": args.seeds, "benchmark_rows": len(bench), "f_pre": f_pre,
               "seconds": round(time.perf_counter() - t0, 1), "rows": rows, "runs": results}
    with open(os.path.join(args.out, "effect.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(md)
    print(json.dumps({k: summary[k] for k in ("curated", "seeds", "benchmark_rows", "seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
