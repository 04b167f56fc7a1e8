"""``vitcurate evaluate``: score a checkpoint on the ShapesWorld benchmark (mirrors :func:`hf_vitcurate.synthetic.evaluate.evaluate`).

Example:
    $ vitcurate evaluate --model runs/ft
    $ vitcurate evaluate bench/ --model runs/ft --output scores.json
"""

from __future__ import annotations

import json

from .common import check_model, load_input, option, print_summary, quiet_if_small


def register(sub) -> None:
    from ..synthetic.evaluate import evaluate

    p = sub.add_parser("evaluate", help="score a checkpoint on the ShapesWorld benchmark (0-100)")
    p.add_argument("input", nargs="?", default=None,
                   help="benchmark rows (folder saved with save_to_disk or a file); default: the built-in benchmark")
    p.add_argument("--model", required=True, help="checkpoint folder or Hub id")
    option(p, evaluate, "max_new_tokens", "tokens per answer at most")
    option(p, evaluate, "batch_size", "rows per generate call")
    option(p, evaluate, "dtype", "weights dtype (auto, float32, bfloat16)", type=str)
    option(p, evaluate, "num_threads", "CPU threads for torch", type=int)
    option(p, evaluate, "progress", "show the progress bar")
    p.add_argument("--output", default=None, help="write the scores here as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from accelerate import PartialState

    from ..synthetic.evaluate import evaluate

    check_model(args.model)
    bench = load_input(args.input) if args.input else None
    if bench is not None:
        quiet_if_small(len(bench))
    scores = evaluate(bench, model=args.model, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                      dtype=args.dtype, num_threads=args.num_threads, progress=args.progress)
    if PartialState().is_main_process:
        if args.output:
            with open(args.output, "w") as f:
                f.write(json.dumps(scores, indent=2) + "\n")
        print_summary({"output": args.output, "model": args.model, **scores})
    return 0
