"""``vitcurate train``: fine-tune (or pretrain) a checkpoint on a dataset (mirrors :func:`hf_vitcurate.models.train`).

Runs unchanged under ``accelerate launch`` (one process per GPU, or ``--cpu``).

Example:
    $ vitcurate train runs/pre pool/ runs/ft --recipe tiny
    $ accelerate launch --num_processes 8 -m hf_vitcurate.cli train llava-hf/llava-1.5-7b-hf pool/ runs/ft \\
          --batch-size 16 --learning-rate 2e-5 --mixed-precision bf16
"""

from __future__ import annotations

import json

from .common import add_input_args, load_input

RECIPES = ("llava", "llava-pretrain", "tiny", "tiny-pretrain")


def register(sub) -> None:
    p = sub.add_parser("train", help="fine-tune or pretrain an image-text checkpoint (LLaVA recipe)")
    p.add_argument("model", help="checkpoint folder or Hub id (any AutoModelForImageTextToText)")
    add_input_args(p)
    p.add_argument("output", help="folder for the trained checkpoint (a rerun resumes there)")
    p.add_argument("--recipe", default="llava", choices=RECIPES,
                   help="defaults to start from: llava (stage 2), llava-pretrain (stage 1, projector), "
                        "tiny / tiny-pretrain (the CPU recipes for models.tiny checkpoints)")
    p.add_argument("--build-tiny", action="store_true",
                   help="if MODEL does not exist, build a tiny checkpoint there from INPUT's text first")
    p.add_argument("--vision-steps", type=int, default=300,
                   help="with --build-tiny: pretrain its vision tower on ShapesWorld cells for N steps "
                        "(synthetic.pretrain_vision_tower; 0 keeps the random tower)")
    p.add_argument("--language-steps", type=int, default=0,
                   help="with --build-tiny: then pretrain its language model on ShapesWorld scenes written as text "
                        "for N steps (synthetic.pretrain_language_model; default 0: off). Measured: right after the "
                        "tower it keeps the fine-tune from reading the image; train_tiny and `vitcurate pretrain-language` "
                        "run it after a stage 1 on captions instead (benchmarks/RESULTS.md, 'Language-model pretraining')")
    p.add_argument("--train-parts", default=None, help="comma list of vision,projector,language")
    for flag, typ in [("--learning-rate", float), ("--epochs", float), ("--max-steps", int), ("--batch-size", int),
                      ("--grad-accum", int), ("--warmup-ratio", float), ("--weight-decay", float),
                      ("--max-length", int), ("--seed", int), ("--save-steps", int), ("--num-threads", int),
                      ("--num-workers", int)]:
        p.add_argument(flag, type=typ, default=None)
    p.add_argument("--lr-schedule", choices=["cosine", "linear", "constant"], default=None)
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default=None)
    p.add_argument("--dtype", default=None, help="weights dtype when loading (auto, float32, bfloat16)")
    p.add_argument("--gradient-checkpointing", action="store_true", default=None)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    p.set_defaults(func=run)


def recipe_from_args(args) -> dict:
    """The recipe: the preset, then every option given on the command line."""
    from ..models.recipes import recipe_preset

    recipe = recipe_preset(args.recipe)
    for name in ("learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "warmup_ratio", "weight_decay",
                 "max_length", "seed", "save_steps", "num_threads", "num_workers", "lr_schedule",
                 "mixed_precision", "dtype", "gradient_checkpointing"):
        value = getattr(args, name)
        if value is not None:
            recipe[name] = value
    if args.train_parts:
        recipe["train_parts"] = tuple(p.strip() for p in args.train_parts.split(",") if p.strip())
    if args.no_progress:
        recipe["progress"] = False
    return recipe


def run(args) -> int:
    import os

    from accelerate import PartialState

    from ..models import tiny_checkpoint, train
    from ..synthetic import pretrain_language_model, pretrain_vision_tower

    ds = load_input(args.input, args.format, args.image_root, args.source)
    if args.build_tiny and not os.path.exists(args.model):
        state = PartialState()
        if state.is_main_process:
            tiny_checkpoint(args.model, ds)
            if args.vision_steps:  # the tiny recipes keep the tower frozen: give it CLIP's role first
                pretrain_vision_tower(args.model, steps=args.vision_steps, progress=not args.no_progress)
            if args.language_steps:
                pretrain_language_model(args.model, steps=args.language_steps, progress=not args.no_progress)
        state.wait_for_everyone()
    path = train(args.model, ds, args.output, overwrite=args.overwrite, **recipe_from_args(args))
    if PartialState().is_main_process:
        with open(os.path.join(path, "train_log.json")) as f:
            log = json.load(f)
        summary = {k: log[k] for k in ("rows", "steps", "processes", "train_seconds", "rows_per_second")}
        summary["final_loss"] = log["history"][-1]["loss"] if log["history"] else None
        print(json.dumps({"output": path, **summary}, indent=2))
    return 0
