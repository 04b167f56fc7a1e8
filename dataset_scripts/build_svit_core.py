"""Build an SVIT-core style dataset: tag concepts and yes/no, clean up, select the core, report, publish.

    python dataset_scripts/build_svit_core.py --out out/svit_core            # ShapesWorld (default)
    python dataset_scripts/build_svit_core.py --input pool/ --n 157712 --out out/svit_core_150k

Steps (*SVIT: Scaling up Visual Instruction Tuning*, arXiv:2307.04087; docs/methods.md):
1. pool: ShapesWorld's training sources (``hf_vitcurate.synthetic.shapesworld``, the
   ``_truth`` column removed before any method runs) or ``--input`` (a folder saved with
   ``save_to_disk`` or any file ``load_vit`` reads);
2. generation clean-up (the paper's §3.3): drop answers leaking the annotation source
   (``stages.leakage`` then ``stages.reject``), and with ``--expected-qa`` rows with too
   few QA pairs (``stages.qa_count``);
3. tags: ``stages.concepts`` (informativeness) and ``stages.yes_no``;
4. selection: ``select.core`` (diversity then balance), exactly ``--n`` rows;
5. outputs in ``--out``: ``data/`` (a ``DatasetDict`` with ``train``, ``save_to_disk``),
   ``rejected/``, ``manifest.json`` (ids, parameters, seed, counts, provenance),
   ``stats.md``/``stats.json`` and ``question_types.png`` (Table 1 / Figure 3 analogues
   for the pool and the core), and the Hub repo layout with its card in ``hub/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from hf_vitcurate.commands.common import add_release_args, option, print_summary
from hf_vitcurate.select import core

log = logging.getLogger("build_svit_core")


def load_pool(args) -> tuple:
    """The pool without ground truth, and a note of where it came from."""
    from datasets import concatenate_datasets

    if args.input:
        from hf_vitcurate.commands.common import load_input

        return load_input(args.input), {"input": args.input}
    from hf_vitcurate.synthetic import shapesworld

    dd = shapesworld(args.images, args.seed)
    parts = [dd[k] for k in sorted(dd) if k != "benchmark"]
    pool = concatenate_datasets(parts)
    # No method may read the ground truth: drop it before anything runs.
    pool = pool.remove_columns([c for c in pool.column_names if c.startswith("_")])
    return pool, {"shapesworld": {"images": args.images, "seed": args.seed, "sources": sorted(k for k in dd if k != "benchmark")}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", default=None, help="pool to curate (default: ShapesWorld)")
    p.add_argument("--images", type=int, default=1500, help="ShapesWorld images (default: 1500)")
    p.add_argument("--n", type=int, default=None,
                   help="core size (default: a quarter of the pool; SVIT-core-150K used 157712)")
    option(p, core, "ratio", "largest yes:no ratio")
    option(p, core, "per_task", "halve each task on its own (not the whole pool)")
    option(p, core, "allow_short", "return fewer rows than --n instead of failing")
    option(p, core, "seed", "data and draw seed")
    p.add_argument("--concept-sets", default=None, help="concept sets YAML/JSON (default: SVIT Table 4)")
    p.add_argument("--no-clean", action="store_true", help="skip the leakage clean-up")
    p.add_argument("--expected-qa", type=int, default=None, help="drop rows with fewer QA pairs than this")
    add_release_args(p, "hf-vitcurate/shapesworld-svit-core", "out/svit_core")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import datasets

    from hf_vitcurate import provenance
    from hf_vitcurate.hub import publish
    from hf_vitcurate.stages import concepts, leakage, qa_count, reject, yes_no
    from hf_vitcurate.stats import plot_first_words, stats, to_markdown

    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    pool, origin = load_pool(args)
    log.info("pool: %d rows", len(pool))

    rejected = []
    kept = pool
    if not args.no_clean:
        kept, rej = reject(leakage(kept), where="leakage")
        rejected.append(rej)
    if args.expected_qa:
        kept, rej = reject(qa_count(kept, expected=args.expected_qa), where="qa_short")
        rejected.append(rej)
    tagged = yes_no(concepts(kept, concept_sets=args.concept_sets))
    n = args.n if args.n is not None else len(pool) // 4
    selection, manifest = core(tagged, n=n, seed=args.seed, ratio=args.ratio, per_task=args.per_task,
                               allow_short=args.allow_short)
    log.info("core: %d rows (yes:no %s)", len(selection), manifest["counts"].get("yes_no_ratio"))

    curated = datasets.DatasetDict({"train": selection})
    curated.save_to_disk(os.path.join(args.out, "data"))
    reasons: dict[str, int] = {}
    if rejected:
        common = [c for c in rejected[0].column_names if all(c in r.column_names for r in rejected)]
        all_rejected = datasets.concatenate_datasets([r.select_columns(common) for r in rejected])
        all_rejected.save_to_disk(os.path.join(args.out, "rejected"))
        for r in all_rejected.with_format("arrow")["reject_reason"].to_pylist():
            reasons[r] = reasons.get(r, 0) + 1
    assert len(pool) == len(kept) + sum(reasons.values())  # rows in = kept + rejected

    pool_stats, core_stats = stats(tagged), stats(selection)
    with open(os.path.join(args.out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump({"pool": pool_stats, "core": core_stats}, f, indent=2)
    with open(os.path.join(args.out, "stats.md"), "w", encoding="utf-8") as f:
        f.write(to_markdown(core_stats, title="SVIT-core statistics"))
        f.write("\n" + to_markdown(pool_stats, title="Pool statistics (after clean-up)"))
    chart = plot_first_words(core_stats, os.path.join(args.out, "question_types.png"))

    manifest.update(origin=origin, rows_in=len(pool), rejected=reasons, provenance=provenance.steps(selection),
                    wall_seconds=round(time.perf_counter() - t0, 1))
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, default=str)

    table = [{"task": t, **{k: g[k] for k in ("rows", "qa_pairs", "mean_question_words", "mean_answer_words")}}
             for t, g in core_stats["groups"].items()]
    hub_dir = publish(
        curated, args.repo_id, local_dir=os.path.join(args.out, "hub"), card="svit_core",
        card_data={"pretty_name": "SVIT-core (hf_vitcurate)",
                   "plots": {"Questions by first words": chart}, "tables": {"Per task": table}},
        version=args.version, push=args.push, rejected=reasons or None,
    )
    log.info("published to %s", hub_dir)
    print_summary({"output": args.out, **{k: v for k, v in manifest.items() if k not in ("ids", "provenance")}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
