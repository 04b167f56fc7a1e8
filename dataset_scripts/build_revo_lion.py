"""Build a REVO-LION style release: tune-cross-evaluation, DQ/SQ, S1 at P = 0.7, Tune/Eval, publish.

    python dataset_scripts/build_revo_lion.py --out out/revo_lion                   # ShapesWorld (default)
    python dataset_scripts/build_revo_lion.py --source conv=conv.jsonl --source detail=detail.jsonl \\
        --model llava-hf/llava-1.5-7b-hf --max-new-tokens 256 --out out/revo_lion_real

Steps (*On the Evaluation and Refinement of Vision-Language Instruction Tuning Datasets*,
REVO-LION, arXiv:2310.06594; docs/methods.md):
1. datasets: each ShapesWorld training source is one protocol dataset
   (``hf_vitcurate.synthetic.shapesworld``; the ``_truth`` column is set aside before
   any method runs and used only to measure the selection), or ``--source NAME=PATH``;
2. rows are cut into single-turn triplets (``explode_turns``, REVO-LION's unit; ``--no-explode``);
3. tune-cross-evaluation (``select.revolion_driver.tune_cross_evaluate``): one model per
   dataset (cached in ``--work-dir``), answers to every other dataset, ``mq__*``, DQ, ``sq``;
4. release (``select.revolion.release``): S1 keeps the top P = 0.7 by SQ per dataset,
   then REVO-LION-Eval = 600 random rows per refined dataset, REVO-LION-Tune = the rest;
5. outputs in ``--out``: ``data/`` (``DatasetDict`` tune/eval), ``scored/`` (every row with
   its answers and scores), ``manifest.json``, ``dq.csv``/``dq.md``/``dq_heatmap.png``/
   ``sq_hist.png``, ``effect.json`` (ShapesWorld: degraded rows kept by S1 vs S2 at each
   P), and ``hub/``: the Hub repo layout with the ``revo_lion`` card, configs ``Tune`` and ``Eval``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time

from hf_vitcurate.commands.common import add_release_args, option, print_summary
from hf_vitcurate.select.revolion import release
from hf_vitcurate.select.revolion_driver import tune_cross_evaluate

log = logging.getLogger("build_revo_lion")


def load_sources(args) -> tuple[dict, dict, dict]:
    """``(sources, truth, origin)``: protocol datasets without ``_`` columns, ``{id: truth}``, where they came from."""
    from hf_vitcurate.columns import list_column

    if args.source:
        from hf_vitcurate.commands.common import load_input

        sources = {}
        for item in args.source:
            name, sep, path = item.partition("=")
            if not sep:
                raise SystemExit(f"--source expects NAME=PATH, got {item!r}")
            sources[name] = load_input(path, source=name)
        origin = {"sources": args.source}
    else:
        from hf_vitcurate.synthetic import shapesworld

        dd = shapesworld(args.images, args.seed)
        names = args.datasets or [k for k in dd if k != "benchmark"]
        sources = {k: dd[k] for k in names}
        origin = {"shapesworld": {"images": args.images, "seed": args.seed, "datasets": names}}
    if not args.no_explode:
        from hf_vitcurate import explode_turns

        sources = {k: explode_turns(v) for k, v in sources.items()}
    truth = {}
    for name, ds in sources.items():
        if "_truth" in ds.column_names:
            truth.update(zip(list_column(ds, "id"), list_column(ds, "_truth")))
        # No method may read the ground truth: drop it before anything runs.
        sources[name] = ds.remove_columns([c for c in ds.column_names if c.startswith("_")])
    return sources, truth, origin


def starting_model(args, sources: dict) -> tuple[str, dict]:
    """The checkpoint to fine-tune and its recipe (a tiny checkpoint built here by default)."""
    recipe = args.recipe
    if args.model:
        return args.model, recipe
    from datasets import concatenate_datasets

    from hf_vitcurate.testing import train_tiny
    from hf_vitcurate.select.revolion_driver import default_recipe

    # The tiny default: tokenizer on the sources, tower pretrained, stage 1 on their captions (a rerun reuses it).
    path = train_tiny(concatenate_datasets(list(sources.values())), work_dir=os.path.join(args.work_dir, "base"), seed=args.seed)
    if recipe is None:
        recipe = default_recipe(path)
        if args.epochs is not None:
            recipe = {**recipe, "epochs": args.epochs}
    return path, recipe


def effect(pool, truth: dict, by: str, portions: list[float], seed: int) -> dict:
    """Share of degraded (non-``clean``) rows in the pool and kept by S1 and S2 at each P (measurement only)."""
    from hf_vitcurate.columns import list_column
    from hf_vitcurate.select.revolion import s1, s2

    def bad_share(ds) -> float:
        labels = [truth.get(i, "clean") for i in list_column(ds, "id")]
        return sum(t != "clean" for t in labels) / max(1, len(labels))

    out = {"pool": {"rows": len(pool), "degraded_share": bad_share(pool)}, "by_fraction": {}}
    for fraction in portions:
        a, _ = s1(pool, fraction=fraction, by=by)
        b, _ = s2(pool, fraction=fraction, seed=seed, by=by)
        out["by_fraction"][str(fraction)] = {"rows": len(a), "s1_degraded_share": bad_share(a),
                                             "s2_degraded_share": bad_share(b)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                   help="a protocol dataset (repeat); default: ShapesWorld's training sources")
    p.add_argument("--images", type=int, default=400, help="ShapesWorld images (default: 400)")
    p.add_argument("--datasets", nargs="*", default=None, help="ShapesWorld sources to use (default: all)")
    p.add_argument("--seed", type=int, default=0, help="data, training and draw seed")
    p.add_argument("--no-explode", action="store_true", help="keep multi-turn rows (answered on their last question)")
    p.add_argument("--model", default=None, help="checkpoint to fine-tune (default: a tiny one built here)")
    option(p, tune_cross_evaluate, "recipe", "training options as JSON", type=json.loads)
    p.add_argument("--epochs", type=float, default=None, help="epochs of the default tiny recipe")
    p.add_argument("--max-new-tokens", type=int, default=48, help="tokens per answer at most (default: 48)")
    p.add_argument("--batch-size", type=int, default=32, help="generation batch size (default: 32)")
    option(p, tune_cross_evaluate, "variant", "MQ variant", choices=["C1", "C2", "C3"])
    option(p, release, "fraction", "the portion P kept by S1 for the release (paper: 0.7)")
    option(p, release, "eval_size", "REVO-LION-Eval rows per dataset (paper: 600)")
    p.add_argument("--effect-fraction", type=float, nargs="*", default=[0.5, 0.7],
                   help="portions P of the S1-vs-S2 check (default: 0.5 0.7)")
    p.add_argument("--work-dir", default=None, help="models and answer chunks (default: OUT/work; reused)")
    add_release_args(p, "hf-vitcurate/shapesworld-revo-lion", "out/revo_lion")
    p.add_argument("--no-publish", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.work_dir = args.work_dir or os.path.join(args.out, "work")

    from datasets import DatasetDict

    from hf_vitcurate import provenance

    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    sources, truth, origin = load_sources(args)
    log.info("datasets: %s", {k: len(v) for k, v in sources.items()})
    model, recipe = starting_model(args, sources)
    result = tune_cross_evaluate(sources, model=model, work_dir=args.work_dir, recipe=recipe,
                                 max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=args.seed,
                                 variant=args.variant)
    pool, cross = result
    log.info("DQ:\n%s", result.dq.to_markdown())
    parts, manifest = release(pool, fraction=args.fraction, eval_size=args.eval_size, seed=args.seed, by=cross["by"])

    parts.save_to_disk(os.path.join(args.out, "data"))
    pool.save_to_disk(os.path.join(args.out, "scored"))
    for f in ("dq.csv", "dq.md", "dq.json", "dq_heatmap.png", "sq_hist.png"):
        shutil.copy(os.path.join(args.work_dir, f), os.path.join(args.out, f))
    summary = {"origin": origin, "model": model, "recipe": recipe, "datasets": {k: len(v) for k, v in sources.items()},
               "trained": cross["trained"], "reused": cross["reused"], "dq": result.dq.to_dict(),
               "release": {k: v for k, v in manifest.items() if k not in ("s1", "tune", "eval")},
               "tune_rows": len(parts["tune"]), "eval_rows": len(parts["eval"])}
    if truth:
        summary["effect"] = effect(pool, truth, cross["by"], args.effect_fraction, args.seed)
        with open(os.path.join(args.out, "effect.json"), "w") as f:
            json.dump(summary["effect"], f, indent=2)
    summary["wall_seconds"] = round(time.perf_counter() - t0, 1)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({**summary, "manifests": manifest, "provenance": provenance.steps(parts["tune"])}, f, indent=2,
                  default=str)

    if not args.no_publish:
        from hf_vitcurate.hub import publish
        from hf_vitcurate.select.revolion_report import card_data

        licenses = {n: "apache-2.0" if not args.source else "unknown" for n in sources}  # ShapesWorld: generated here
        hub_dir = publish(
            {"Tune": DatasetDict({"train": parts["tune"]}), "Eval": DatasetDict({"test": parts["eval"]})},
            args.repo_id, local_dir=os.path.join(args.out, "hub"), card="revo_lion",
            card_data=card_data(result, manifest, sources=licenses,
                                pretty_name="REVO-LION (ShapesWorld)" if not args.source else "REVO-LION"),
            version=args.version, push=args.push,
        )
        log.info("published to %s", hub_dir)
    print(result.dq.to_markdown())
    print_summary({"output": args.out, **{k: v for k, v in summary.items() if k != "dq"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
