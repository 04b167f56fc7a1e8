"""Where greedy generation's time goes on a GPU (Qwen2-VL-2B shape, random weights).

    python -m research.gpu_generation.profile_generate   # on the GPU machine

bench_gpu.py measured 100-130 ms per decode step at batch 32, far above what the weights'
bytes need (~5 ms on an H200 for a 2B model). This splits a step: the default dynamic cache,
a static cache (``cache_implementation="static"``, which generate compiles), and a profile of
the dynamic run's top operators. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time

import torch

CUDA = torch.cuda.is_available()  # else a toy-size check of the script on the CPU
sync = torch.cuda.synchronize if CUDA else (lambda: None)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks"))
from bench_families import pool  # noqa: E402
from bench_gpu import build  # noqa: E402


class TimeUp(Exception):
    pass


def timed_generate(model, inputs, pad, new_tokens, **extra) -> float:
    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1,
                       use_cache=True, pad_token_id=pad, **extra)
    sync()
    return time.perf_counter() - start


def main() -> int:
    from hf_vitcurate.models.chat import encode, model_inputs
    from hf_vitcurate.models.loading import load

    out: dict = {}
    ds = pool(32, image_size=(448, 448) if CUDA else (56, 56))
    with tempfile.TemporaryDirectory() as tmp:
        path = build("qwen2_vl_2b", os.path.join(tmp, "q"), toy=not CUDA, dtype=torch.bfloat16 if CUDA else torch.float32)
        model, processor = load(path, dtype=torch.bfloat16 if CUDA else torch.float32, device="cuda" if CUDA else "cpu")
        model.eval()
        rows = ds[:]
        part = {k: rows[k] for k in ("images", "conversations")}
        inputs = model_inputs(encode(processor, part, generation=True), model)
        out["prompt_shape"] = list(inputs["input_ids"].shape)
        pad = processor.tokenizer.pad_token_id
        timed_generate(model, inputs, pad, 2)  # warm-up
        for n in (1, 9, 33):
            out[f"dynamic_{n}_tokens_s"] = round(timed_generate(model, inputs, pad, n), 3)
        out["dynamic_ms_per_step"] = round((out["dynamic_33_tokens_s"] - out["dynamic_1_tokens_s"]) / 32 * 1e3, 2)
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            timed_generate(model, inputs, pad, 9)
        table = prof.key_averages()
        out["top_cpu"] = table.table(sort_by="self_cpu_time_total", row_limit=18)
        out["top_cuda"] = table.table(sort_by="self_device_time_total", row_limit=12)
        signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeUp()))
        signal.alarm(150)
        try:
            start = time.perf_counter()
            timed_generate(model, inputs, pad, 33, cache_implementation="static")
            out["static_first_call_s"] = round(time.perf_counter() - start, 2)
            out["static_33_tokens_s"] = round(timed_generate(model, inputs, pad, 33, cache_implementation="static"), 3)
            out["static_1_tokens_s"] = round(timed_generate(model, inputs, pad, 1, cache_implementation="static"), 3)
            out["static_ms_per_step"] = round((out["static_33_tokens_s"] - out["static_1_tokens_s"]) / 32 * 1e3, 2)
        except Exception as exc:  # noqa: BLE001 - reported
            out["static_error"] = f"{type(exc).__name__}: {exc}"[:400]
        signal.alarm(0)
    print(json.dumps({k: v for k, v in out.items() if not k.startswith("top_")}, indent=1))
    print(out["top_cpu"])
    print(out["top_cuda"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
