"""``vitcurate validate``: check rows against the canonical schema (mirrors :func:`hf_vitcurate.validate`)."""

from __future__ import annotations

import json

from .common import add_input_args, load_input, save_output


def register(sub) -> None:
    p = sub.add_parser("validate", help="check rows against the schema; split kept/rejected")
    add_input_args(p)
    p.add_argument("--strict", action="store_true", help="stop at the first bad row with an error naming it")
    p.add_argument("--check-images", default="open", choices=["open", "verify", "none"],
                   help="open: read headers (default); verify: decode pixels; none: skip files")
    p.add_argument("--output", default=None, help="where to write kept rows (.jsonl/.parquet/folder)")
    p.add_argument("--rejected", default=None, help="where to write rejected rows with reasons")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import validate

    ds = load_input(args.input, args.format, args.image_root, args.source)
    check = False if args.check_images == "none" else args.check_images
    kept, rejected = validate(ds, strict=args.strict, check_images=check)
    if args.output:
        save_output(kept, args.output)
    if args.rejected:
        save_output(rejected, args.rejected)
    reasons: dict[str, int] = {}
    for r in rejected["reject_reason"]:
        reasons[r] = reasons.get(r, 0) + 1
    print(json.dumps({"rows_in": len(ds), "kept": len(kept), "rejected": len(rejected), "reasons": reasons}, indent=2))
    return 0
