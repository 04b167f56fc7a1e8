"""Named training recipes: LLaVA-1.5's two stages, and short CPU recipes for tiny checkpoints.

The tiny recipes are what the demo, the dataset scripts and the tests use on a 2-core
CPU. A tiny checkpoint starts from random weights, so its stage 1 trains the vision
tower with the projector and the language model (there is no pretrained CLIP to keep
frozen); see :func:`hf_vitcurate.models.training.pretrain`. What was tried and measured
is in benchmarks/RESULTS.md ("Tiny models").

Example:
    >>> recipe_preset("tiny")["train_parts"]
    ('vision', 'projector', 'language')
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
TINY_PRETRAIN_RECIPE: dict[str, Any] = {
    "train_parts": ("vision", "projector", "language"), "learning_rate": 1e-3, "epochs": 2.0,
    "batch_size": 32, "warmup_ratio": 0.05, "save_steps": 50,
}
TINY_RECIPE: dict[str, Any] = {
    "train_parts": ("vision", "projector", "language"), "learning_rate": 5e-4, "epochs": 2.0,
    "batch_size": 32, "warmup_ratio": 0.05, "save_steps": 50,
}
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
    """The CPU fine-tuning recipe for tiny checkpoints, with ``overrides`` applied."""
    return {**TINY_RECIPE, **overrides}


def tiny_pretrain_recipe(**overrides) -> dict[str, Any]:
    """The CPU stage-1 recipe for tiny checkpoints (vision tower trained too)."""
    return {**TINY_PRETRAIN_RECIPE, **overrides}


def train_tiny(pool, out_dir: str | os.PathLike, *, seed: int = 0, caption_task: str = "caption") -> str:
    """f_pre for a pool: a tiny checkpoint built on its text and pretrained on its caption rows.

    Returns the path of the pretrained checkpoint (``{out_dir}/f_pre``); a rerun reuses it.
    """
    from .tiny import tiny_checkpoint
    from .training import pretrain

    out_dir = os.fspath(out_dir)
    base = os.path.join(out_dir, "tiny")
    if not os.path.exists(os.path.join(base, "config.json")):
        tiny_checkpoint(base, pool, seed=seed)
    captions = pool.filter(lambda t: t == caption_task, input_columns="task")
    if len(captions) == 0:
        raise ValueError(f"the pool has no rows with task {caption_task!r} to pretrain on")
    return pretrain(base, captions, os.path.join(out_dir, "f_pre"), **tiny_pretrain_recipe(seed=seed))
