"""``vitcurate convert``: read any supported format, write LLaVA, ShareGPT or the canonical schema.

Mirrors :func:`hf_vitcurate.load_vit` then :func:`hf_vitcurate.formats.save_vit` (or
``to_parquet`` / ``save_to_disk`` for the canonical schema). JSON outputs (llava, sharegpt,
jsonl) write image paths relative to the output's folder, so they stay valid when the output
and the images move together; ``--embed-images`` copies the images next to the output
instead, so the output folder moves alone. Parquet and ``save_to_disk`` outputs hold the
image bytes (``datasets`` embeds local files).

Example:
    $ vitcurate convert llava_bench.jsonl --output bench.parquet --image-root images/
    $ vitcurate convert gen.jsonl --output out.json --format mminstruct --to llava --errors reject --rejected bad.jsonl
    $ vitcurate convert cc_sbu_align/filter_cap.json --output captions.parquet --instruction "Describe this image in detail."
"""

from __future__ import annotations

from collections import Counter

from ..errors import ConfigError
from .common import add_input_args, option, print_summary, quiet_if_small, save_output

TARGETS = ("auto", "llava", "sharegpt", "parquet", "jsonl", "disk")


def register(sub) -> None:
    from ..formats import load_vit

    p = sub.add_parser("convert", help="convert a VIT dataset between formats (LLaVA, ShareGPT, canonical)")
    add_input_args(p)
    p.add_argument("--output", required=True, help="output file (.json/.jsonl/.parquet) or folder (save_to_disk)")
    p.add_argument("--to", default="auto", choices=TARGETS,
                   help="llava/sharegpt: JSON(L) in that format; parquet/jsonl/disk: the canonical schema; "
                        "auto (default): .parquet -> parquet, .json/.jsonl -> llava, else disk")
    option(p, load_vit, "task", "value of the `task` column for every row (default: per format)", type=str)
    option(p, load_vit, "split", "split to read from a folder or Hub repo (default: train)", type=str)
    option(p, load_vit, "name", "config name of a Hub repo (e.g. a the_cauldron subset)", type=str)
    option(p, load_vit, "errors", "raise: stop at the first malformed record; reject: write bad ones to --rejected",
           choices=["raise", "reject"])
    p.add_argument("--rejected", default=None, help="where to write rejected records with reasons (.jsonl/.parquet/folder)")
    p.add_argument("--explode-turns", action="store_true", help="split multi-turn rows into single-turn rows {id}#t{k}")
    p.add_argument("--output-image-root", default=None,
                   help="llava/sharegpt/jsonl output: write image paths relative to this folder (default: the output's folder)")
    p.add_argument("--embed-images", action="store_true",
                   help="llava/sharegpt/jsonl output: copy every image next to the output (images/{id}-{k}.{ext}) so the "
                        "folder is self-contained (parquet and disk outputs always hold the image bytes)")
    p.set_defaults(func=run)


def _target(args) -> str:
    if args.to != "auto":
        return args.to
    if args.output.endswith(".parquet"):
        return "parquet"
    return "llava" if args.output.endswith((".json", ".jsonl")) else "disk"


def run(args) -> int:
    from .. import explode_turns, load_vit
    from ..formats import save_vit
    from ..formats.relocate import relocate_images
    from ..results import Split

    if args.rejected and args.errors != "reject":
        raise ConfigError("--rejected: needs --errors reject")
    extra = {k: getattr(args, k) for k in ("field", "instruction", "allow_outside_root") if getattr(args, k, None) is not None}
    loaded = load_vit(args.input, format=args.format, image_root=args.image_root, source=args.source,
                      task=args.task, errors=args.errors, name=args.name, split=args.split, **extra)
    ds, rejected = loaded if isinstance(loaded, Split) else (loaded, None)
    quiet_if_small(len(ds))
    if args.explode_turns:
        ds = explode_turns(ds)
    target = _target(args)
    # JSON outputs: image paths relative to the output (valid when output and images move together), or copied next to it.
    image_paths = "copy" if args.embed_images else "relative"
    if target in ("llava", "sharegpt"):
        save_vit(ds, args.output, format=target, image_root=args.output_image_root, image_paths=image_paths)
    elif target == "jsonl":
        relocate_images(ds, args.output, image_paths=image_paths, image_root=args.output_image_root).to_json(args.output, lines=True)
    elif target == "parquet":
        ds.to_parquet(args.output)
    else:
        save_output(ds, args.output)
    if rejected is not None and args.rejected:
        save_output(rejected, args.rejected)
    reasons = Counter(rejected.with_format("arrow")["reject_reason"].to_pylist()) if rejected is not None and len(rejected) else {}
    print_summary({"output": args.output, "to": target, "rows": len(ds), "rejected": len(rejected) if rejected is not None else 0,
                   "rejected_output": args.rejected, "reasons": dict(reasons)})
    return 0
