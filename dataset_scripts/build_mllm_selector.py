"""Build an MLLM-Selector mixture: seed model -> necessity -> NBGS -> (stage 2) -> publish.

    python dataset_scripts/build_mllm_selector.py --out out/mllm_selector            # ShapesWorld (default)
    python dataset_scripts/build_mllm_selector.py --input pool/ --model llava-hf/llava-1.5-7b-hf \\
        --fraction 0.15 --out out/llava_mllm_selector

Steps (*MLLM-Selector: Necessity and Diversity-driven High-Value Data Selection for Enhanced
Visual Instruction Tuning*, arXiv:2503.20502; docs/methods.md):
1. pool: ShapesWorld's training sources (ground truth set aside, used only for the report)
   or ``--input`` (a ``save_to_disk`` folder or any file ``load_vit`` reads), validated;
2. f_pre: ``--model``, or on ShapesWorld a tiny LLaVA checkpoint pretrained on captions;
3. MLLM-Selector (``hf_vitcurate.select.mllm_selector``): n1 seed rows -> f_seed,
   ``necessity`` on the rest (resumable in ``{out}/work``), NBGS for n2 = m - n1;
4. with ``--stage2``: fine-tune f_seed on the selection, and f_seed on a random
   selection of the same size, and score both on the ShapesWorld benchmark;
5. outputs in ``--out``: ``data/`` (``save_to_disk``), ``rejected/``, ``manifest.json``,
   and the Hub layout with the ``mllm_selector`` card in ``hub/`` (``--push`` uploads).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

from hf_vitcurate.commands.common import add_release_args, option, print_summary
from hf_vitcurate.select import mllm_selector


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", default=None, help="pool to curate (default: ShapesWorld)")
    p.add_argument("--images", type=int, default=300, help="ShapesWorld images (default: 300)")
    p.add_argument("--model", default=None, help="f_pre checkpoint (default: tiny, pretrained here)")
    p.add_argument("--fraction", type=float, default=0.25, help="the budget m as a share of the pool (default: 0.25)")
    option(p, mllm_selector, "n_seed", "n1 (None: 15%% of the budget)", type=int)
    option(p, mllm_selector, "k", "NBGS group size (None: min(50k, ceil(M/13)))", type=int)
    option(p, mllm_selector, "tau", "NBGS softmax temperature")
    option(p, mllm_selector, "standardize", "z-score necessity inside each group first")
    option(p, mllm_selector, "reduction", "per-row loss reduction", choices=["sum", "mean"])
    option(p, mllm_selector, "batch_size", "rows per model forward pass")
    option(p, mllm_selector, "seed", "data, training and draw seed")
    p.add_argument("--stage2", action="store_true", help="train on the selection and compare with random")
    add_release_args(p, "hf-vitcurate/shapesworld-mllm-selector", "out/mllm_selector")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from datasets import DatasetDict

    from hf_vitcurate import validate
    from hf_vitcurate.hub import publish
    from hf_vitcurate.models import train
    from hf_vitcurate.testing import tiny_recipe, train_tiny
    from hf_vitcurate.select import random_subset

    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    truth: dict[str, str] = {}
    if args.input:
        from hf_vitcurate.commands.common import load_input

        pool = load_input(args.input)
    else:
        from hf_vitcurate.synthetic import pool_and_truth

        pool, truth = pool_and_truth(args.images, seed=args.seed)
    kept, rejected = validate(pool)
    logging.info("pool %d rows: kept %d, rejected %d", len(pool), len(kept), len(rejected))

    recipe = None
    base = args.model
    if base is None:
        # Tokenizer on the pool, vision tower pretrained on ShapesWorld cells, stage 1 on its captions.
        base = train_tiny(kept, work_dir=os.path.join(args.out, "models"), seed=args.seed)
        recipe = tiny_recipe()

    result = mllm_selector(kept, fraction=args.fraction, model=base, work_dir=os.path.join(args.out, "work"),
                           n_seed=args.n_seed, k=args.k, tau=args.tau, standardize=args.standardize, seed=args.seed,
                           reduction=args.reduction, batch_size=args.batch_size, recipe=recipe)
    selection, manifest = result
    budget = manifest["params"]["n"]
    report = {"rows_in": len(pool), "kept": len(kept), "rejected": len(rejected), "budget": budget,
              "n_seed": manifest["seed_rows"]["n_selected"], "selected": len(selection)}

    if truth:
        from hf_vitcurate.synthetic import degraded_share

        random_sel, _ = random_subset(kept, n=budget, seed=args.seed)
        report["degraded_share"] = {"pool": round(degraded_share(kept, truth), 4),
                                    "mllm_selector": round(degraded_share(selection, truth), 4),
                                    "random": round(degraded_share(random_sel, truth), 4)}
    if args.stage2:
        from hf_vitcurate.synthetic import evaluate

        random_sel, _ = random_subset(kept, n=budget, seed=args.seed)
        stage2 = {"seed": args.seed, **(recipe or {})}
        f_sel = train(selection, model=result.f_seed, output_dir=os.path.join(args.out, "models", "stage2"), **stage2)
        f_rand = train(random_sel, model=result.f_seed, output_dir=os.path.join(args.out, "models", "stage2_random"),
                       **stage2)
        report["benchmark"] = {"mllm_selector": evaluate(model=f_sel), "random": evaluate(model=f_rand)}

    DatasetDict({"train": selection}).save_to_disk(os.path.join(args.out, "data"))
    rejected.save_to_disk(os.path.join(args.out, "rejected"))
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({**manifest, "report": report}, f, indent=2)
    publish(DatasetDict({"train": selection}), args.repo_id, local_dir=os.path.join(args.out, "hub"),
            card="mllm_selector", rejected=rejected, version=args.version, push=args.push)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print_summary({"output": args.out, **report})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
