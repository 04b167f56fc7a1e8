"""``vitcurate select METHOD``: choose rows by their score columns (mirrors ``hf_vitcurate.select``).

Example:
    $ vitcurate select nbgs scored/ --n 5000 --output selected/ --manifest selected.json
"""

from __future__ import annotations

import json

from .common import add_input_args, load_input, save_output


def _common(p) -> None:
    add_input_args(p)
    p.add_argument("--n", type=int, required=True, help="number of rows to select")
    p.add_argument("--output", required=True, help="where to write the selection")
    p.add_argument("--manifest", default=None, help="where to write the manifest JSON (ids, parameters, seed)")


def register(sub) -> None:
    p = sub.add_parser("select", help="select rows by score columns (nbgs, random, top, bottom)")
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)

    nb = methods.add_parser("nbgs", help="MLLM-Selector necessity-based grouped sampling")
    _common(nb)
    nb.add_argument("--k", type=int, default=None, help="group size (default: min(50k, ceil(M/13)))")
    nb.add_argument("--tau", type=float, default=1.0, help="softmax temperature (0 = top per group)")
    nb.add_argument("--standardize", action="store_true", help="z-score scores inside each group first")
    nb.add_argument("--score-column", default="necessity")
    nb.add_argument("--seed", type=int, default=0)
    nb.set_defaults(func=run)

    for name, helptext in (("random", "uniform draw"), ("top", "highest scores"), ("bottom", "lowest scores")):
        b = methods.add_parser(name, help=f"baseline: {helptext}")
        _common(b)
        if name == "random":
            b.add_argument("--seed", type=int, default=0)
        else:
            b.add_argument("--score-column", default="necessity")
        b.set_defaults(func=run)


def run(args) -> int:
    from ..select import baselines
    from ..select.nbgs import nbgs

    ds = load_input(args.input, args.format, args.image_root, args.source)
    if args.method == "nbgs":
        sub, manifest = nbgs(ds, args.n, k=args.k, tau=args.tau, seed=args.seed, standardize=args.standardize,
                             score_column=args.score_column)
    elif args.method == "random":
        sub, manifest = baselines.random(ds, args.n, seed=args.seed)
    else:
        sub, manifest = getattr(baselines, args.method)(ds, args.n, score_column=args.score_column)
    save_output(sub, args.output)
    if args.manifest:
        with open(args.manifest, "w") as f:
            json.dump(manifest, f, indent=2)
    summary = {k: v for k, v in manifest.items() if k != "ids"}
    print(json.dumps(summary, indent=2))
    return 0
