"""Named training recipes: LLaVA-1.5's two stages, and short CPU recipes for tiny checkpoints.

The tiny recipes are what the demo, the dataset scripts and the tests use on a 2-core CPU
(measured in benchmarks/RESULTS.md, "Tiny models"):

- The vision tower is pretrained first, then frozen in both stages, as LLaVA keeps its
  pretrained CLIP frozen. A tiny checkpoint has no pretrained tower; with a random one, or
  one trained end to end from the language loss (it collapsed: image features nearly the
  same for every image within 25 steps), the language model learned nothing
  image-dependent in 1200 steps. :func:`train_tiny` therefore pretrains the tower on
  ShapesWorld cells (:func:`hf_vitcurate.synthetic.vision.pretrain_vision_tower`, ~20 s,
  ~99.9% per-cell accuracy), the local stand-in for CLIP.
- Stage 1 (f_pre) trains the projector *and* the language model on captions. LLaVA
  trains the projector alone because its LLM is pretrained; a tiny LLM starts from random
  weights and must learn to describe what it sees (a deliberate deviation).
- Stage 2 (instruction tuning) keeps LLaVA's split: projector + language model, tower frozen.
- Batch 32, lr 1e-3, cosine to 10% (batch 16 at 3e-3 stalled on the answer prior).

Example:
    >>> recipe_preset("tiny")["train_parts"]
    ('projector', 'language')
    >>> sorted(PRESETS)
    ['llava', 'llava-pretrain', 'tiny', 'tiny-pretrain']
"""

from __future__ import annotations

import os
from typing import Any

# LLaVA-1.5 stage 2 (visual instruction tuning): the defaults of training.Recipe.
LLAVA_RECIPE: dict[str, Any] = {}
# LLaVA-1.5 stage 1: projector only, lr 1e-3, on captions.
LLAVA_PRETRAIN_RECIPE: dict[str, Any] = {"train_parts": ("projector",), "learning_rate": 1e-3}
_TINY_COMMON: dict[str, Any] = {
    "train_parts": ("projector", "language"),
    "learning_rate": 1e-3,
    "batch_size": 32,
    "warmup_ratio": 0.03,
    "lr_schedule": "cosine",
    "min_lr_ratio": 0.1,
    "weight_decay": 0.0,
    "save_steps": 200,
    "num_threads": "auto",  # 1 thread when other jobs keep the cores busy (see loading.auto_threads)
}
TINY_PRETRAIN_RECIPE: dict[str, Any] = {**_TINY_COMMON, "epochs": 1.0}
TINY_RECIPE: dict[str, Any] = {**_TINY_COMMON, "epochs": 2.0}
PRESETS = {
    "llava": LLAVA_RECIPE,
    "llava-pretrain": LLAVA_PRETRAIN_RECIPE,
    "tiny": TINY_RECIPE,
    "tiny-pretrain": TINY_PRETRAIN_RECIPE,
}


def recipe_preset(name: str) -> dict[str, Any]:
    """A copy of the named recipe (``llava``, ``llava-pretrain``, ``tiny``, ``tiny-pretrain``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown recipe {name!r}; choose from {sorted(PRESETS)}")
    return dict(PRESETS[name])


def tiny_recipe(**overrides) -> dict[str, Any]:
    """The CPU fine-tuning recipe for tiny checkpoints, with ``overrides`` applied.

    >>> tiny_recipe(seed=3)["seed"], tiny_recipe()["batch_size"]
    (3, 32)
    """
    return {**TINY_RECIPE, **overrides}


def tiny_pretrain_recipe(**overrides) -> dict[str, Any]:
    """The CPU stage-1 recipe for tiny checkpoints (projector + language model, tower frozen)."""
    return {**TINY_PRETRAIN_RECIPE, **overrides}


def train_tiny(
    pool,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    caption_task: str = "caption",
    captions=None,
    vision_steps: int = 300,
    language_steps: int = 0,
    language_options: dict | None = None,
    **recipe,
) -> str:
    """f_pre for a pool: a tiny checkpoint built on its text, its tower pretrained, stage 1 on captions.

    ``captions``: the stage-1 rows (default: the pool's rows whose ``task`` is
    ``caption_task``; none at all skips stage 1); a separate, larger caption set gives a
    stronger f_pre. ``vision_steps``: ShapesWorld tower pretraining steps (0: keep the random
    tower). ``language_steps``: text-only language-model pretraining steps
    (:func:`hf_vitcurate.synthetic.lm_pretraining.pretrain_language_model`; 0, the default:
    none), run **after** stage 1 and written to a folder of its own (``f_pre_lm``, or
    ``tiny_lm`` without stage 1). The order is measured: run before stage 1, the text stage
    left the fine-tune unable to read the image (captions 23 against 95); after it, the
    fine-tune reads the image as well as without it (benchmarks/RESULTS.md, "Language-model
    pretraining"). ``language_options``: its other arguments (e.g. ``{"learning_rate": 3e-4,
    "held_out": 20}``). ``recipe`` overrides :data:`TINY_PRETRAIN_RECIPE`. Returns
    ``{out_dir}/f_pre`` (or ``{out_dir}/tiny`` without stage 1; ``..._lm`` with
    ``language_steps``); a rerun reuses what exists.

    >>> f_pre = train_tiny(pool, "runs/tiny", seed=0)   # doctest: +SKIP
    """
    from datasets import concatenate_datasets

    from .tiny import tiny_checkpoint
    from .training import pretrain

    out_dir = os.fspath(out_dir)
    if captions is None:
        captions = pool.filter(lambda t: t == caption_task, input_columns="task") if "task" in pool.column_names else None
    base = os.path.join(out_dir, "tiny")
    if not os.path.exists(os.path.join(base, "config.json")):
        parts = [pool.select_columns(["conversations"])]
        if captions is not None and len(captions):
            parts.append(captions.select_columns(["conversations"]))
        # Built in a temporary folder and renamed: a killed run never leaves half a base behind.
        tmp = base + ".partial"
        tiny_checkpoint(tmp, concatenate_datasets(parts), seed=seed)
        if vision_steps:
            from ..synthetic.vision import pretrain_vision_tower

            pretrain_vision_tower(tmp, steps=vision_steps, seed=seed, progress=recipe.get("progress", True))
        os.replace(tmp, base)
    path = base
    if captions is not None and len(captions):
        path = pretrain(base, captions, os.path.join(out_dir, "f_pre"), **tiny_pretrain_recipe(seed=seed, **recipe))
    if not language_steps:
        return path
    lm = path + "_lm"
    if not os.path.exists(os.path.join(lm, "config.json")):
        from ..synthetic.lm_pretraining import pretrain_language_model

        options = {"seed": seed, "progress": recipe.get("progress", True), **(language_options or {})}
        pretrain_language_model(path, lm + ".partial", steps=language_steps, **options)
        os.replace(lm + ".partial", lm)
    return lm
