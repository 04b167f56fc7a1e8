"""Necessity and generation on a GPU at real model sizes, random weights (no download).

    bash benchmarks/bench_gpu.sh                       # Qwen2-VL-2B and LLaVA-1.5-7B shapes, bf16
    python benchmarks/bench_gpu.py --shapes qwen2_vl_2b --toy --rows 8   # the same code at toy size (CPU)

Each shape is the published config of the checkpoint (dimensions copied below); the model is
built with random weights in bf16, saved with ``save_pretrained`` with a locally trained
tokenizer and the family's processor and template (testing.families), and loaded back by the
stages as any checkpoint. Reported per shape: necessity tokens/s (answer + prompt tokens
through the model), generation tokens/s (greedy, batched, KV cache, every row writing ``--new-tokens``), the model FLOP
utilisation of the necessity forward passes (FLOPs counted by ``torch.utils.flop_counter``)
against the GPU's bf16 peak (the data-sheet figure where the device is known, and a measured
``torch.mm``), the padding share of the batches and the peak GPU memory. The necessity passes are
the stage's own (``loss.row_nll`` on its ``plan_batches`` batches: LM head only where an answer
token is predicted); ``lengths_s``/``encode_s`` time the CPU-side encoding a stage run adds
(each row for its length, then each batch) and ``encode_share`` its share of the stage's time.
``overlapped_s`` times the same passes with each batch encoded in a thread one batch ahead (as
the stage now does on accelerators), and ``stage_s``/``stage_rows_per_s`` the necessity stage
end to end (``--no-stage`` skips it). One shape failing is reported as its ``error``; the others
still run. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_families import matmul_gflops, pool  # noqa: E402

# Published configs (config.json of the checkpoints), the dimensions that set the cost.
SHAPES = {
    "qwen2_vl_2b": ("qwen2_vl", "Qwen/Qwen2-VL-2B-Instruct", dict(
        text=dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                  num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, mrope_section=[16, 24, 24]),
        vision=dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4))),
    "llava_15_7b": ("llava", "llava-hf/llava-1.5-7b-hf", dict(
        text=dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, vocab_size=32064),
        vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    image_size=336, patch_size=14))),
}
# Dense bf16 tensor-core peaks from the data sheets (FLOP/s).
PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def scaled(shape: dict, toy: bool) -> dict:
    """The shape, or a toy version of it (same code path, for a CPU check)."""
    if not toy:
        return shape
    text = dict(shape["text"], hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=1024)
    if "mrope_section" in text:
        text["mrope_section"] = [4, 2, 2]
    vision = {k: (64 if k in ("embed_dim", "hidden_size") else 2 if k in ("depth", "num_hidden_layers")
                  else 4 if k in ("num_heads", "num_attention_heads") else 128 if k == "intermediate_size" else v)
              for k, v in shape["vision"].items()}
    if "image_size" in vision:
        vision.update(image_size=56, patch_size=14)
    return {"text": text, "vision": vision}


def build(shape_name: str, out: str, *, toy: bool, dtype) -> str:
    """Save a random-weight checkpoint of the shape with the family's tokenizer, processor and template."""
    import transformers

    from hf_vitcurate.testing.families import Sizes, family, family_tokenizer, processor_class

    family_name, _, shape = SHAPES[shape_name]
    shape = scaled(shape, toy)
    fam = family(family_name)
    tok = family_tokenizer(fam)
    if not toy:  # the published tokenizers' limit; the tiny one's 512 warns on 600-token rows
        tok.model_max_length = 32768
    config, image_processor, kwargs = fam.build(tok, Sizes())
    text = dict(shape["text"])
    mrope = text.pop("mrope_section", None)
    config.tie_word_embeddings = text.pop("tie_word_embeddings", config.tie_word_embeddings)
    # Attributes derived from the sizes when a config is made: recomputed for the new sizes.
    if getattr(config.text_config, "layer_types", None):  # one entry per layer
        text["layer_types"] = [config.text_config.layer_types[0]] * text["num_hidden_layers"]
    if getattr(config.text_config, "head_dim", None):
        text["head_dim"] = text["hidden_size"] // text["num_attention_heads"]
    if family_name == "qwen2_vl":
        config.text_config.update(text)
        config.text_config.rope_parameters["mrope_section"] = mrope
        config.vision_config.update(shape["vision"])
        config.vision_config.hidden_size = text["hidden_size"]
        if not toy:  # the published preprocessor_config.json: min_pixels 3136, max_pixels 12845056
            image_processor.size = {"shortest_edge": 3136, "longest_edge": 12845056}
    else:
        config.text_config.update(text)
        config.vision_config.update(shape["vision"])
        config.vision_config.projection_dim = shape["vision"]["hidden_size"]
        config.vision_feature_layer = -2
        size = shape["vision"]["image_size"]
        image_processor.size = {"shortest_edge": size}
        image_processor.crop_size = {"height": size, "width": size}
        config.image_seq_length = kwargs["num_image_tokens"] = (size // shape["vision"]["patch_size"]) ** 2
        kwargs.pop("num_image_tokens")
    if os.environ.get("BENCH_GPU_META"):  # parameter count only (a check of the shapes on any machine)
        with torch.device("meta"):
            model = getattr(transformers, fam.model_class)(config)
        return sum(p.numel() for p in model.parameters())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = getattr(transformers, fam.model_class)(config).to(dtype)
    processor = processor_class(fam.processor_class)(image_processor=image_processor, tokenizer=tok,
                                                     chat_template=fam.template, **kwargs)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    del model
    return out


def measure(path: str, ds, *, batch_size: int, new_tokens: int, dtype) -> dict:
    """Necessity (tokens/s, MFU, padding) and greedy generation (tokens/s) of one checkpoint."""
    from torch.utils.flop_counter import FlopCounterMode

    from hf_vitcurate.models.batching import ahead
    from hf_vitcurate.models.chat import encode, model_inputs
    from hf_vitcurate.models.loading import load
    from hf_vitcurate.models.loss import row_nll
    from hf_vitcurate.stages.necessity import plan_batches

    cuda = torch.cuda.is_available()
    model, processor = load(path, dtype=dtype, device="cuda" if cuda else "cpu")
    model.eval()
    rows = ds[:]
    start = time.perf_counter()
    order = plan_batches(processor, rows, batch_size=batch_size)  # the stage's own batches (true token lengths)
    lengths_s = time.perf_counter() - start

    def part(idx) -> dict:
        return {k: [rows[k][i] for i in idx] for k in ("images", "conversations")}

    parts = [part(idx) for idx in order]
    start = time.perf_counter()
    batches = [encode(processor, p) for p in parts]  # what the stage encodes per batch (CPU side)
    encode_s = time.perf_counter() - start
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with torch.inference_mode():
        row_nll(model, batches[0])  # warm-up (kernels, allocator)
        counter = FlopCounterMode(display=False)
        with counter:
            for batch in batches:
                row_nll(model, batch)  # the stage's forward: LM head only where an answer token is predicted
        flops = counter.get_total_flops()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        sync()
        start = time.perf_counter()
        for batch in batches:
            row_nll(model, batch)
        sync()
        forward_s = time.perf_counter() - start
        # The same passes with each batch encoded one ahead in a thread (models.batching.ahead, as
        # score_rows does on accelerators), each result brought back per batch as score_rows does.
        start = time.perf_counter()
        with ahead(order, lambda idx: encode(processor, part(idx))) as get:
            for idx in order:
                s, t = row_nll(model, get(idx))
                s.cpu(), t.cpu()
        overlapped_s = time.perf_counter() - start
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    padded = sum(b["attention_mask"].numel() for b in batches)
    # Greedy decoding as models.generate.greedy_batch does it, every row made to write
    # new_tokens tokens (random weights would stop at arbitrary points).
    pad = processor.tokenizer.pad_token_id
    prompts = [model_inputs(encode(processor, part, generation=True), model) for part in parts]
    sync()
    start = time.perf_counter()
    generated = 0
    with torch.inference_mode():
        for inputs in prompts:
            out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 num_beams=1, use_cache=True, pad_token_id=pad)
            generated += (out.shape[1] - inputs["input_ids"].shape[1]) * out.shape[0]
    sync()
    generate_s = time.perf_counter() - start
    return {"necessity_tokens_per_s": round(tokens / forward_s, 1), "forward_tflop": round(flops / 1e12, 6),
            # The CPU side a stage run adds: each row encoded for its length, then each batch.
            "lengths_s": round(lengths_s, 3), "encode_s": round(encode_s, 3), "forward_s": round(forward_s, 3),
            "encode_share": round((lengths_s + encode_s) / (lengths_s + encode_s + forward_s), 3),
            "overlapped_s": round(overlapped_s, 3),
            "forward_tflops": round(flops / forward_s / 1e12, 4), "padding_share": round(1 - tokens / padded, 3),
            "generation_tokens_per_s": round(generated / generate_s, 1), "generated_tokens": generated,
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None}


