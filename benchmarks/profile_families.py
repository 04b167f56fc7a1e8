"""Where the necessity stage's time goes on CPU, per family: encode, vision tower, language body,
LM head, and the padding share of its batches.

    python benchmarks/profile_families.py --families qwen2_vl gemma3 llava_onevision --rows 32 \\
        --width 512 --layers 4 --threads 1 --batch-size 8

Times come from forward hooks on the model's vision tower, language model and ``lm_head``
(``lengths``: the stage's per-row encode for its plan, ``stages.necessity.plan_batches``;
``encode``: the batches' ``chat.encode``). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_families import pool, published_vocab  # noqa: E402


def _timed(module, name: str, totals: dict) -> None:
    starts = []
    module.register_forward_pre_hook(lambda *_: starts.append(time.perf_counter()))
    module.register_forward_hook(lambda *_: totals.__setitem__(name, totals[name] + time.perf_counter() - starts.pop()))


def _parts(model):
    inner = getattr(model, "model", model)
    vision = next(getattr(inner, n) for n in ("visual", "vision_tower", "vision_model") if hasattr(inner, n))
    return {"vision": vision, "language": inner.language_model, "lm_head": model.lm_head}


def profile(ds, path: str, batch_size: int, max_batch_tokens: int | None) -> dict:
    from hf_vitcurate.models.chat import encode
    from hf_vitcurate.models.loading import load
    from hf_vitcurate.models.loss import row_nll
    from hf_vitcurate.stages.necessity import plan_batches

    model, processor = load(path, dtype="float32", device="cpu")
    model.eval()
    totals: dict = defaultdict(float)
    for name, module in _parts(model).items():
        _timed(module, name, totals)
    rows = {k: ds[k] for k in ("images", "conversations")}  # ``datasets`` decodes the images
    start = time.perf_counter()
    plan = plan_batches(processor, rows, batch_size=batch_size, max_batch_tokens=max_batch_tokens)
    totals["lengths"] += time.perf_counter() - start
    start = time.perf_counter()
    encoded = [encode(processor, {k: [v[i] for i in idx] for k, v in rows.items()}) for idx in plan]
    totals["encode"] += time.perf_counter() - start
    tokens = padded = 0
    total = time.perf_counter()
    for batch in encoded:
        tokens += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
        row_nll(model, batch)
    totals["forward_total"] = time.perf_counter() - total
    totals["language_body"] = totals.pop("language")
    out = {k: round(v, 3) for k, v in totals.items()}
    out["padding_share"] = round(1 - tokens / padded, 3)
    out["batches"] = len(encoded)
    return out


def main(argv=None) -> int:
    from hf_vitcurate.testing.families import tiny_family_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=["qwen2_vl", "gemma3", "llava_onevision"])
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-batch-tokens", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vocab", choices=["tiny", "published"], default="tiny")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = pool(args.rows)
    report = {"args": vars(args), "families": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.families:
            path = tiny_family_checkpoint(name, os.path.join(tmp, name), width=args.width, layers=args.layers)
            if args.vocab == "published":
                published_vocab(path, name)
            report["families"][name] = profile(ds, path, args.batch_size, args.max_batch_tokens)
            print(name, json.dumps(report["families"][name]), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
