"""Does text-only pretraining teach the tiny language model to compare? (RESULTS, "Language-model pretraining")

    python -m research.bench_lm_pretraining [--steps 2000] [--lr 1e-3] [--questions 4] [--match-share 0.25]
        [--forward 0.5] [--match-kinds color,shape,count,position] [--lr-schedule cosine] [--loss-on answers] [--batch-size 32]
        [--formats short,judgement,multiple_choice,sentence] [--freeze-embeddings] [--until-match 90] [--seed 0] [--eval-every 100] [--checkpoint PATH]

One tiny checkpoint (``tiny_checkpoint`` on 2,000 clean rows of six ShapesWorld sources, its
tower pretrained 300 steps; or ``--checkpoint``, copied), then
``research.lm_pretraining.pretrain_language_model`` with the options given, printing the
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

from research.pretrain_language import add_stage_args, stage_options

SOURCES = ["mm_short_vqa", "mm_multiple_choice", "svit_judgement", "captions", "llava_conv", "llava_detail"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stage_args(p)  # the options of `python -m research.pretrain_language`
    p.set_defaults(steps=2000)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--checkpoint", default=None, help="start from this tiny checkpoint (copied; default: built here)")
    p.add_argument("--out", default=None, help="folder for the checkpoint and the report (default: a temporary one)")
    args = p.parse_args()
    options = stage_options(args, p)

    from hf_vitcurate.synthetic import training_pool
    from hf_vitcurate.testing import pretrain_vision_tower, tiny_checkpoint
    from research.lm_pretraining import pretrain_language_model

    out = args.out or tempfile.mkdtemp(prefix="bench_lm-")
    path = os.path.join(out, "checkpoint")
    if args.checkpoint:
        shutil.copytree(args.checkpoint, path, dirs_exist_ok=True)
    else:
        corpus = training_pool("clean", 2000, seed=0, sources=SOURCES)
        tiny_checkpoint(corpus, output_dir=path, seed=0)
        pretrain_vision_tower(path, steps=300, seed=0, progress=False)
    report = pretrain_language_model(path, num_threads=args.threads, progress=False, **options)
    formats = list(report["held_out"])
    print(json.dumps({k: v for k, v in vars(args).items()}))
    print("| step | seconds | " + " | ".join(formats) + " |")
    print("|---" * (len(formats) + 2) + "|")
    for point in [*report["curve"], {"step": report["steps"], "seconds": report["seconds"], **report["held_out"]}]:
        print(f"| {point['step']} | {point['seconds']:.0f} | " + " | ".join(f"{point[f]:.0f}" for f in formats) + " |")
    print(f"loss: first tenth {report['loss_first']}, last tenth {report['loss_last']}; checkpoint {path}")


if __name__ == "__main__":
    main()
