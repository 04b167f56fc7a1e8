"""MQ metric throughput: ``hf_vitcurate.metrics`` vs the reference composition (pycocoevalcap + nltk).

    python benchmarks/bench_metrics.py                       # real captions + short answers
    python benchmarks/bench_metrics.py --n 2000 --short-n 10000 --repeats 3

The reference is the straightforward composition the metrics are defined by (docs/methods.md),
on the same tokens: ``pycocoevalcap``'s ``Bleu(4)`` and ``Rouge`` (one batched call each, which
returns per-sample scores: the fastest way to use them) and nltk's ``meteor_score`` per
sample, with the same WordNet. Both sides score the SAME samples (``--n``), in interleaved
rounds; values are checked equal; the ratios are per round (median and range). Each side
gets its own freshly loaded WordNet reader (nltk caches parsed synsets in the reader), so
neither profits from the other's warm-up.

Two workloads: ``captions`` (real MiniGPT-4 detailed descriptions, ~70 tokens, one
reference each, all pairs distinct) and ``short`` (VQA-style answers of 1-12 tokens drawn
from templates, as a tuned model answers ShapesWorld: many repeats). ``cold`` is a fresh
side (fresh WordNet reader; our scorer with empty stem/synonym caches; index files already
read), ``warm`` the same side again on the same samples.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
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


def run(name: str, preds: list[str], refs: list[str], repeats: int) -> dict:
    """Reference and ours on the same ``len(preds)`` samples, ``repeats`` interleaved rounds.

    Each round: the reference cold (a fresh WordNet reader), ours cold (a fresh scorer and
    reader), then each a second time on the same samples (warm: nltk's synset cache and our
    stem/synonym caches filled); the order of the two sides alternates between rounds.
    """
    times: dict[str, list[float]] = {"ref_cold": [], "ref_warm": [], "ours_cold": [], "ours_warm": []}
    diff = 0.0
    for r in range(repeats):
        sides = ["ref", "ours"] if r % 2 == 0 else ["ours", "ref"]
        for side in sides:
            wn = fresh_wordnet()
            if side == "ref":
                score = lambda: reference(preds, refs, wn)  # noqa: E731
            else:
                scorer = Scorer(wordnet=wn)
                score = lambda: scorer.scores(preds, refs)  # noqa: E731
            for state in ("cold", "warm"):
                t0 = time.perf_counter()
                out = score()
                times[f"{side}_{state}"].append(time.perf_counter() - t0)
                if side == "ref":
                    expected = out
                else:
                    got = out
        diff = max(diff, max(float(np.max(np.abs(np.asarray(got[k]) - np.asarray(expected[k])))) for k in COMPONENTS))
    n = len(preds)

    def spread(values: list[float]) -> dict:
        return {"median": round(statistics.median(values), 1), "min": round(min(values), 1), "max": round(max(values), 1)}

    row = {
        "workload": name, "n": n, "repeats": repeats,
        "tokens_per_sample": round(float(np.mean([len(coco_tokenize(p)) for p in preds[:1000]])), 1),
        **{f"{k}_per_s": spread([n / t for t in v]) for k, v in times.items()},
        "ratio_cold": spread([a / b for a, b in zip(times["ref_cold"], times["ours_cold"])]),
        "ratio_warm": spread([a / b for a, b in zip(times["ref_warm"], times["ours_warm"])]),
        "max_abs_diff": diff,
    }
    print(json.dumps(row))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000, help="samples per workload, the same for both sides")
    ap.add_argument("--short-n", type=int, default=10_000, help="samples of the short-answer workload")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    rows = [run("captions", *caption_pairs(args.n), args.repeats), run("short", *short_pairs(args.short_n), args.repeats)]
    print("\n| workload | n | tokens/sample | reference cold / warm (samples/s) | ours cold / warm | ratio cold | ratio warm "
          "| max abs diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['n']:,} | {r['tokens_per_sample']} | {r['ref_cold_per_s']['median']:,.0f} / "
              f"{r['ref_warm_per_s']['median']:,.0f} | {r['ours_cold_per_s']['median']:,.0f} / {r['ours_warm_per_s']['median']:,.0f} | "
              f"{r['ratio_cold']['median']:.1f}x ({r['ratio_cold']['min']:.1f}-{r['ratio_cold']['max']:.1f}) | "
              f"{r['ratio_warm']['median']:.1f}x ({r['ratio_warm']['min']:.1f}-{r['ratio_warm']['max']:.1f}) | {r['max_abs_diff']:.1e} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
