"""Packing against padded batches for LLaVA-OneVision's Qwen2 language model (CPU, one thread).

    python benchmarks/bench_packing.py

The stage's batches (true token lengths, 8 rows) of a 24-row pool run through the language
model twice: padded (``[rows, longest]`` with a 2-D mask) and packed (the rows concatenated
into one sequence, per-row position ids, a block-diagonal causal 4-D SDPA mask). Random
hidden inputs of each row's length stand in for the merged image and text embeddings.
Checks that a packed row equals the row alone, then prints the padding share and the
padded / packed time ratio (median and range of 5 interleaved pairs).
"""
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_families import pool  # noqa: E402
from hf_vitcurate.testing.families import tiny_family_checkpoint
from hf_vitcurate.models.loading import load
from hf_vitcurate.stages.necessity import token_lengths
from hf_vitcurate.models.batching import token_batches

def main() -> None:
    """Run the comparison and print the figures."""
    torch.set_num_threads(1)
    ds = pool(24)
    rows = {k: ds[k] for k in ("images", "conversations")}
    with tempfile.TemporaryDirectory() as t:
        p = tiny_family_checkpoint("llava_onevision", os.path.join(t, "m"), width=512, layers=4)
        model, proc = load(p, dtype="float32", device="cpu"); model.eval()
        lm = model.model.language_model
        L = token_lengths(proc, rows)
        plan = token_batches(L, 8)
        g = torch.Generator().manual_seed(0)
        emb = [torch.randn(int(n), 512, generator=g) for n in L]
        def padded():
            for b in plan:
                m = int(L[b].max()); x = torch.zeros(len(b), m, 512); a = torch.zeros(len(b), m, dtype=torch.long)
                for r, i in enumerate(b): x[r, : L[i]] = emb[i]; a[r, : L[i]] = 1
                lm(inputs_embeds=x, attention_mask=a)
        def packed():
            for b in plan:
                x = torch.cat([emb[i] for i in b])[None]; n = x.shape[1]
                pos = torch.cat([torch.arange(int(L[i])) for i in b])[None]
                seg = torch.cat([torch.full((int(L[i]),), r) for r, i in enumerate(b)])
                allowed = (seg[:, None] == seg[None, :]) & (torch.arange(n)[:, None] >= torch.arange(n)[None, :])
                mask = torch.where(allowed, 0.0, float("-inf"))[None, None]
                lm(inputs_embeds=x, attention_mask=mask, position_ids=pos)
        with torch.inference_mode():
            # same result check on the first batch's first row
            b = plan[0]; i = b[0]
            ref = lm(inputs_embeds=emb[i][None]).last_hidden_state[0]
            x = torch.cat([emb[j] for j in b])[None]; n = x.shape[1]
            pos = torch.cat([torch.arange(int(L[j])) for j in b])[None]
            seg = torch.cat([torch.full((int(L[j]),), r) for r, j in enumerate(b)])
            allowed = (seg[:, None] == seg[None, :]) & (torch.arange(n)[:, None] >= torch.arange(n)[None, :])
            out = lm(inputs_embeds=x, attention_mask=torch.where(allowed, 0.0, float("-inf"))[None, None], position_ids=pos).last_hidden_state[0]
            k = int(L[plan[0][0]])
            print("packed row equals alone:", torch.allclose(out[:k], ref, rtol=1e-4, atol=1e-4))
            padded(); packed()
            ratios = []
            for _ in range(5):
                s = time.perf_counter(); padded(); a = time.perf_counter() - s
                s = time.perf_counter(); packed(); c = time.perf_counter() - s
                ratios.append(a / c)
            print("padding share", 1 - L.sum() / sum(len(b) * L[b].max() for b in plan))
            print("padded/packed time ratio median %.3f range %.3f-%.3f" % (statistics.median(ratios), min(ratios), max(ratios)))


if __name__ == "__main__":
    main()
