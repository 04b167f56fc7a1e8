"""``vitcurate demo``: the main job on the embedded ShapesWorld default (see :mod:`hf_vitcurate.demo`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on ShapesWorld and publish locally")
    p.add_argument("--out", default="vitcurate_out", help="output folder (default: vitcurate_out)")
    p.add_argument("--n-images", type=int, default=160, help="ShapesWorld images to draw")
    p.add_argument("--budget-fraction", type=float, default=0.25, help="share of the pool to select")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo

    run_demo(args.out, n_images=args.n_images, budget_fraction=args.budget_fraction, seed=args.seed)
    return 0
