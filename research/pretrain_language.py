"""The text-only language-model stage on an existing tiny checkpoint (research script).

Mirrors :func:`research.lm_pretraining.pretrain_language_model`: the stand-in
for an LLM's pretraining that a tiny checkpoint lacks. Run it after stage 1 (RESULTS,
"Language-model pretraining, after stage 1": before the model has read an image, it keeps
the fine-tune from learning to), so the order is tower, stage 1, this, fine-tune. ``runs/f_pre``
below is a stage-1 checkpoint (``train_tiny``'s ``f_pre``, or ``vitcurate train ... --recipe
tiny-pretrain`` on captions from a checkpoint whose tower is pretrained). From the
repository root:

Example:
    $ python -m research.pretrain_language runs/f_pre runs/f_pre_lm --steps 2000 --learning-rate 3e-4 \\
          --questions 1 --match-share 1 --forward 0 --match-kinds color --lr-schedule constant \\
          --freeze-embeddings --until-match 90
    $ vitcurate train pool/ --model runs/f_pre_lm --output runs/ft --recipe tiny

``add_stage_args`` and ``stage_options`` are shared with ``research/bench_lm_pretraining.py``.
"""

from __future__ import annotations

import argparse
import json


def add_stage_args(p: argparse.ArgumentParser) -> None:
    """The stage's options, with the defaults of :func:`pretrain_language_model`."""
    p.add_argument("--steps", type=int, default=1500, help="the most optimizer steps (see --until-match)")
    p.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--questions", type=int, default=4, help="questions per row")
    p.add_argument("--match-share", type=float, default=0.25, help="share of rows that are the letter step alone")
    p.add_argument("--forward", type=float, default=0.5, help="share of match questions asked letter -> value")
    p.add_argument("--match-kinds", default="color,shape,count,position",
                   help="value spaces of the match rows' options (comma list; 'color': single words)")
    p.add_argument("--formats", default="short,judgement,multiple_choice,sentence",
                   help="question formats of the scene rows (comma list)")
    p.add_argument("--lr-schedule", choices=["cosine", "linear", "constant"], default="cosine")
    p.add_argument("--loss-on", choices=["answers", "all"], default="answers")
    p.add_argument("--freeze-embeddings", action="store_true",
                   help="keep the (tied) embedding table as it is; train the layers only")
    p.add_argument("--until-match", type=float, default=None,
                   help="stop once held-out match accuracy reaches this (0-100); --steps is then the most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=100, help="held-out check every N steps (0: at the end only)")


def stage_options(args: argparse.Namespace, p: argparse.ArgumentParser) -> dict:
    """Check the options (one-line errors through ``p``) and return them as keyword arguments.

    >>> p = argparse.ArgumentParser(); add_stage_args(p)
    >>> stage_options(p.parse_args(["--until-match", "90"]), p)["until"]
    {'match': 90.0}
    """
    from research.lm_pretraining import FORMATS, MATCH_KINDS

    if not 0.0 <= args.match_share <= 1.0 or not 0.0 <= args.forward <= 1.0:
        p.error("--match-share and --forward must be in [0, 1]")
    if not args.match_kinds or set(args.match_kinds.split(",")) - set(MATCH_KINDS):
        p.error(f"--match-kinds: choose from {','.join(MATCH_KINDS)}")
    if not args.formats or set(args.formats.split(",")) - set(FORMATS):
        p.error(f"--formats: choose from {','.join(FORMATS)}")
    if min(args.steps, args.questions, args.batch_size) < 1 or args.eval_every < 0:
        p.error("--steps, --questions and --batch-size must be >= 1, --eval-every >= 0")
    if args.until_match is not None and not 0.0 <= args.until_match <= 100.0:
        p.error("--until-match must be in [0, 100]")
    return {
        "steps": args.steps, "learning_rate": args.learning_rate, "batch_size": args.batch_size,
        "questions": args.questions, "match_share": args.match_share, "forward": args.forward,
        "match_kinds": tuple(args.match_kinds.split(",")), "formats": tuple(args.formats.split(",")),
        "lr_schedule": args.lr_schedule, "loss_on": args.loss_on, "train_embeddings": not args.freeze_embeddings,
        "until": None if args.until_match is None else {"match": args.until_match},
        "seed": args.seed, "eval_every": args.eval_every,
    }


def main(argv: list[str] | None = None) -> int:
    import os
    import shutil

    from research.lm_pretraining import REPORT_FILE, pretrain_language_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="tiny checkpoint folder (its tower pretrained; after stage 1 for the fine-tune's sake)")
    p.add_argument("output", help="folder for the result (MODEL is left as it is; a finished OUTPUT is kept)")
    add_stage_args(p)
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="run again even if OUTPUT is finished")
    args = p.parse_args(argv)
    options = stage_options(args, p)
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        p.error(f"{args.model}: not a checkpoint folder (no config.json)")
    if os.path.abspath(args.model) == os.path.abspath(args.output):
        p.error("OUTPUT must differ from MODEL (MODEL is left as it is)")
    report_path = os.path.join(args.output, REPORT_FILE)
    if os.path.exists(report_path) and not args.overwrite:
        with open(report_path) as f:  # finished before: keep it (as train_tiny_lm reuses f_pre_lm)
            report = json.load(f)
    else:
        # Written beside OUTPUT first, so a killed run never leaves a half-trained OUTPUT.
        partial = os.path.normpath(args.output) + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        report = pretrain_language_model(args.model, partial, num_threads=args.num_threads,
                                         progress=not args.no_progress, **options)
        shutil.rmtree(args.output, ignore_errors=True)
        os.replace(partial, args.output)
    print(json.dumps({"output": args.output, **{k: report[k] for k in ("steps", "max_steps", "seconds", "held_out")}},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
