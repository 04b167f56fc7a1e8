"""``vitcurate validate``: check rows against the canonical schema (mirrors :func:`hf_vitcurate.validate`).

Example:
    $ vitcurate validate pool.jsonl --output kept.jsonl --rejected rejected.jsonl
"""

from __future__ import annotations

from collections import Counter

from .common import add_input_args, load_input, option, print_summary, quiet_if_small, save_output


def register(sub) -> None:
    from ..schema import validate

    p = sub.add_parser("validate", help="check rows against the schema; split kept/rejected")
    add_input_args(p)
    option(p, validate, "strict", "stop at the first bad row with an error naming it")
    option(p, validate, "check_images", "open: read image headers; verify: decode pixels; none: skip files",
           choices=["open", "verify", "none"])
    option(p, validate, "map_batch_size", "rows per Arrow batch")
    p.add_argument("--output", default=None, help="where to write kept rows (.jsonl/.parquet/folder)")
    p.add_argument("--rejected", default=None, help="where to write rejected rows with reasons")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import validate

    ds = load_input(args)
    quiet_if_small(len(ds))
    check = False if args.check_images == "none" else args.check_images
    kept, rejected = validate(ds, strict=args.strict, check_images=check, map_batch_size=args.map_batch_size)
    if args.output:
        save_output(kept, args.output)
    if args.rejected:
        save_output(rejected, args.rejected)
    reasons = Counter(rejected.with_format("arrow")["reject_reason"].to_pylist()) if len(rejected) else Counter()
    print_summary({"output": args.output, "rejected_output": args.rejected, "rows_in": len(ds), "kept": len(kept),
                   "rejected": len(rejected), "reasons": dict(reasons)})
    return 0
