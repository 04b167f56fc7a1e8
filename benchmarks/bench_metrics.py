"""MQ metric throughput: ``hf_vitcurate.metrics`` vs the reference composition (pycocoevalcap + nltk).

    python benchmarks/bench_metrics.py                       # real captions + short answers
    python benchmarks/bench_metrics.py --n 20000 --ref-n 1000

The reference is the straightforward composition the metrics are defined by (docs/methods.md),
on the same tokens: ``pycocoevalcap``'s ``Bleu(4)`` and ``Rouge`` (one batched call each, which
returns per-sample scores: the fastest way to use them) and nltk's ``meteor_score`` per
sample, with the same WordNet. It runs on the first ``--ref-n`` samples; values are
checked equal (<= 1e-9) there and the throughput ratio is computed on that subset and on
the whole run (samples/s). Each side gets its own freshly loaded WordNet reader (nltk caches
parsed synsets in the reader), so neither profits from the other's warm-up.

Two workloads: ``captions`` (real MiniGPT-4 detailed descriptions, ~70 tokens, one
reference each, all pairs distinct) and ``short`` (VQA-style answers of 1-12 tokens drawn
from templates, as a tuned model answers ShapesWorld: many repeats). ``cold`` is a fresh
scorer (empty stem/synonym caches; WordNet already loaded), ``warm`` the same scorer again.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import time

import numpy as np

from hf_vitcurate.metrics import COMPONENTS, Scorer, coco_tokenize, find_wordnet
from hf_vitcurate.metrics.wordnet import load_wordnet

CAPTIONS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "real",
                        "minigpt4_cc_sbu_align_scored.json")


def caption_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    caps = [a["caption"] for a in json.load(open(CAPTIONS))["annotations"]]
    rng = random.Random(seed)
    preds, refs = [], []
    for _ in range(n):
        p = rng.choice(caps)
        r = rng.choice(caps) if rng.random() < 0.8 else p  # some exact matches
        preds.append(p)
        refs.append(r)
    return preds, refs


def short_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    colors = ["red", "green", "blue", "yellow", "orange", "purple"]
    shapes = ["circle", "square", "triangle", "cross"]
    where = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]

    def answer() -> str:
        kind = rng.randrange(5)
        if kind == 0:
            return rng.choice(["Yes", "No", "Yes.", "No, it is not."])
        if kind == 1:
            return str(rng.randrange(7))
        if kind == 2:
            return rng.choice(colors)
        if kind == 3:
            return f"There is a {rng.choice(colors)} {rng.choice(shapes)} at the {rng.choice(where)}."
        return f"The {rng.choice(shapes)} is {rng.choice(colors)} and {rng.choice(['small', 'large'])}."

    return [answer() for _ in range(n)], [answer() for _ in range(n)]


def reference(preds: list[str], refs: list[str], wn) -> dict[str, list[float]]:
    from nltk.translate.meteor_score import meteor_score
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.rouge.rouge import Rouge

    p_tok = [coco_tokenize(p) for p in preds]
    r_tok = [coco_tokenize(r) for r in refs]
    gts = {i: [" ".join(t)] for i, t in enumerate(r_tok)}
    res = {i: [" ".join(t)] for i, t in enumerate(p_tok)}
    with contextlib.redirect_stdout(io.StringIO()):
        _, bleu = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu_{k + 1}": list(bleu[k]) for k in range(4)}
    out["rouge_l"] = Rouge().compute_score(gts, res)[1].tolist()
    out["meteor"] = [meteor_score([r], p, wordnet=wn) for p, r in zip(p_tok, r_tok)]
    return out


def fresh_wordnet():
    """A newly loaded WordNet reader (empty synset cache), index loading out of the timings."""
    load_wordnet.cache_clear()
    wn = load_wordnet(find_wordnet())
    wn.synsets("entity")
    return wn


def run(name: str, preds: list[str], refs: list[str], ref_n: int) -> dict:
    wn = fresh_wordnet()
    t0 = time.perf_counter()
    expected = reference(preds[:ref_n], refs[:ref_n], wn)
    t_ref = time.perf_counter() - t0

    wn = fresh_wordnet()
    scorer = Scorer(wordnet=wn)
    t0 = time.perf_counter()
    sub = scorer.scores(preds[:ref_n], refs[:ref_n])
    t_sub = time.perf_counter() - t0
    diff = max(float(np.max(np.abs(np.asarray(sub[k]) - np.asarray(expected[k])))) for k in COMPONENTS)

    scorer = Scorer(wordnet=fresh_wordnet())
    t0 = time.perf_counter()
    scorer.scores(preds, refs)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer.scores(preds, refs)
    t_warm = time.perf_counter() - t0
    row = {
        "workload": name, "n": len(preds), "ref_n": ref_n,
        "tokens_per_sample": round(float(np.mean([len(coco_tokenize(p)) for p in preds[:1000]])), 1),
        "reference_per_s": ref_n / t_ref, "ours_same_subset_per_s": ref_n / t_sub,
        "ours_cold_per_s": len(preds) / t_cold, "ours_warm_per_s": len(preds) / t_warm,
        "ratio_same_subset": t_ref / t_sub, "ratio_cold": (len(preds) / t_cold) / (ref_n / t_ref),
        "max_abs_diff": diff,
    }
    print(json.dumps(row))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000, help="samples per workload for our scorer")
    ap.add_argument("--ref-n", type=int, default=500, help="samples the reference scores (it is slow)")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    rows = [run("captions", *caption_pairs(args.n), args.ref_n), run("short", *short_pairs(args.n), args.ref_n)]
    print("\n| workload | tokens/sample | reference (samples/s) | ours, same subset | ours cold | ours warm "
          "| ratio (same subset) | max abs diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['tokens_per_sample']} | {r['reference_per_s']:,.0f} | "
              f"{r['ours_same_subset_per_s']:,.0f} | {r['ours_cold_per_s']:,.0f} | {r['ours_warm_per_s']:,.0f} | "
              f"{r['ratio_same_subset']:.0f}x | {r['max_abs_diff']:.1e} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
