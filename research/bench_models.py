"""Tiny models on ShapesWorld: does training on clean rows beat the same number of degraded rows?

    python -m research.bench_models gap  [--rows 20000] [--sources mm_short_vqa,...] [--language-steps 0] [--seed 0]
    python -m research.bench_models binding [--rows 40000] [--qa-sources mm_short_vqa,...] [--caption-share 0.5]

``gap``: one tiny checkpoint (tokenizer on both pools' text), its vision tower pretrained on
ShapesWorld cells (``hf_vitcurate.testing.pretrain_vision_tower``: the stand-in for CLIP), an
optional stage 1 on captions of separate images (``--captions N``, ``tiny_pretrain_recipe``;
``--grouped-captions`` of them grouped descriptions, ``research.pools.grouped_stage1_captions``;
``--stage1-parts projector`` for LLaVA's projector-only stage 1), its language model
optionally pretrained on text after that (``--language-steps``, ``research.lm_pretraining``:
the stand-in for LLM pretraining; after stage 1, as ``train_tiny_lm`` orders them), then two
fine-tunes from that start with ``tiny_recipe`` (tower frozen), run side by side
(one process and one thread each): on ``study_pool("clean", rows)`` and on
``study_pool("degraded", rows)`` (``research.pools``: the package's ``training_pool`` with
the research options; same images and questions; half the answers
hallucinated, 20% near-duplicates; ``--caption-rows`` and ``--pool-grouped-captions`` set
the pools' caption rows per image and their share of grouped descriptions;
``--no-group-by-length`` trains on mixed-length batches; ``--rows-per-image`` gives a format a
larger share; ``--recipe`` overrides the fine-tunes' recipe, e.g. a batch size for a GPU;
``--kinds clean`` fine-tunes one of the two). Both are scored on the fixed benchmark
(``synthetic.evaluate.default_benchmark``: 300 held-out images, 1200 rows). Prints a
Markdown table (per task and per question kind) and the gap.

``binding``: grouped captions (``--caption-share`` of ``--rows``, default half) and question
rows split evenly over ``--qa-sources`` (default short VQA), trained with ``tiny_recipe``
side by side with batches grouped by length (the default) and mixed (``--batches`` picks);
scores per task and per short-VQA kind (RESULTS: "Binding", "Comparisons").

The product's speed benchmark of tiny models is ``benchmarks/bench_models.py speed``.

Numbers go to research/RESULTS.md ("Tiny models"). Run from the repository root. Everything
is seeded; times depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from multiprocessing import get_context

KEYS = ["average", "judgement", "multiple_choice", "short_vqa", "caption",
        "kind/color", "kind/shape", "kind/count", "kind/size", "kind/position", "kind/existence",
        "judgement_yes_rate"]
# Question-answer sources (the benchmark's formats plus conversations): short rows, so a few
# minutes of CPU see many images. ``--sources all`` uses every image source.
# Worker processes are spawned, not forked: a forked child cannot use CUDA once the parent has.
_SPAWN = get_context("spawn")
QA_SOURCES = ["mm_short_vqa", "mm_multiple_choice", "svit_judgement", "llava_conv"]


def _fit_and_score(start: str, data, out: str, overrides: dict) -> dict:
    """Fine-tune ``start`` on ``data`` with ``tiny_recipe`` (one thread), then the benchmark.

    The result also counts the pool's rows per task, so a run records the mix it trained on."""
    from collections import Counter

    from hf_vitcurate.models import train
    from hf_vitcurate.synthetic.evaluate import evaluate
    from hf_vitcurate.testing import tiny_recipe

    t = time.time()
    path = train(data, model=start, output_dir=out, **tiny_recipe(num_threads=1, progress=False, **overrides))
    train_s = time.time() - t
    t = time.time()
    scores = evaluate(model=path, progress=False, num_threads=1)
    with open(os.path.join(path, "train_log.json")) as f:
        log = json.load(f)
    return {"scores": scores, "train_s": train_s, "eval_s": time.time() - t, "rows_per_second": log["rows_per_second"],
            "tasks": dict(Counter(data["task"]))}


