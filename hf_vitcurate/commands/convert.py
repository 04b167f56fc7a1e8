"""``vitcurate convert``: read any supported format, write LLaVA, ShareGPT or the canonical schema.

Mirrors :func:`hf_vitcurate.load_vit` then :func:`hf_vitcurate.formats.save_vit` (or
``to_parquet`` / ``save_to_disk`` for the canonical schema).

Example:
    $ vitcurate convert llava_bench.jsonl bench.parquet --image-root images/
    $ vitcurate convert gen.jsonl out.json --format mminstruct --to llava --errors reject --rejected bad.jsonl
"""

from __future__ import annotations

import json

from .common import add_input_args, save_output

TARGETS = ("auto", "llava", "sharegpt", "parquet", "jsonl", "disk")


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert a VIT dataset between formats (LLaVA, ShareGPT, canonical)")
    add_input_args(p)
    p.add_argument("output", help="output file (.json/.jsonl/.parquet) or folder (save_to_disk)")
    p.add_argument("--to", default="auto", choices=TARGETS,
                   help="llava/sharegpt: JSON(L) in that format; parquet/jsonl/disk: the canonical schema; "
                        "auto (default): .parquet -> parquet, .json/.jsonl -> llava, else disk")
    p.add_argument("--task", default=None, help="value of the `task` column for every row (default: per format)")
    p.add_argument("--split", default=None, help="split to read from a folder or Hub repo (default: train)")
    p.add_argument("--name", default=None, help="config name of a Hub repo (e.g. a the_cauldron subset)")
    p.add_argument("--errors", default="raise", choices=["raise", "reject"],
                   help="raise: stop at the first malformed record; reject: keep going, write bad ones to --rejected")
    p.add_argument("--rejected", default=None, help="where to write rejected records with reasons (.jsonl/.parquet/folder)")
    p.add_argument("--explode-turns", action="store_true", help="split multi-turn rows into single-turn rows {id}#t{k}")
    p.add_argument("--output-image-root", default=None,
                   help="llava/sharegpt output: write image paths relative to this folder (default: the output's folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import explode_turns, load_vit
    from ..formats import save_vit

    loaded = load_vit(args.input, format=args.format, image_root=args.image_root, source=args.source,
                      task=args.task, errors=args.errors, name=args.name, split=args.split)  # fmt: skip
    ds, rejected = loaded if isinstance(loaded, tuple) else (loaded, None)
    if args.explode_turns:
        ds = explode_turns(ds)
    target = args.to
    if target == "auto":
        target = "parquet" if args.output.endswith(".parquet") else "llava" if args.output.endswith((".json", ".jsonl")) else "disk"
    if target in ("llava", "sharegpt"):
        save_vit(ds, args.output, format=target, image_root=args.output_image_root)
    elif target == "parquet":
        ds.to_parquet(args.output)
    elif target == "jsonl":
        ds.to_json(args.output, lines=True)
    else:
        save_output(ds, args.output)
    if rejected is not None and args.rejected:
        save_output(rejected, args.rejected)
    reasons: dict[str, int] = {}
    for r in rejected["reject_reason"] if rejected is not None else []:
        reasons[r] = reasons.get(r, 0) + 1
    print(json.dumps({"output": args.output, "to": target, "rows": len(ds),
                      "rejected": len(rejected) if rejected is not None else 0, "reasons": reasons}, indent=2))  # fmt: skip
    return 0
