"""image_embeddings' pooling on ShapesWorld: which one puts pictures of one object kind together.

    python benchmarks/bench_pooling.py --towers 5 --per-kind 40

For each of ``--towers`` tiny LLaVA checkpoints (``testing.tiny_checkpoint`` at seeds 0, 1, ...,
random weights, the sizes tests/test_collect.py uses), ``--per-kind`` ShapesWorld pictures per
object kind (1-4 objects, all of one kind: circle, square, triangle, cross; random colours, sizes,
cells) are embedded with each pooling (``mean``, ``max``, ``cls``); precision@10 is the share of
each picture's 10 nearest others (cosine) that show its kind (chance: 1/4), and the collection
rate: ``engine.collect`` with 3 other pictures of each kind as seeds (``per_domain=15, k=20``), the
share of collected images whose kind is their domain's (a random draw: 1/4). Printed: JSON (per
pooling the median and range over towers, and max's over mean's per tower), then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hf_vitcurate.stages.image_embeddings import POOLINGS  # noqa: E402  (the ones image_embeddings takes)


def kind_pictures(per_kind: int, seed: int):
    """``(kinds, Dataset)``: ``per_kind`` pictures of each ShapesWorld kind, its objects all of that kind."""
    from datasets import Dataset, Features, Image, List, Value

    from hf_vitcurate.synthetic.world import SHAPES, kind_scene, png_bytes

    ids, pngs, kinds = [], [], []
    for shape in SHAPES:
        for i in range(per_kind):
            ids.append(f"{shape}-{i}")
            pngs.append(png_bytes(kind_scene(i, shape, seed)))
            kinds.append(shape)
    ds = Dataset.from_dict({"id": ids, "images": [[{"bytes": b, "path": None}] for b in pngs]},
                           features=Features({"id": Value("string"), "images": List(Image())}))
    return np.array(kinds), ds


def precision_at_10(vectors: np.ndarray, kinds: np.ndarray) -> float:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :10]
    return float((kinds[top] == kinds[:, None]).mean())


def collect_rate(repository, seeds) -> float:
    """Share of ``engine.collect``'s images whose kind (the id's prefix) is their domain."""
    from hf_vitcurate.engine import collect

    found = collect(repository, seeds, per_domain=15, k=20).select_columns(["id", "domain"])
    return float(np.mean([i.split("-")[0] == d for i, d in zip(found["id"], found["domain"])]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--towers", type=int, default=5)
    ap.add_argument("--per-kind", type=int, default=40)
    args = ap.parse_args()
    from datasets.utils.logging import disable_progress_bar

    from hf_vitcurate.stages.image_embeddings import image_embeddings
    from hf_vitcurate.testing import tiny_checkpoint

    disable_progress_bar()
    kinds, pictures = kind_pictures(args.per_kind, seed=1)
    seed_kinds, seed_pictures = kind_pictures(3, seed=2)
    runs: dict[str, list[float]] = {p: [] for p in POOLINGS}
    rates: dict[str, list[float]] = {p: [] for p in POOLINGS}
    with tempfile.TemporaryDirectory(prefix="bench_pooling_") as tmp:
        for seed in range(args.towers):
            model = tiny_checkpoint(["<image>What shape is it?", "A circle."], output_dir=os.path.join(tmp, f"t{seed}"),
                                    seed=seed, vision_width=32, vision_mlp=64, vision_heads=2, text_width=32,
                                    text_layers=1, text_heads=2, text_mlp=64, vocab_size=300)
            for pooling in POOLINGS:
                out = image_embeddings(pictures, model=model, pooling=pooling, dtype="float32")
                runs[pooling].append(precision_at_10(np.array(out["image_embedding"], dtype=np.float32), kinds))
                seeds = image_embeddings(seed_pictures, model=model, pooling=pooling, dtype="float32")
                rates[pooling].append(collect_rate(out, seeds.add_column("domain", list(seed_kinds))))
            print(f"tower {seed}: " + ", ".join(f"{p} {runs[p][-1]:.3f}/{rates[p][-1]:.3f}" for p in POOLINGS),
                  file=sys.stderr, flush=True)

    def spread(v):
        return {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}

    summary = {"towers": args.towers, "per_kind": args.per_kind, "chance": 0.25,
               "precision_at_10": {p: spread(v) for p, v in runs.items()},
               "max_over_mean": spread([a / b for a, b in zip(runs["max"], runs["mean"])]),
               "collect_rate": {p: spread(v) for p, v in rates.items()},
               "collect_max_over_mean": spread([a / b for a, b in zip(rates["max"], rates["mean"])])}
    print(json.dumps(summary, indent=1))
    print("| pooling | precision@10 | collected of the seeds' kind (random: 0.25) |\n|---|---|---|")
    for p, s in summary["precision_at_10"].items():
        r = summary["collect_rate"][p]
        print(f"| {p} | {s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f}) | {r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f}) |")


if __name__ == "__main__":
    main()
