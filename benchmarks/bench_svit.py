"""SVIT benchmarks: concept-tagging throughput, and the recipes' effect on ShapesWorld.

    python benchmarks/bench_svit.py throughput [--rows 20000]
    python benchmarks/bench_svit.py recipes [--images 1500] [--n 1000]
    python benchmarks/bench_svit.py judgement [--images 1500] [--n 600] --ratio 2  # needs models.train + synthetic.evaluate

``throughput`` tags synthetic *SVIT-length* rows, pinned to one CPU core, with
:func:`hf_vitcurate.stages.concepts` (the full ``Dataset.map`` stage) and compares it in
the same run with a naive per-keyword regex loop (one ``re.findall`` per key word per
row, what one writes first) and with the single compiled-alternation regex
(``ConceptMatcher.findall``, the reference). SVIT-length: one row per image and task
with the numbers of the SVIT paper's §3.4 (arXiv:2307.04087): conversation 14.5 QA pairs of 9.6 + 27.9 words, complex
reasoning 14.4 x (12.6 + 26.6), referring 9.4 x (11.3 + 20.6), detail description
1 x (10 + 361.5), equal rows per task: about 445 words per row. Key-word density: 6%
of words.

``recipes`` builds a ShapesWorld pool (``hf_vitcurate.synthetic.shapesworld``), tags it,
and reports, for random / D / B / core selections of the same size (with and without
the leakage clean-up first), the yes:no ratio and the share of degraded rows. The
degraded share is read from ``_truth`` for measurement only; the recipes never see it
(the column is removed before tagging).

``judgement`` trains a tiny model on random / balanced / core selections of the same
size and reports its benchmark judgement accuracy.
Every mode prints Markdown lines for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time

import numpy as np

SVIT_TASKS = {  # task: (QA pairs per row, question words, answer words) - SVIT paper §3.4
    "conversation": (14.5, 9.6, 27.9),
    "complex_reasoning": (14.4, 12.6, 26.6),
    "referring_qa": (9.4, 11.3, 20.6),
    "detail_description": (1.0, 10.0, 361.5),
}
FILLER = ("the a of and is in to with there image it are this that can be at which person man woman table "
          "street car dog cat tree building sky people looking standing sitting holding wearing").split()


def one_core() -> str:
    """Pin this process (and Arrow's thread pool) to one CPU core."""
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    return f"{platform.processor() or platform.machine()}, 1 core pinned, Python {platform.python_version()}"


def svit_like_rows(n: int, seed: int = 0, density: float = 0.06):
    """``n`` canonical rows with SVIT-length text (see module docstring)."""
    from datasets import Dataset

    from hf_vitcurate.schema import FEATURES
    from hf_vitcurate.stages.concepts import SVIT_CONCEPTS

    rng = np.random.default_rng(seed)
    keywords = np.array([k for v in SVIT_CONCEPTS.values() for k in v])
    filler = np.array(FILLER)

    def sentence(n_words: float) -> str:
        k = max(2, int(rng.normal(n_words, n_words / 4)))
        words = np.where(rng.random(k) < density, rng.choice(keywords, k), rng.choice(filler, k))
        commas = rng.random(k) < 0.08
        text = " ".join(w + ("," if c else "") for w, c in zip(words, commas))
        return text[:1].upper() + text[1:]

    tasks = list(SVIT_TASKS)
    rows = {"id": [], "images": [], "conversations": [], "source": [], "task": []}
    for i in range(n):
        task = tasks[i % len(tasks)]
        qa, qw, aw = SVIT_TASKS[task]
        n_qa = int(qa) + (rng.random() < qa - int(qa))
        conv = []
        for j in range(n_qa):
            conv.append({"from": "human", "value": ("<image>\n" if j == 0 else "") + sentence(qw) + "?"})
            conv.append({"from": "gpt", "value": sentence(aw) + "."})
        rows["id"].append(f"svit-{i}")
        rows["images"].append([])
        rows["conversations"].append(conv)
        rows["source"].append("svit_like")
        rows["task"].append(task)
    return Dataset.from_dict(rows, features=FEATURES)


def naive_tag(texts: list[str], keywords: list[str]) -> list[dict[str, int]]:
    """Baseline: one regex per key word per row (plural s/es, word boundaries, case-insensitive)."""
    out = []
    for text in texts:
        low = text.lower()
        hits = {}
        for kw in keywords:
            c = len(re.findall(r"\b" + r"\s+".join(map(re.escape, kw.split())) + r"(?:es|s)?\b", low))
            if c:
                hits[kw] = c
        out.append(hits)
    return out


def bench_throughput(n_rows: int) -> None:
    import datasets

    from hf_vitcurate.stages import concepts
    from hf_vitcurate.stages.concepts import ConceptMatcher

    datasets.disable_progress_bars()
    machine = one_core()
    ds = svit_like_rows(n_rows)
    texts = [" \n".join(t["value"] for t in conv) for conv in ds.with_format("arrow")["conversations"].to_pylist()]
    words = sum(len(t.split()) for t in texts)
    concepts(ds.select(range(min(1000, n_rows))))  # warm-up (imports, fingerprint hashing)

    # CPU time of this (single-threaded, pinned) process is what "one core" means; wall
    # time is printed too: on a shared machine it also counts time waiting for the core.
    def timed(fn) -> tuple[float, float, object]:
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        return time.perf_counter() - w, time.process_time() - c, out

    runs = [timed(lambda: concepts(ds)) for _ in range(3)]
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    tagged = runs[0][2]

    matcher = ConceptMatcher()
    sample = texts[: min(400, n_rows)]
    n_wall, n_cpu, naive = timed(lambda: naive_tag(sample, matcher.keywords))
    r_wall, r_cpu, ref = timed(lambda: [matcher.findall(t) for t in sample])

    got = tagged.select(range(len(sample)))["concepts"][:]
    agree_ref = np.mean([set(g) == set(h) for g, h in zip(got, ref)])
    agree_naive = np.mean([set(g) == set(h) for g, h in zip(got, naive)])

    def rate(rows: int, seconds: float) -> str:
        return f"{rows / seconds:,.0f}"

    print(f"## SVIT throughput ({machine}, load average {os.getloadavg()[0]:.1f})")
    print(f"- rows: {n_rows} SVIT-length rows, {words / n_rows:.0f} words/row on average; rates per CPU-second (per wall-second)")
    print(f"- `stages.concepts` (Dataset.map, Arrow batches): **{rate(n_rows, cpu)} rows/s** ({rate(n_rows, wall)}), "
          f"{words / cpu / 1e6:.1f} M words/s, best of 3")
    print(f"- naive per-keyword regex loop ({len(sample)} rows): {rate(len(sample), n_cpu)} rows/s ({rate(len(sample), n_wall)}) "
          f"-> stage is **{(n_rows / cpu) / (len(sample) / n_cpu):.0f}x** faster")
    print(f"- one compiled alternation regex (`ConceptMatcher.findall`): {rate(len(sample), r_cpu)} rows/s ({rate(len(sample), r_wall)}) "
          f"-> stage is {(n_rows / cpu) / (len(sample) / r_cpu):.1f}x faster")
    print(f"- same distinct key words as the compiled regex on {agree_ref:.1%} of rows, as the naive loop on {agree_naive:.1%} "
          f"(the naive loop also counts key words inside phrases, e.g. `left` in \"left direction\")")


# -- ShapesWorld ---------------------------------------------------------------------------------
def shapesworld_pool(n_images: int, seed: int):
    """(pool without `_truth`, degraded flag per row) from ShapesWorld's training sources."""
    from datasets import concatenate_datasets

    from hf_vitcurate.synthetic import shapesworld

    dd = shapesworld(n_images, seed)
    parts = [dd[k] for k in dd if k != "benchmark"]
    pool = concatenate_datasets(parts)
    truth = pool.with_format("arrow")["_truth"] if "_truth" in pool.column_names else None
    degraded = _degraded(truth, len(pool))
    return pool.remove_columns([c for c in pool.column_names if c.startswith("_")]), degraded, dd


def _degraded(truth, n: int) -> np.ndarray:
    """True for rows ShapesWorld made worse on purpose (read from `_truth`, measurement only)."""
    if truth is None:
        return np.zeros(n, dtype=bool)
    values = truth.to_pylist()
    out = np.zeros(n, dtype=bool)
    for i, t in enumerate(values):
        if isinstance(t, dict):
            flag = t.get("degraded", t.get("defect", t.get("defects")))
            out[i] = bool(flag) and flag not in ("clean", "none", "")
        elif isinstance(t, str):
            out[i] = t not in ("", "clean", "none", "{}")
        else:
            out[i] = bool(t)
    return out


def _describe(name: str, sel, ids: list[str], degraded_by_id: dict[str, bool]) -> str:
    yn = np.asarray(sel.with_format("arrow")["yes_no"].to_pylist())
    task = np.asarray(sel.with_format("arrow")["task"].to_pylist())

    def ratio(mask: np.ndarray) -> str:
        y, n = int((yn[mask] == "yes").sum()), int((yn[mask] == "no").sum())
        return f"{y}:{n} = {y / n:.1f}" if n else f"{y}:0"

    deg = np.mean([degraded_by_id[i] for i in ids]) if ids else 0.0
    return (f"| {name} | {len(sel)} | {ratio(np.ones(len(yn), bool))} | {ratio(task == 'judgement')} | "
            f"{deg:.1%} | {len(set(task.tolist()))} |")


def bench_recipes(n_images: int, n: int, seed: int = 0, ratio: float = 8) -> None:
    import datasets

    from hf_vitcurate.select import balance, core, diversity, random_subset
    from hf_vitcurate.stages import concepts, leakage, reject, yes_no

    datasets.disable_progress_bars()
    t0 = time.perf_counter()
    pool, degraded, _ = shapesworld_pool(n_images, seed)
    ids = pool.with_format("arrow")["id"].to_pylist()
    degraded_by_id = dict(zip(ids, degraded.tolist()))
    tagged = yes_no(concepts(pool))
    cleaned, rejected = reject(leakage(tagged), where="leakage")
    print(f"## SVIT recipes on ShapesWorld ({n_images} images, seed {seed}, n = {n}, r = {ratio})")
    print(f"- pool: {len(pool)} rows, degraded {degraded.mean():.1%}; leakage clean-up drops {len(rejected)} rows "
          f"({np.mean([degraded_by_id[i] for i in rejected.with_format('arrow')['id'].to_pylist()]) if len(rejected) else 0:.0%} of them degraded)")
    print()
    print("| selection | rows | yes:no (all rows) | yes:no (judgement) | degraded | tasks |")
    print("|---|---|---|---|---|---|")
    print(_describe("pool (all rows)", tagged, ids, degraded_by_id))
    runs = [("random", lambda d: random_subset(d, n=n, seed=seed)),
            ("D (diversity, per task)", lambda d: diversity(d, n=n, seed=seed, per_task=True, allow_short=True))]
    for r in sorted({ratio, 2.0, 1.0}, reverse=True):
        runs.append((f"B (balance, r={r:g})", lambda d, r=r: balance(d, n=n, ratio=r, seed=seed, allow_short=True)))
    for r in sorted({ratio, 2.0, 1.0}, reverse=True):
        runs.append((f"core (D then B, r={r:g})",
                     lambda d, r=r: core(d, n=n, ratio=r, seed=seed, per_task=True, allow_short=True)))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for prefix, data in (("", tagged), ("clean-up + ", cleaned)):
            for label, fn in runs:
                sel, manifest = fn(data)
                print(_describe(prefix + label, sel, manifest["ids"], degraded_by_id))
    print(f"\n(wall time {time.perf_counter() - t0:.0f} s)")


# A small from-scratch recipe (the tiny checkpoint has random weights, so every part
# trains); one CPU thread so the benchmark stays light on a shared machine.
JUDGEMENT_RECIPE = dict(train_parts=("vision", "projector", "language"), learning_rate=1e-3, epochs=2,
                        batch_size=16, warmup_ratio=0.05, num_threads=1, progress=False, seed=0)


def bench_judgement(n_images: int, n: int, seed: int = 0, ratio: float = 2, out_dir: str = "runs/bench_svit") -> None:
    """Tiny model benchmark scores after training on random / balanced / core selections of size n."""
    try:
        from hf_vitcurate.models import train
        from hf_vitcurate.testing import tiny_checkpoint
        from hf_vitcurate.synthetic import evaluate
    except ImportError as exc:  # pragma: no cover - depends on the other engineers' modules
        print(f"judgement benchmark skipped: {exc}")
        return
    import warnings

    import datasets

    from hf_vitcurate.select import balance, core, random_subset
    from hf_vitcurate.stages import concepts, yes_no

    datasets.disable_progress_bars()
    t0 = time.perf_counter()
    pool, _, _ = shapesworld_pool(n_images, seed)
    tagged = yes_no(concepts(pool))
    base = tiny_checkpoint(pool, output_dir=os.path.join(out_dir, "tiny"), seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selections = [("random", random_subset(tagged, n=n, seed=seed)),
                      (f"balanced (B, r={ratio:g})", balance(tagged, n=n, ratio=ratio, seed=seed, allow_short=True)),
                      (f"core (D then B, r={ratio:g})",
                       core(tagged, n=n, ratio=ratio, seed=seed, per_task=True, allow_short=True))]
    print(f"## SVIT judgement accuracy ({n_images} images, n = {n}, recipe {JUDGEMENT_RECIPE})")
    print("| training selection | rows | train yes:no | judgement acc. | benchmark yes-rate | average |")
    print("|---|---|---|---|---|---|")
    for label, (sel, _) in selections:
        yn = sel.with_format("arrow")["yes_no"].to_pylist()
        keep = [c for c in ("id", "images", "conversations", "source", "task") if c in sel.column_names]
        out = train(sel.select_columns(keep), model=base, output_dir=os.path.join(out_dir, label.split()[0]),
                    restart=True, **JUDGEMENT_RECIPE)
        scores = evaluate(model=out, progress=False, num_threads=1, max_new_tokens=16)
        print(f"| {label} | {len(sel)} | {yn.count('yes')}:{yn.count('no')} | {scores.get('judgement', float('nan')):.1f} | "
              f"{scores.get('judgement_yes_rate', float('nan')):.1f} | {scores.get('average', float('nan')):.1f} |", flush=True)
    print(f"\n(wall time {time.perf_counter() - t0:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["throughput", "recipes", "judgement"])
    p.add_argument("--rows", type=int, default=20_000, help="throughput: rows to tag")
    p.add_argument("--images", type=int, default=1500, help="ShapesWorld images")
    p.add_argument("--n", type=int, default=1000, help="selection size")
    p.add_argument("--ratio", type=float, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench_svit", help="judgement: where checkpoints go")
    a = p.parse_args(argv)
    if a.mode == "throughput":
        bench_throughput(a.rows)
    elif a.mode == "recipes":
        bench_recipes(a.images, a.n, a.seed, a.ratio)
    else:
        bench_judgement(a.images, a.n, a.seed, a.ratio, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
