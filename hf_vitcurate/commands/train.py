"""``vitcurate train``: fine-tune (or pretrain) a checkpoint on a dataset (mirrors :func:`hf_vitcurate.models.train`).

Runs unchanged under ``accelerate launch`` (one process per GPU, or ``--cpu``). Every
field of :class:`hf_vitcurate.models.training.Recipe` is a flag; a flag not given keeps
the value of ``--recipe`` (the preset), whose own defaults are the ``Recipe`` defaults.

Example:
    $ vitcurate train pool/ --model runs/pre --output runs/ft --recipe tiny
    $ accelerate launch --num_processes 8 -m hf_vitcurate.cli train pool/ --model llava-hf/llava-1.5-7b-hf \\
          --output runs/ft --batch-size 16 --learning-rate 2e-5 --mixed-precision bf16
"""

from __future__ import annotations

import json
import os

from ..errors import ConfigError
from .common import add_input_args, check_model, load_input, option, print_summary, quiet_if_small

RECIPES = ("llava", "llava-pretrain", "tiny", "tiny-pretrain")
# Recipe fields that are flags, with their types (None defaults need one) and choices.
RECIPE_FLAGS: dict[str, dict] = {
    "learning_rate": {"type": float}, "epochs": {"type": float}, "max_steps": {"type": int},
    "batch_size": {"type": int}, "grad_accum": {"type": int}, "warmup_ratio": {"type": float},
    "lr_schedule": {"choices": ["cosine", "linear", "constant"]}, "min_lr_ratio": {"type": float},
    "weight_decay": {"type": float}, "max_grad_norm": {"type": float}, "max_length": {"type": int},
    "seed": {"type": int}, "save_steps": {"type": int}, "log_steps": {"type": int},
    "mixed_precision": {"choices": ["no", "fp16", "bf16"]}, "dtype": {"type": str},
    "num_threads": {"type": str}, "num_workers": {"type": int},
    "group_by_length": {}, "gradient_checkpointing": {}, "progress": {},
}


def register(sub) -> None:
    from ..models.training import Recipe, train

    p = sub.add_parser("train", help="fine-tune or pretrain an image-text checkpoint (LLaVA recipe)")
    add_input_args(p)
    p.add_argument("--model", required=True, help="checkpoint folder or Hub id to start from (any AutoModelForImageTextToText)")
    p.add_argument("--output", required=True, help="folder for the trained checkpoint (a rerun resumes there)")
    option(p, train, "restart", "delete OUTPUT's saved steps and start over")
    p.add_argument("--recipe", default="llava", choices=RECIPES,
                   help="defaults to start from: llava (stage 2), llava-pretrain (stage 1, projector), "
                        "tiny / tiny-pretrain (the CPU recipes for tiny checkpoints) (default: llava)")
    p.add_argument("--build-tiny", action="store_true",
                   help="if MODEL does not exist, build a tiny checkpoint there from INPUT's text first "
                        "(hf_vitcurate.testing.tiny_checkpoint, its vision tower pretrained on ShapesWorld)")
    p.add_argument("--train-parts", default=None, help="comma list of vision,projector,language (default: the recipe's)")
    for name, kwargs in RECIPE_FLAGS.items():
        default = Recipe.__dataclass_fields__[name].default
        extra = {"action": __import__("argparse").BooleanOptionalAction} if isinstance(default, bool) else kwargs
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                       help=f"Recipe.{name} (default: the recipe's; Recipe default {default})", **extra)
    p.set_defaults(func=run)


def recipe_from_args(args) -> dict:
    """The recipe: the preset, then every option given on the command line."""
    from ..models.recipes import recipe_preset

    recipe = recipe_preset(args.recipe)
    for name in RECIPE_FLAGS:
        value = getattr(args, name)
        if value is not None:
            recipe[name] = value
    if recipe.get("num_threads") not in (None, "auto"):
        if not str(recipe["num_threads"]).isdigit():
            raise ConfigError(f"--num-threads: a whole number or 'auto', got {recipe['num_threads']!r}")
        recipe["num_threads"] = int(recipe["num_threads"])
    if args.train_parts:
        from ..models.training import PARTS

        recipe["train_parts"] = tuple(p.strip() for p in args.train_parts.split(",") if p.strip())
        unknown = sorted(set(recipe["train_parts"]) - set(PARTS))
        if unknown or not recipe["train_parts"]:
            raise ConfigError(f"--train-parts: {unknown or 'none'} not in {', '.join(PARTS)}")
    return recipe


def build_tiny(model: str, ds, progress: bool) -> None:
    """A tiny checkpoint at ``model`` for ``ds``'s text, its vision tower pretrained (main process only)."""
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        from ..testing import pretrain_vision_tower, tiny_checkpoint

        tiny_checkpoint(ds, output_dir=model)
        # The tiny recipes keep the tower frozen: give it CLIP's role first.
        pretrain_vision_tower(model, progress=progress)
    state.wait_for_everyone()


def run(args) -> int:
    from accelerate import PartialState

    from ..models import train

    recipe = recipe_from_args(args)
    if not args.build_tiny:
        check_model(args.model)
    ds = load_input(args)
    quiet_if_small(len(ds))
    if args.build_tiny and not os.path.exists(args.model):
        build_tiny(args.model, ds, recipe.get("progress", True))
    path = train(ds, model=args.model, output_dir=args.output, restart=args.restart, **recipe)
    if PartialState().is_main_process:
        with open(os.path.join(path, "train_log.json")) as f:
            log = json.load(f)
        summary = {k: log[k] for k in ("rows", "steps", "processes", "train_seconds", "rows_per_second")}
        summary["final_loss"] = log["history"][-1]["loss"] if log["history"] else None
        print_summary({"output": path, **summary})
    return 0