def stage(path: str, ds, *, batch_size: int) -> dict:
    """The necessity stage end to end (decoding, chunks, loading, scoring): rows/s as a user sees it.

    ``fingerprint_s``: the first hash of the weights (once per checkpoint; later runs read the
    hash cache), taken apart so that ``stage_s`` is a rerun's cost.
    """
    from hf_vitcurate.identity import model_fingerprint
    from hf_vitcurate.stages.necessity import necessity

    start = time.perf_counter()
    model_fingerprint(path)
    fingerprint_s = time.perf_counter() - start
    start = time.perf_counter()
    scored = necessity(ds, model=path, batch_size=batch_size)
    stage_s = time.perf_counter() - start
    flagged = sum(1 for f in scored["necessity_flag"] if f and not f.startswith("truncated"))
    return {"fingerprint_s": round(fingerprint_s, 2), "stage_s": round(stage_s, 2),
            "stage_rows_per_s": round(len(ds) / stage_s, 1), "stage_flagged_rows": flagged}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=sorted(SHAPES))
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=448, help="side of the square test images (pixels)")
    ap.add_argument("--toy", action="store_true", help="toy sizes of the same shapes (a CPU check of the script)")
    ap.add_argument("--no-stage", dest="stage", action="store_false",
                    help="skip the end-to-end necessity stage (stage_s, stage_rows_per_s)")
    ap.add_argument("--work-dir", default=None, help="where the checkpoints go (default: a temporary folder)")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    report = {"device": torch.cuda.get_device_name() if cuda else "cpu", "dtype": str(dtype).split(".")[-1],
              "rows": args.rows, "batch_size": args.batch_size, "toy": args.toy, "shapes": {}}
    if cuda:
        name = torch.cuda.get_device_name()
        report["peak_tflops_datasheet"] = next((v / 1e12 for k, v in PEAKS.items() if k in name), None)
        a = torch.randn(8192, 8192, device="cuda", dtype=dtype)
        torch.mm(a, a)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(10):
            torch.mm(a, a)
        torch.cuda.synchronize()
        report["peak_tflops_measured_mm"] = round(10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12, 1)
        del a
    else:
        report["peak_tflops_measured_mm"] = round(matmul_gflops() / 1e3, 3)
    peak = report.get("peak_tflops_datasheet") or report["peak_tflops_measured_mm"]
    # Real checkpoints see real image sizes: Qwen2-VL's dynamic resolution makes 448 px 256 tokens.
    ds = pool(args.rows, image_size=(56, 56) if args.toy else (args.image_size, args.image_size))
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        for shape in args.shapes:
            result: dict = {}
            try:  # one shape failing still leaves the others' figures
                start = time.perf_counter()
                path = build(shape, os.path.join(tmp, shape), toy=args.toy, dtype=dtype)
                built_s = time.perf_counter() - start
                result = measure(path, ds, batch_size=args.batch_size, new_tokens=args.new_tokens, dtype=dtype)
                result.update(build_s=round(built_s, 1), mfu=float(f"{result['forward_tflops'] / peak:.3g}"),
                              published_config=SHAPES[shape][1])
                print(shape, json.dumps(result), file=sys.stderr, flush=True)
                if cuda:
                    torch.cuda.empty_cache()
                if args.stage:
                    result.update(stage(path, ds, batch_size=args.batch_size))
            except Exception as exc:  # noqa: BLE001 - reported, the next shape still runs
                traceback.print_exc()
                result = {**result, "error": f"{type(exc).__name__}: {exc}"[:500]}
            report["shapes"][shape] = result
            print(shape, json.dumps(result), file=sys.stderr, flush=True)
            if cuda:
                torch.cuda.empty_cache()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
