"""Build an Individual Select composition: choose whole datasets by fine-tuning and benchmarking.

    python dataset_scripts/build_individual_select.py --out out/individual_select      # ShapesWorld (default)

Steps (*Rethinking Overlooked Aspects in Vision-Language Models*, arXiv:2405.11850;
docs/methods.md), on ShapesWorld: each training source is one candidate
dataset; the baseline B0 is ``--baseline`` (default: the captions source); the categories
are ``--categories`` (default: LLaVA-style sources, then SVIT-style, then MMInstruct-style,
then text-only). The evaluator fine-tunes f_pre (a tiny checkpoint pretrained on
captions) on the union of a composition and scores it on the ShapesWorld benchmark
(``synthetic.evaluate``, 0-100). Every composition is trained once (cached on disk under
``{out}/models``, so a rerun resumes). Outputs: the trials table (``trials.md``,
``result.json``) and the final composition published with the ``individual_select`` card.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time

from hf_vitcurate.commands.common import add_release_args, option, print_summary
from hf_vitcurate.select.individual import individual_select

DEFAULT_CATEGORIES = {
    "llava": ["llava_conv", "llava_detail", "llava_complex"],
    "svit": ["svit_referring", "svit_judgement"],
    "mminstruct": ["mm_multiple_choice", "mm_short_vqa"],
    "text": ["text_only"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=200, help="ShapesWorld images (default: 200)")
    p.add_argument("--baseline", default="captions", help="comma list of sources in B0")
    p.add_argument("--categories", default=None,
                   help='JSON {"category": [sources...]} in order (default: llava, svit, mminstruct, text)')
    option(p, individual_select, "epsilon", "'comparable' margin in points")
    option(p, individual_select, "sequential", "accepted candidates join B at once")
    p.add_argument("--benchmark-images", type=int, default=50)
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    add_release_args(p, "hf-vitcurate/shapesworld-individual-select", "out/individual_select")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from datasets import DatasetDict, concatenate_datasets

    from hf_vitcurate.hub import publish
    from hf_vitcurate.models import train
    from hf_vitcurate.testing import tiny_recipe, train_tiny
    from hf_vitcurate.select.individual import save_result, trials_markdown
    from hf_vitcurate.synthetic import benchmark, evaluate, shapesworld

    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    world = shapesworld(args.images, seed=args.seed)
    # No method reads the ground truth.
    sources = {k: world[k].remove_columns("_truth") for k in world if k != "benchmark"}
    bench = benchmark(args.benchmark_images, seed=args.seed + 1)
    categories = json.loads(args.categories) if args.categories else DEFAULT_CATEGORIES
    baseline = [b for b in args.baseline.split(",") if b]

    everything = concatenate_datasets(list(sources.values()))
    f_pre = train_tiny(everything, work_dir=os.path.join(args.out, "models", "f_pre"), seed=args.seed)

    def evaluate_composition(names: list[str]) -> dict[str, float]:
        key = hashlib.sha256(",".join(sorted(names)).encode()).hexdigest()[:12]
        data = concatenate_datasets([sources[n] for n in sorted(names)]) if names else None
        model = f_pre if data is None else train(data, model=f_pre, output_dir=os.path.join(args.out, "models", key),
                                                 **tiny_recipe(seed=args.seed))
        scores = evaluate(bench, model=model, max_new_tokens=args.max_new_tokens, progress=False)
        keep = ("judgement", "multiple_choice", "short_vqa", "caption")
        return {k: scores[k] for k in keep}

    try:
        final, result = individual_select(sources, baseline=baseline, categories=categories,
                                          evaluate=evaluate_composition, epsilon=args.epsilon,
                                          sequential=args.sequential)
    except ValueError as err:  # unknown names in --baseline or --categories
        raise SystemExit(f"build_individual_select: error: --baseline/--categories: {err}") from err
    save_result(result, os.path.join(args.out, "result.json"))
    table = trials_markdown(result)
    with open(os.path.join(args.out, "trials.md"), "w") as f:
        f.write(table + "\n")
    trial_rows = [{"category": t["category"], "candidate": t["candidate"], **t["scores"], "average": t["average"],
                   "reference": t["reference_average"], "accepted": t["accepted"]} for t in result["trials"]]
    publish(DatasetDict({"train": final}), args.repo_id, local_dir=os.path.join(args.out, "hub"), card="individual_select",
            card_data={"tables": {"Individual Select trials": trial_rows}, "composition": result["composition"]},
            version=args.version, push=args.push)
    print(table)
    print_summary({"output": args.out, "composition": result["composition"], "final_scores": result["final_scores"],
                   "rows": len(final), "seconds": round(time.perf_counter() - t0, 1)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
