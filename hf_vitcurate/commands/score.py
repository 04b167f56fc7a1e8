"""``vitcurate score STAGE``: add model-based score columns (mirrors ``hf_vitcurate.stages``).

Run under ``accelerate launch`` to shard rows over processes; ``--work-dir`` keeps
finished chunks so a killed run resumes where it stopped.

Example:
    $ vitcurate score necessity pool/ --model runs/f_seed --output scored/ --work-dir runs/necessity
"""

from __future__ import annotations

import json
import math

from .common import add_input_args, load_input, save_output


def register(sub) -> None:
    p = sub.add_parser("score", help="add model-based score columns (necessity, ...)")
    stages = p.add_subparsers(dest="stage", metavar="STAGE", required=True)

    n = stages.add_parser("necessity", help="MLLM-Selector: seed-model loss of each row")
    add_input_args(n)
    n.add_argument("--model", required=True, help="checkpoint folder or Hub id (f_seed)")
    n.add_argument("--output", required=True, help="where to write the scored dataset")
    n.add_argument("--reduction", default="sum", choices=["sum", "mean"])
    n.add_argument("--sign", default="nll", choices=["nll", "loglik"], help="loglik: the paper's Eq. 3 literally")
    n.add_argument("--batch-size", type=int, default=16)
    n.add_argument("--max-length", type=int, default=2048)
    n.add_argument("--chunk-size", type=int, default=512)
    n.add_argument("--work-dir", default=None, help="chunk folder for resuming (default: temporary)")
    n.add_argument("--overwrite", action="store_true", help="discard chunks of a different earlier run")
    n.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights dtype (auto: the checkpoint's; bfloat16 on GPUs and on CPUs with AVX512-BF16/AMX)")
    n.set_defaults(func=run_necessity)


def run_necessity(args) -> int:
    from ..distributed import state
    from ..stages.necessity import necessity

    ds = load_input(args.input, args.format, args.image_root, args.source)
    scored = necessity(
        ds, args.model, reduction=args.reduction, sign=args.sign, batch_size=args.batch_size,
        max_length=args.max_length, out_dir=args.work_dir, chunk_size=args.chunk_size, overwrite=args.overwrite,
        dtype=args.dtype,
    )
    if state().is_main_process:
        save_output(scored, args.output)
        values = [v for v in scored.with_format("arrow")["necessity"].to_pylist() if v is not None and not math.isnan(v)]
        print(json.dumps({"rows": len(scored), "scored": len(values), "mean_necessity": sum(values) / max(1, len(values)),
                          "output": args.output}, indent=2))
    return 0
