"""Build an MLLM-Selector mixture: seed model -> necessity -> NBGS -> (stage 2) -> publish.

    python dataset_scripts/build_mllm_selector.py --out out/mllm_selector            # ShapesWorld (default)
    python dataset_scripts/build_mllm_selector.py --input pool/ --base-model llava-hf/llava-1.5-7b-hf \\
        --budget-fraction 0.15 --out out/llava_mllm_selector

Steps (papers/001, SPEC §1):
1. pool: ShapesWorld's training sources (ground truth set aside, used only for the report)
   or ``--input`` (a ``save_to_disk`` folder or any file ``load_vit`` reads), validated;
2. f_pre: ``--base-model``, or on ShapesWorld a tiny LLaVA checkpoint pretrained on captions;
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

from hf_vitcurate.commands.common import add_release_args


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", default=None, help="pool to curate (default: ShapesWorld)")
    p.add_argument("--images", type=int, default=300, help="ShapesWorld images (default: 300)")
    p.add_argument("--base-model", default=None, help="f_pre checkpoint (default: tiny, pretrained here)")
    p.add_argument("--budget-fraction", type=float, default=0.25, help="m as a share of the pool")
    p.add_argument("--n-seed", type=int, default=None, help="n1 (default: 15%% of the budget)")
    p.add_argument("--k", type=int, default=None, help="NBGS group size (default: min(50k, ceil(M/13)))")
    p.add_argument("--tau", type=float, default=1.0)
    p.add_argument("--standardize", action="store_true")
    p.add_argument("--reduction", default="sum", choices=["sum", "mean"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--stage2", action="store_true", help="train on the selection and compare with random")
    p.add_argument("--seed", type=int, default=0)
    add_release_args(p, "hf-vitcurate/shapesworld-mllm-selector", "out/mllm_selector")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from datasets import DatasetDict

    from hf_vitcurate import validate
    from hf_vitcurate.hub import publish
    from hf_vitcurate.models import tiny_recipe, train, train_tiny
    from hf_vitcurate.select import baselines, mllm_selector

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
    base = args.base_model
    if base is None:
        # Tokenizer on the pool, vision tower pretrained on ShapesWorld cells, stage 1 on its captions.
        base = train_tiny(kept, os.path.join(args.out, "models"), seed=args.seed)
        recipe = tiny_recipe()

    budget = max(2, int(args.budget_fraction * len(kept)))
    result = mllm_selector(kept, budget, base, os.path.join(args.out, "work"), n_seed=args.n_seed, k=args.k,
                           tau=args.tau, standardize=args.standardize, seed=args.seed, reduction=args.reduction,
                           batch_size=args.batch_size, train_recipe=recipe)
    selection = result["selection"]
    report = {"rows_in": len(pool), "kept": len(kept), "rejected": len(rejected), "budget": budget,
              "n_seed": result["manifest"]["seed"]["n_selected"], "selected": len(selection)}

    if truth:
        from hf_vitcurate.synthetic import degraded_share

        random_sel, _ = baselines.random(kept, budget, seed=args.seed)
        report["degraded_share"] = {"pool": round(degraded_share(kept, truth), 4),
                                    "mllm_selector": round(degraded_share(selection, truth), 4),
                                    "random": round(degraded_share(random_sel, truth), 4)}
    if args.stage2:
        from hf_vitcurate.synthetic import evaluate

        random_sel, _ = baselines.random(kept, budget, seed=args.seed)
        f_sel = train(result["f_seed"], selection, os.path.join(args.out, "models", "stage2"), seed=args.seed, **(recipe or {}))
        f_rand = train(result["f_seed"], random_sel, os.path.join(args.out, "models", "stage2_random"), seed=args.seed, **(recipe or {}))
        report["benchmark"] = {"mllm_selector": evaluate(f_sel), "random": evaluate(f_rand)}

    DatasetDict({"train": selection}).save_to_disk(os.path.join(args.out, "data"))
    rejected.save_to_disk(os.path.join(args.out, "rejected"))
    manifest = {**result["manifest"], "report": report}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    publish(DatasetDict({"train": selection}), args.repo_id, local_dir=os.path.join(args.out, "hub"),
            card="mllm_selector", rejected=rejected, version=args.version, push=args.push)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
