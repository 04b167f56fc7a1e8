"""Static cache across batches of different prompt lengths: compile once or per batch, same answers?

    python -m research.gpu_generation.static_batches   # on the GPU machine

profile_generate.py found a decode step 8x faster with ``cache_implementation="static"``
(compiled) after a 41 s first call. A curation run's batches differ in prompt length; this
times each batch both ways and counts the rows whose greedy tokens differ. Prints JSON.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import torch

CUDA = torch.cuda.is_available()
sync = torch.cuda.synchronize if CUDA else (lambda: None)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks"))
from bench_families import pool  # noqa: E402
from bench_gpu import build  # noqa: E402


def main() -> int:
    from hf_vitcurate.models.chat import encode, model_inputs
    from hf_vitcurate.models.loading import load
    from hf_vitcurate.stages.necessity import plan_batches

    new = 64
    out: dict = {"new_tokens": new, "batches": []}
    ds = pool(160, image_size=(448, 448) if CUDA else (56, 56))
    with tempfile.TemporaryDirectory() as tmp:
        dtype = torch.bfloat16 if CUDA else torch.float32
        path = build("qwen2_vl_2b", os.path.join(tmp, "q"), toy=not CUDA, dtype=dtype)
        model, processor = load(path, dtype=dtype, device="cuda" if CUDA else "cpu")
        model.eval()
        rows = ds[:]
        pad = processor.tokenizer.pad_token_id
        order = plan_batches(processor, rows, batch_size=32)
        for idx in order:
            part = {k: [rows[k][i] for i in idx] for k in ("images", "conversations")}
            inputs = model_inputs(encode(processor, part, generation=True), model)
            entry = {"prompt_shape": list(inputs["input_ids"].shape)}
            outs = {}
            for mode, extra in (("dynamic", {}), ("static", {"cache_implementation": "static"})):
                sync()
                start = time.perf_counter()
                with torch.inference_mode():
                    outs[mode] = model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                                num_beams=1, use_cache=True, pad_token_id=pad, **extra)
                sync()
                entry[f"{mode}_s"] = round(time.perf_counter() - start, 3)
            entry["rows_differing"] = int((outs["dynamic"] != outs["static"]).any(1).sum())
            out["batches"].append(entry)
            print(json.dumps(entry), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
