"""Build an MMInstruct-style dataset: images → captions → questions of four types → review file → Hub layout.

    python dataset_scripts/build_mminstruct_style.py --out out/mminstruct_style          # ShapesWorld, tiny local model
    python dataset_scripts/build_mminstruct_style.py --out out/mm --split-by-type --images 48
    python dataset_scripts/build_mminstruct_style.py --out out/mm --backend openai \\
        --base-url http://127.0.0.1:8000/v1 --model Qwen2-VL-7B-Instruct          # a vLLM server (key from OPENAI_API_KEY)

Steps (*MMInstruct: A High-Quality Multi-Modal Instruction Tuning Dataset with Extensive
Diversity*, arXiv:2407.15838, §3; docs/methods.md):
1. images: ShapesWorld scenes (``engine.shapes.shapes_images``: one domain per image,
   round robin over the six domains a picture of shapes can serve; the scene's ground
   truth in words as the image's related information, Table 5's <Image Tag>), or
   ``--images-from`` a folder saved with ``save_to_disk`` (``id``, ``images``, ``domain``);
2. generator: ``--backend local`` (default) builds a tiny LLaVA checkpoint on this CPU and,
   with ``--teach-steps`` > 0, fine-tunes it on ``engine.shapes.teacher_rows`` (the engine's
   own prompts answered from the ground truth of *other* scenes) so that it writes the
   output format; quality stays low, which is the point: the rejection reasons are real.
   ``--model`` takes any local checkpoint instead; ``--backend openai`` any
   OpenAI-compatible server;
3. the engine (``engine.Engine.run``): captions, 3 questions per type per image (with seed
   questions), 5-question multi-round long VQA; broken items regenerated, then rejected
   with a reason; a request cache in ``out/cache`` (a rerun pays for nothing twice) and a
   ledger of every call in ``out/ledger.jsonl``;
4. review: ``out/review.csv`` for manual correction (step f); with ``--review`` a file of
   decisions is applied (``engine.review.import_review``);
5. MMInstruct-style output: one config per domain, ``instruction_type`` column, splits by
   type with ``--split-by-type``; published with ``hub.publish`` to ``out/hub`` (card
   ``mminstruct``); ``out/report.json`` holds counts, the cost report and timings.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from hf_vitcurate.commands.common import print_summary

log = logging.getLogger("build_mminstruct_style")


def build_generator(args, engine_for_prompts) -> str:
    """A local checkpoint: ``--model``, or a tiny one built (and taught, with ``--teach-steps``) here."""
    if args.model:
        return args.model
    from hf_vitcurate.engine.shapes import teacher_rows
    from hf_vitcurate.models import train
    from hf_vitcurate.testing import TOY_ARCHITECTURE, tiny_checkpoint

    ckpt = os.path.join(args.out, "ckpt")
    taught = os.path.join(ckpt, "taught")
    if args.teach_steps and os.path.exists(os.path.join(taught, "model.safetensors")):
        return taught  # built by an earlier run with the same --out
    teach = teacher_rows(engine_for_prompts, n_images=args.teach_images, seed=args.seed + 1000)
    # The tokenizer learns the prompts' words, so that a prompt fits the tiny model's positions.
    base = tiny_checkpoint(teach, output_dir=os.path.join(ckpt, "base"), architecture=TOY_ARCHITECTURE, max_positions=1024, vocab_size=1024,
                           seed=args.seed)
    if not args.teach_steps:
        return base
    t0 = time.perf_counter()
    train(teach, model=base, output_dir=taught, restart=True, max_steps=args.teach_steps, batch_size=8, learning_rate=2e-3,
          train_parts=("projector", "language", "vision"), warmup_ratio=0.05, seed=args.seed, num_threads=args.threads or None)
    log.info("taught the tiny generator for %d steps in %.0f s", args.teach_steps, time.perf_counter() - t0)
    return taught


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--images", type=int, default=24, help="ShapesWorld images (default: 24)")
    p.add_argument("--images-from", default=None, help="images saved with save_to_disk instead of ShapesWorld")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="local", choices=["local", "openai"])
    p.add_argument("--model", default=None, help="local checkpoint folder, or the model name for --backend openai")
    p.add_argument("--caption-model", default=None, help="openai: the image-text model for captions (default --model)")
    p.add_argument("--base-url", default="https://api.openai.com/v1")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--teach-steps", type=int, default=800, help="local tiny model: fine-tuning steps on teacher rows (0: random)")
    p.add_argument("--teach-images", type=int, default=96, help="ShapesWorld scenes of the teacher rows")
    p.add_argument("--max-new-tokens", type=int, default=320, help="local generation cap")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    p.add_argument("--types", nargs="+", default=["judgement", "multiple_choice", "short_vqa", "long_vqa"])
    p.add_argument("--max-attempts", type=int, default=2)
    p.add_argument("--split-by-type", action="store_true", help="one split per instruction type in each config")
    p.add_argument("--review", default=None, help="a review file with decisions to apply (from out/review.csv)")
    p.add_argument("--repo-id", default="hf-vitcurate/shapesworld-mminstruct-style")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.backend == "openai" and not args.model:
        p.error("--backend openai needs --model")
    os.makedirs(args.out, exist_ok=True)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from datasets import load_from_disk

    from hf_vitcurate.engine.backends import EchoBackend, LocalBackend, OpenAIBackend
    from hf_vitcurate.engine.engine import Engine
    from hf_vitcurate.engine.ledger import Ledger, cost_report, report_markdown
    from hf_vitcurate.engine.output import mminstruct_configs
    from hf_vitcurate.engine.review import export_review, import_review
    from hf_vitcurate.engine.shapes import shapes_images
    from hf_vitcurate.hub import publish

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    images = load_from_disk(args.images_from) if args.images_from else shapes_images(args.images, args.seed)
    cache = os.path.join(args.out, "cache")
    if args.backend == "local":
        path = build_generator(args, Engine(EchoBackend(), seed=args.seed))
        timings["generator_s"] = time.perf_counter() - t0
        backend = caption_backend = LocalBackend(path, max_new_tokens=args.max_new_tokens, batch_size=8, cache_dir=cache)
    else:
        kw = dict(max_concurrency=args.concurrency, cache_dir=cache)
        backend = OpenAIBackend(args.base_url, args.model, **kw)
        caption_backend = OpenAIBackend(args.base_url, args.caption_model or args.model, **kw)
    ledger_path = os.path.join(args.out, "ledger.jsonl")
    if os.path.exists(ledger_path):
        os.remove(ledger_path)  # this run's calls only (the cache keeps what earlier runs paid for)
    engine = Engine(backend, caption_backend=caption_backend, ledger=Ledger(path=ledger_path), batch_size=16,
                    max_attempts=args.max_attempts, seed=args.seed)
    t1 = time.perf_counter()
    result = engine.run(images, types=args.types)
    timings["engine_s"] = time.perf_counter() - t1
    kept, rejected = result.kept, result.rejected
    export_review(kept, os.path.join(args.out, "review.csv"), image_dir=os.path.join(args.out, "review_images"))
    if args.review:
        kept, review_rejected = import_review(kept, args.review)
        from datasets import concatenate_datasets

        rejected = concatenate_datasets([rejected, review_rejected.select_columns(rejected.column_names)])
    rejected.save_to_disk(os.path.join(args.out, "rejected"))

    counts = result.counts()
    report = cost_report(result.ledger.records, n_images=len(images), n_instructions=result.instructions())
    configs = mminstruct_configs(kept, split_by_type=args.split_by_type)
    card_data = {
        "pretty_name": "ShapesWorld, MMInstruct-style" if not args.images_from else "MMInstruct-style",
        "description": "Instructions generated by the hf_vitcurate MMInstruct data engine "
                       f"(caption model `{caption_backend.model}`, question model `{backend.model}`).",
        "sources": {"mminstruct_engine": {"license": "apache-2.0", "rows_in": counts["rows_in"]}},
        "tables": {
            "Rows by domain and instruction type": [{"domain": d, **{t: int(n) for t, n in dd.num_rows.items()}} for d, dd in configs.items()]
            if args.split_by_type else [{"domain": d, "rows": dd["train"].num_rows} for d, dd in configs.items()],
            "Engine cost (ledger) against the paper's manual-annotation model": [
                {"": "this run", "per image USD": report["measured"]["per_image_usd"],
                 "per instruction USD": report["measured"]["per_instruction_usd"], "engine / manual": report["this_run"]["engine_over_manual"]},
                {"": "paper, Table 2", "per image USD": report["paper"]["engine_per_image_usd"],
                 "per instruction USD": report["paper"]["engine_per_instruction_usd"], "engine / manual": report["paper"]["engine_over_manual"]},
            ],
        },
    }
    if configs:
        publish(configs, args.repo_id, local_dir=os.path.join(args.out, "hub"), card="mminstruct", card_data=card_data, rejected=rejected)
    else:
        log.warning("no row was kept: nothing to publish (see %s/rejected)", args.out)
    timings["total_s"] = time.perf_counter() - t0
    summary = {"counts": counts, "configs": {d: dict(dd.num_rows) for d, dd in configs.items()},
               "ledger": result.ledger.summary()["total"], "cost": report, "timings": {k: round(v, 1) for k, v in timings.items()},
               "generator": backend.model, "images": len(images)}
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print_summary({"output": args.out, **{k: summary[k] for k in ("counts", "configs", "timings")}})
    print(report_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
