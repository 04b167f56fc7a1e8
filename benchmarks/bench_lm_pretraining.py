"""Does text-only pretraining teach the tiny language model to compare? (RESULTS, "Language-model pretraining")

    python benchmarks/bench_lm_pretraining.py [--steps 2000] [--lr 1e-3] [--questions 4] [--match-share 0.25]
        [--forward 0.5] [--match-kinds color,shape,count,position] [--lr-schedule cosine] [--loss-on answers] [--batch-size 32]
        [--formats short,judgement,multiple_choice,sentence] [--freeze-embeddings] [--until-match 90] [--seed 0] [--eval-every 100] [--checkpoint PATH]

One tiny checkpoint (``tiny_checkpoint`` on 2,000 clean rows of six ShapesWorld sources, its
tower pretrained 300 steps; or ``--checkpoint``, copied), then
``synthetic.lm_pretraining.pretrain_language_model`` with the options given, printing the
held-out first-answer-token accuracy per format every ``--eval-every`` steps (chance:
judgement 50, multiple choice and match 25) and writing the report as JSON (``--out``).
``--match-share 1 --questions 8`` is the letter step alone. Runs on the GPU when there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile

SOURCES = ["mm_short_vqa", "mm_multiple_choice", "svit_judgement", "captions", "llava_conv", "llava_detail"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--questions", type=int, default=4, help="questions per row")
    p.add_argument("--match-share", type=float, default=0.25, help="share of rows that are the letter step alone")
    p.add_argument("--forward", type=float, default=0.5, help="share of match questions asked letter -> value")
    p.add_argument("--match-kinds", default="color,shape,count,position",
                   help="value spaces of the match rows' options (comma list; 'color': single words)")
    p.add_argument("--formats", default="short,judgement,multiple_choice,sentence",
                   help="question formats of the scene rows (comma list)")
    p.add_argument("--lr-schedule", choices=["cosine", "linear", "constant"], default="cosine")
    p.add_argument("--loss-on", choices=["answers", "all"], default="answers")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--freeze-embeddings", action="store_true",
                   help="keep the (tied) embedding table as it is; train the layers only")
    p.add_argument("--until-match", type=float, default=None,
                   help="stop once held-out match accuracy reaches this (0-100); --steps is then the most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--checkpoint", default=None, help="start from this tiny checkpoint (copied; default: built here)")
    p.add_argument("--out", default=None, help="folder for the checkpoint and the report (default: a temporary one)")
    args = p.parse_args()
    if not 0.0 <= args.match_share <= 1.0 or not 0.0 <= args.forward <= 1.0:
        p.error("--match-share and --forward must be in [0, 1]")
    from hf_vitcurate.synthetic.lm_pretraining import FORMATS, MATCH_KINDS

    if not args.match_kinds or set(args.match_kinds.split(",")) - set(MATCH_KINDS):
        p.error(f"--match-kinds: choose from {','.join(MATCH_KINDS)}")
    if not args.formats or set(args.formats.split(",")) - set(FORMATS):
        p.error(f"--formats: choose from {','.join(FORMATS)}")
    if min(args.steps, args.questions, args.batch_size) < 1 or args.eval_every < 0:
        p.error("--steps, --questions and --batch-size must be >= 1, --eval-every >= 0")
    if args.until_match is not None and not 0.0 <= args.until_match <= 100.0:
        p.error("--until-match must be in [0, 100]")

    from hf_vitcurate.models import tiny_checkpoint
    from hf_vitcurate.synthetic import training_pool
    from hf_vitcurate.synthetic.lm_pretraining import pretrain_language_model
    from hf_vitcurate.synthetic.vision import pretrain_vision_tower

    out = args.out or tempfile.mkdtemp(prefix="bench_lm-")
    path = os.path.join(out, "checkpoint")
    if args.checkpoint:
        shutil.copytree(args.checkpoint, path, dirs_exist_ok=True)
    else:
        corpus = training_pool("clean", 2000, seed=0, sources=SOURCES)
        tiny_checkpoint(path, corpus, seed=0)
        pretrain_vision_tower(path, steps=300, seed=0, progress=False)
    report = pretrain_language_model(
        path, steps=args.steps, learning_rate=args.lr, questions=args.questions, match_share=args.match_share,
        forward=args.forward, match_kinds=tuple(args.match_kinds.split(",")),
        formats=tuple(args.formats.split(",")), lr_schedule=args.lr_schedule,
        loss_on=args.loss_on, batch_size=args.batch_size, seed=args.seed, train_embeddings=not args.freeze_embeddings,
        until=None if args.until_match is None else {"match": args.until_match},
        eval_every=args.eval_every, num_threads=args.threads, progress=False,
    )
    formats = list(report["held_out"])
    print(json.dumps({k: v for k, v in vars(args).items()}))
    print("| step | seconds | " + " | ".join(formats) + " |")
    print("|---" * (len(formats) + 2) + "|")
    for point in [*report["curve"], {"step": report["steps"], "seconds": report["seconds"], **report["held_out"]}]:
        print(f"| {point['step']} | {point['seconds']:.0f} | " + " | ".join(f"{point[f]:.0f}" for f in formats) + " |")
    print(f"loss: first tenth {report['loss_first']}, last tenth {report['loss_last']}; checkpoint {path}")


if __name__ == "__main__":
    main()
