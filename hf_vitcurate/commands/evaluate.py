"""``vitcurate evaluate``: score a checkpoint on the ShapesWorld benchmark (mirrors :func:`hf_vitcurate.synthetic.evaluate.evaluate`).

Example:
    $ vitcurate evaluate runs/ft
    $ vitcurate evaluate runs/ft --benchmark bench/ --output scores.json
"""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on the ShapesWorld benchmark (0-100)")
    p.add_argument("model", help="checkpoint folder or Hub id")
    p.add_argument("--benchmark", default=None,
                   help="benchmark rows (folder saved with save_to_disk or a file); default: the built-in one")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--output", default=None, help="write the scores here as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from accelerate import PartialState

    from ..synthetic.evaluate import evaluate
    from .common import load_input

    bench = load_input(args.benchmark) if args.benchmark else None
    scores = evaluate(args.model, bench, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                      dtype=args.dtype, num_threads=args.num_threads)
    if PartialState().is_main_process:
        text = json.dumps(scores, indent=2)
        print(text)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text + "\n")
    return 0
