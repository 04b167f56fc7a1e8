"""Named training recipes: LLaVA-1.5's two stages, and the short CPU recipes for tiny checkpoints.

``vitcurate train --recipe NAME`` starts from one of :data:`PRESETS`. The ``tiny`` ones are
plain dictionaries here so the CLI needs nothing else; ``hf_vitcurate.testing`` builds the
tiny checkpoints they are tuned for, and explains the choices (``testing.recipes``).

Example:
    >>> recipe_preset("tiny")["train_parts"]
    ('projector', 'language')
    >>> sorted(PRESETS)
    ['llava', 'llava-pretrain', 'tiny', 'tiny-pretrain']
"""

from __future__ import annotations

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
# The CPU stage 1 (projector + language model, tower frozen) and fine-tune of tiny checkpoints.
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