def _finetune(start: str, kind: str, rows: int, seed: int, sources, out: str, overrides: dict, pool_options: dict) -> dict:
    """One fine-tune + evaluation on a clean or degraded pool (runs in its own process)."""
    from research.pools import study_pool

    pool_options = dict(pool_options)
    text = pool_options.pop("text_rows", None)
    pool = study_pool(kind, rows, seed=seed, sources=sources, **pool_options).remove_columns(["_truth"])
    if text:  # the same text-only rows in both pools (train shuffles the batches)
        from datasets import concatenate_datasets

        from hf_vitcurate.schema import CORE_COLUMNS
        from research.lm_pretraining import text_dataset

        pool = concatenate_datasets([pool.select_columns(list(CORE_COLUMNS)),
                                     text_dataset(text["n"], seed, **text["options"])])
    return _fit_and_score(start, pool, os.path.join(out, f"ft_{kind}"), {"seed": seed, **overrides})


def gap(args) -> dict:
    from datasets import concatenate_datasets

    from hf_vitcurate.models import pretrain
    from hf_vitcurate.synthetic.evaluate import evaluate
    from hf_vitcurate.testing import pretrain_vision_tower, tiny_checkpoint, tiny_pretrain_recipe
    from research.lm_pretraining import pretrain_language_model
    from research.pools import grouped_stage1_captions, study_pool

    out = args.out or tempfile.mkdtemp(prefix="bench_models-")
    sources = None if args.sources == "all" else args.sources.split(",")
    if (args.caption_rows is not None or args.pool_grouped_captions) and sources is not None and "captions" not in sources:
        raise SystemExit("--caption-rows/--pool-grouped-captions need 'captions' in --sources")
    rows_per_image = json.loads(args.rows_per_image)
    if args.caption_rows is not None:
        rows_per_image["captions"] = args.caption_rows
    pool_options = {"yes_ratio": args.yes_ratio, "grouped_captions": args.pool_grouped_captions,
                    "rows_per_image": rows_per_image or None}
    # The pools' text trains the tokenizer of a new base; a --start checkpoint has its own.
    texts = [] if args.start else [
        study_pool(k, args.rows, seed=args.seed, sources=sources, **pool_options).select_columns(["conversations"])
        for k in ("clean", "degraded")]
    captions = grouped_stage1_captions(args.captions, seed=args.seed, grouped=args.grouped_captions) if args.captions else None
    if captions is not None and not args.start:
        texts.append(captions.select_columns(["conversations"]))
    t = time.time()
    if args.start:
        # A checkpoint built before (its tower pretrained), e.g. one whose language model a
        # probe trained (probe_comparisons.py --save): copied, so this run leaves it as it was.
        start = os.path.join(out, "base")
        shutil.copytree(args.start, start, dirs_exist_ok=True)
        with open(os.path.join(start, "vision_pretraining.json")) as f:
            vision = json.load(f)
    else:
        start = tiny_checkpoint(concatenate_datasets(texts), output_dir=os.path.join(out, "base"), seed=args.seed)
        vision = pretrain_vision_tower(start, steps=args.vision_steps, seed=args.seed, progress=False)
    timings = {"vision_tower": time.time() - t}
    if captions is not None:
        t = time.time()
        parts = tuple(args.stage1_parts.split(","))
        start = pretrain(captions, model=start, output_dir=os.path.join(out, "f_pre"),
                         **tiny_pretrain_recipe(seed=args.seed, train_parts=parts))
        timings["f_pre"] = time.time() - t
    language = None
    if args.language_steps:  # after stage 1, as train_tiny_lm does (RESULTS: before it, the image is not read)
        t = time.time()
        options = {"learning_rate": args.language_lr, "seed": args.seed, **json.loads(args.language_options)}
        language = pretrain_language_model(start, steps=args.language_steps, progress=False, **options)
        timings["language_model"] = time.time() - t
    overrides = {"epochs": args.epochs, "group_by_length": not args.no_group_by_length, **json.loads(args.recipe)}
    kinds = args.kinds.split(",")
    results = {}
    if args.text_rows:
        keys = ("questions", "match_share", "forward", "match_kinds", "formats")
        row_options = {k: v for k, v in json.loads(args.language_options).items() if k in keys}
        pool_options = {**pool_options, "text_rows": {"n": args.text_rows, "options": row_options}}
    with ProcessPoolExecutor(2, mp_context=_SPAWN) as pool:
        futures = {kind: pool.submit(_finetune, start, kind, args.rows, args.seed, sources, out, overrides, pool_options)
                   for kind in kinds}
        start_scores = pool.submit(evaluate, model=start, progress=False, num_threads=1)
        results = {kind: f.result() for kind, f in futures.items()}
        results["start"] = {"scores": start_scores.result(), "train_s": sum(timings.values()), "rows_per_second": float("nan")}

    print(f"\nrows per pool {args.rows} ({args.sources}), yes:no {args.yes_ratio}, epochs {args.epochs}, "
          f"stage 1 {args.captions} captions ({args.grouped_captions:.0%} grouped), pool captions {args.caption_rows or 1}/image ({args.pool_grouped_captions:.0%} grouped), vision tower {vision['held_out']}, "
          f"language model {language['held_out'] if language else 'not pretrained'}, out {out}\n")
    print("| | " + " | ".join(KEYS) + " | train s | rows/s |")
    print("|---" * (len(KEYS) + 3) + "|")
    for name in ("start", *kinds):
        r = results[name]
        row = [f"{r['scores'].get(k, float('nan')):.1f}" for k in KEYS]
        print(f"| {name} | " + " | ".join(row) + f" | {r['train_s']:.0f} | {r['rows_per_second']:.0f} |")
    diff = None
    if len(kinds) == 2:
        diff = {k: round(results["clean"]["scores"].get(k, 0) - results["degraded"]["scores"].get(k, 0), 1) for k in KEYS}
        print("\nclean - degraded:", json.dumps(diff))
    result = {"results": results, "timings": timings, "vision": vision, "language": language, "gap": diff, "out": out, "args": vars(args)}
    with open(os.path.join(out, "bench_models.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


def _train_and_score(start: str, data_dir: str, out: str, overrides: dict) -> dict:
    """One fine-tune of ``start`` on the dataset saved in ``data_dir``, then the benchmark (own process)."""
    from datasets import load_from_disk

    return _fit_and_score(start, load_from_disk(data_dir), out, overrides)


def binding(args) -> dict:
    """Grouped captions + question rows in one pool, batches grouped by length or mixed (RESULTS: "Binding").

    ``--caption-share`` of the rows (default half) are grouped captions, the rest questions split
    evenly over ``--qa-sources`` (default short VQA only; judgement at ``--yes-ratio``);
    ``--batches`` picks the runs.
    """
    from datasets import concatenate_datasets

    from hf_vitcurate.synthetic import shapesworld
    from hf_vitcurate.testing import pretrain_vision_tower, tiny_checkpoint
    from research.pools import grouped_stage1_captions

    out = args.out or tempfile.mkdtemp(prefix="bench_models-")
    n_captions = int(args.rows * args.caption_share)
    qa_sources = args.qa_sources.split(",")
    per_source = (args.rows - n_captions) // len(qa_sources)
    captions = grouped_stage1_captions(n_captions, seed=args.seed, grouped=1.0) if n_captions else None
    pool = shapesworld(per_source // 2 + 1, seed=args.seed + 5, sources=qa_sources, rows_per_image=dict.fromkeys(qa_sources, 2.0),
                       degrade={}, yes_ratio=args.yes_ratio, benchmark_images=0)
    qa = [pool[s].select(range(per_source)) for s in qa_sources]
    data = concatenate_datasets([captions, *qa] if n_captions else qa).shuffle(seed=args.seed).remove_columns(["_truth"])
    data_dir = os.path.join(out, "data")
    data.save_to_disk(data_dir)
    start = tiny_checkpoint(data, output_dir=os.path.join(out, "base"), seed=args.seed)
    pretrain_vision_tower(start, steps=args.vision_steps, seed=args.seed, progress=False)
    runs = {name: flag for name, flag in {"grouped by length": True, "mixed": False}.items()
            if args.batches == "both" or name.startswith(args.batches)}
    with ProcessPoolExecutor(len(runs), mp_context=_SPAWN) as executor:
        futures = {name: executor.submit(_train_and_score, start, data_dir, os.path.join(out, name.split()[0]),
                                         {"epochs": args.epochs, "seed": args.seed, "group_by_length": flag})
                   for name, flag in runs.items()}
        results = {name: f.result() for name, f in futures.items()}
    keys = ["average", "judgement", "multiple_choice", "short_vqa", "judgement_yes_rate"] + \
        [f"short_vqa/{k}" for k in ("color", "shape", "size", "count", "position")]
    print(f"\n{len(data)} rows ({n_captions} grouped captions + {per_source} each of {args.qa_sources}), "
          f"yes:no {args.yes_ratio}, epochs {args.epochs}, out {out}\n")
    print("| batches | " + " | ".join(keys) + " | train s |")
    print("|---" * (len(keys) + 2) + "|")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r['scores'].get(k, float('nan')):.1f}" for k in keys) + f" | {r['train_s']:.0f} |")
    result = {"results": results, "args": vars(args), "out": out}
    with open(os.path.join(out, "bench_models.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["gap", "binding"])
    p.add_argument("--rows", type=int, default=20000, help="rows in each training pool")
    p.add_argument("--sources", default=",".join(QA_SOURCES), help="comma-separated pool sources, or 'all'")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--yes-ratio", type=float, default=20.0, help="yes:no of svit_judgement (SVIT: 20; 1 balances)")
    p.add_argument("--vision-steps", type=int, default=300, help="vision tower pretraining steps")
    p.add_argument("--language-steps", type=int, default=0, help="gap: text-only language-model pretraining steps (0: none)")
    p.add_argument("--language-lr", type=float, default=1e-3, help="gap: learning rate of the language-model pretraining")
    p.add_argument("--text-rows", type=int, default=0,
                   help="gap: add N text-only rows of the text stage (its row options from --language-options) "
                        "to both pools, as LLaVA-665K keeps ShareGPT rows")
    p.add_argument("--language-options", default="{}",
                   help='gap: other pretrain_language_model arguments as JSON, e.g. \'{"match_share": 1, "questions": 1}\'')
    p.add_argument("--start", default=None,
                   help="gap: start from this tiny checkpoint (tower pretrained) instead of building one")
    p.add_argument("--captions", type=int, default=0, help="stage-1 caption images (0: no stage 1)")
    p.add_argument("--grouped-captions", type=float, default=0.0, help="share of grouped descriptions in stage 1")
    p.add_argument("--stage1-parts", default="projector,language",
                   help="what stage 1 trains: 'projector,language' (the tiny default: the LM starts random) or "
                        "'projector' (LLaVA's stage 1, for a pretrained LM)")
    p.add_argument("--pool-grouped-captions", type=float, default=0.0, help="share of grouped descriptions in the pools' captions")
    p.add_argument("--no-group-by-length", action="store_true",
                   help="mixed-length batches (default groups rows of similar length: less padding)")
    p.add_argument("--caption-rows", type=float, default=None, help="caption rows per image in the pools (default 1)")
    p.add_argument("--rows-per-image", default="{}",
                   help='gap: rows per image of the pools\' sources as JSON (a larger share of a format), '
                        'e.g. \'{"mm_multiple_choice": 3, "svit_judgement": 3}\' (defaults: synthetic.DEFAULT_ROWS_PER_IMAGE)')
    p.add_argument("--recipe", default="{}",
                   help='gap: tiny_recipe overrides of the fine-tunes as JSON, e.g. \'{"batch_size": 64, "num_workers": 2}\'')
    p.add_argument("--kinds", default="clean,degraded", choices=["clean,degraded", "clean", "degraded"],
                   help="gap: which pools to fine-tune on (default both: the gap)")
    p.add_argument("--qa-sources", default="mm_short_vqa", help="binding: comma-separated question sources")
    p.add_argument("--caption-share", type=float, default=0.5, help="binding: share of grouped captions")
    p.add_argument("--batches", choices=["both", "grouped", "mixed"], default="both", help="binding: which batching runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    _check(p, args)
    {"gap": gap, "binding": binding}[args.what](args)


def _check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stop (``p.error``: one line, exit 2) on options that the chosen run would ignore or rewrite."""
    if args.what == "binding":
        if not 0.0 <= args.caption_share < 1.0:
            p.error("--caption-share must be in [0, 1): the rest of the rows are questions")
        from hf_vitcurate.synthetic import SOURCES

        unknown = sorted(set(args.qa_sources.split(",")) - set(SOURCES))
        if unknown:
            p.error(f"--qa-sources: unknown source(s) {unknown}; ShapesWorld has {sorted(SOURCES)}")
    elif (args.qa_sources, args.caption_share, args.batches) != ("mm_short_vqa", 0.5, "both"):
        p.error("--qa-sources, --caption-share and --batches are options of 'binding'")
    if args.what != "gap" and ((args.language_steps, args.language_lr, args.language_options) != (0, 1e-3, "{}")
                               or args.start or args.text_rows):
        p.error("--language-steps, --language-lr, --language-options, --text-rows and --start are options of 'gap'")
    for flag in ("language_options", "rows_per_image", "recipe"):
        try:
            if not isinstance(json.loads(getattr(args, flag)), dict):
                raise ValueError
        except ValueError:
            p.error(f"--{flag.replace('_', '-')} must be a JSON object, got {getattr(args, flag)!r}")
    if args.what != "gap" and ((args.rows_per_image, args.recipe, args.kinds) != ("{}", "{}", "clean,degraded")):
        p.error("--rows-per-image, --recipe and --kinds are options of 'gap'")
    from hf_vitcurate.models.training import Recipe
    from hf_vitcurate.synthetic import SOURCES

    shares = json.loads(args.rows_per_image)
    pool_sources = SOURCES if args.sources == "all" else args.sources.split(",")
    unknown = sorted(set(shares) - set(pool_sources))
    if unknown:
        p.error(f"--rows-per-image: source(s) {unknown} not in the pools ({','.join(pool_sources)})")
    if "captions" in shares and args.caption_rows is not None:
        p.error("--rows-per-image sets 'captions' and so does --caption-rows: give one")
    recipe = json.loads(args.recipe)
    own = sorted(set(recipe) & {"epochs", "seed", "group_by_length"})
    if own:
        p.error(f"--recipe: {own} have options of their own (--epochs, --seed, --no-group-by-length)")
    unknown = sorted(set(recipe) - {f.name for f in fields(Recipe)})
    if unknown:
        p.error(f"--recipe: unknown recipe option(s) {unknown}")
    if args.start and not os.path.exists(os.path.join(args.start, "vision_pretraining.json")):
        p.error(f"--start {args.start}: not a tiny checkpoint with its tower pretrained (no vision_pretraining.json)")
    if args.language_steps < 0 or args.text_rows < 0:
        p.error("--language-steps and --text-rows must be >= 0")
    if args.stage1_parts not in ("projector,language", "projector"):
        p.error(f"--stage1-parts must be 'projector,language' or 'projector', got {args.stage1_parts!r}")


if __name__ == "__main__":
    main()
