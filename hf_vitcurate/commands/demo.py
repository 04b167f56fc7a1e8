"""``vitcurate demo``: ``vitcurate curate`` with the built-in ShapesWorld recipe (mirrors :func:`hf_vitcurate.demo.run_demo`).

Example:
    $ vitcurate demo --output vitcurate_out --n-images 160 --fraction 0.25
"""

from __future__ import annotations

from .common import default_of, print_summary


def register(sub) -> None:
    from ..demo import run_demo

    p = sub.add_parser("demo", help="curate ShapesWorld with the built-in recipe into one local Hub-layout repo")
    default = default_of(run_demo, "output_dir")  # output_dir is --output, as everywhere
    p.add_argument("--output", default=default, help=f"output folder (default: {default})")
    p.add_argument("--work-dir", dest="work_dir", default=None,
                   help="models, answers and scores, reused by reruns (default: OUTPUT/work)")
    p.add_argument("--n-images", dest="n_images", type=int, default=None,
                   help="ShapesWorld images to draw (default: the recipe's, 160)")
    p.add_argument("--fraction", type=float, default=None,
                   help="share of the pool each budgeted config keeps (default: the recipe's)")
    p.add_argument("--seed", type=int, default=None, help="data, training and draw seed (default: the recipe's, 0)")
    p.add_argument("--repo-id", dest="repo_id", default=None, help="repo id written in the card (default: the recipe's)")
    p.add_argument("--outputs", nargs="+", default=None, metavar="CONFIG",
                   help="only these configs of the recipe (svit_core mminstruct_style recommended need no model)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo
    from .curate import closing, one_line_per_stage

    with one_line_per_stage(args):
        summary = run_demo(output_dir=args.output, work_dir=args.work_dir, n_images=args.n_images,
                           fraction=args.fraction, seed=args.seed, repo_id=args.repo_id, outputs=args.outputs)
    print_summary(closing(summary, args.output))
    return 0
