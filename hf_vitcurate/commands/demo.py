"""``vitcurate demo``: the main job on the embedded ShapesWorld default (mirrors :func:`hf_vitcurate.demo.run_demo`).

Example:
    $ vitcurate demo --output vitcurate_out --n-images 160 --fraction 0.25
"""

from __future__ import annotations

from .common import default_of, option, print_summary


def register(sub) -> None:
    from ..demo import run_demo

    p = sub.add_parser("demo", help="run the whole pipeline on ShapesWorld and publish locally")
    default = default_of(run_demo, "output_dir")  # output_dir is --output, as everywhere
    p.add_argument("--output", default=default, help=f"output folder (default: {default})")
    option(p, run_demo, "n_images", "ShapesWorld images to draw")
    option(p, run_demo, "fraction", "share of the pool to select")
    option(p, run_demo, "seed", "random seed")
    option(p, run_demo, "repo_id", "repo id written in the card")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo

    summary = run_demo(output_dir=args.output, n_images=args.n_images, fraction=args.fraction, seed=args.seed,
                       repo_id=args.repo_id)
    print_summary({"output": args.output, **summary})
    return 0
