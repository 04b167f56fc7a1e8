"""The short CPU recipes for tiny checkpoints, and :func:`train_tiny`, the f_pre the demo uses.

What the demo, the dataset scripts and the tests use on a 2-core CPU (the runs behind
each choice are in research/RESULTS.md, "Tiny models"):

- The vision tower is pretrained first, then frozen in both stages, as LLaVA keeps its
  pretrained CLIP frozen. A tiny checkpoint has no pretrained tower; with a random one, or
  one trained end to end from the language loss (it collapsed: image features nearly the
  same for every image within 25 steps), the language model learned nothing
  image-dependent in 1200 steps. :func:`train_tiny` therefore pretrains the tower on
  ShapesWorld cells (:func:`~hf_vitcurate.testing.vision.pretrain_vision_tower`, ~20 s,
  ~99.9% per-cell accuracy), the local stand-in for CLIP.
- Stage 1 (f_pre) trains the projector *and* the language model on captions. LLaVA
  trains the projector alone because its LLM is pretrained; a tiny LLM starts from random
  weights and must learn to describe what it sees (a deliberate deviation).
- Stage 2 (instruction tuning) keeps LLaVA's split: projector + language model, tower frozen.
- Batch 32, lr 1e-3, cosine to 10% (batch 16 at 3e-3 stalled on the answer prior).

The recipes themselves are the plain ``tiny`` / ``tiny-pretrain`` presets of
:mod:`hf_vitcurate.models.recipes` (what ``vitcurate train --recipe tiny`` reads).

Example:
    >>> tiny_recipe(seed=3)["seed"], tiny_recipe()["batch_size"]
    (3, 32)
"""

from __future__ import annotations

import os
from typing import Any

from ..models.recipes import TINY_PRETRAIN_RECIPE, TINY_RECIPE


def tiny_recipe(**overrides) -> dict[str, Any]:
    """The CPU fine-tuning recipe for tiny checkpoints, with ``overrides`` applied.

    >>> tiny_recipe(epochs=1.0)["epochs"]
    1.0
    """
    return {**TINY_RECIPE, **overrides}


def tiny_pretrain_recipe(**overrides) -> dict[str, Any]:
    """The CPU stage-1 recipe for tiny checkpoints (projector + language model, tower frozen).

    >>> tiny_pretrain_recipe()["train_parts"]
    ('projector', 'language')
    """
    return {**TINY_PRETRAIN_RECIPE, **overrides}


def _base(ds, captions, path: str, *, seed: int, vision_steps: int, progress: bool) -> None:
    """The tiny checkpoint of ``ds``'s (and ``captions``') text at ``path``, its tower pretrained."""
    from datasets import concatenate_datasets

    from .tiny import tiny_checkpoint
    from .vision import pretrain_vision_tower

    parts = [ds.select_columns(["conversations"])]
    if captions is not None and len(captions):
        parts.append(captions.select_columns(["conversations"]))
    # Built in a temporary folder and renamed: a killed run never leaves half a base behind.
    tmp = path + ".partial"
    tiny_checkpoint(concatenate_datasets(parts), output_dir=tmp, seed=seed)
    if vision_steps:
        pretrain_vision_tower(tmp, steps=vision_steps, seed=seed, progress=progress)
    os.replace(tmp, path)


def train_tiny(
    ds,
    *,
    work_dir: str | os.PathLike,
    seed: int = 0,
    caption_task: str = "caption",
    captions=None,
    vision_steps: int = 300,
    **recipe,
) -> str:
    """f_pre for a pool: a tiny checkpoint built on its text, its tower pretrained, stage 1 on captions.

    ``ds``: the pool (its text trains the tokenizer). ``captions``: the stage-1 rows
    (default: the rows of ``ds`` whose ``task`` is ``caption_task``; none at all skips
    stage 1); a separate, larger caption set gives a stronger f_pre. ``vision_steps``:
    ShapesWorld tower pretraining steps (0: keep the random tower). ``recipe`` overrides
    :data:`~hf_vitcurate.models.recipes.TINY_PRETRAIN_RECIPE`. Returns ``{work_dir}/f_pre``
    (or ``{work_dir}/tiny`` without stage 1); a rerun reuses what exists.

    >>> f_pre = train_tiny(pool, work_dir="runs/tiny", seed=0)   # doctest: +SKIP
    """
    from ..models.training import pretrain

    work_dir = os.fspath(work_dir)
    if captions is None and "task" in ds.column_names:
        captions = ds.filter(lambda t: t == caption_task, input_columns="task")
    base = os.path.join(work_dir, "tiny")
    if not os.path.exists(os.path.join(base, "config.json")):
        _base(ds, captions, base, seed=seed, vision_steps=vision_steps, progress=recipe.get("progress", True))
    if captions is None or not len(captions):
        return base
    return pretrain(captions, model=base, output_dir=os.path.join(work_dir, "f_pre"),
                    **tiny_pretrain_recipe(seed=seed, **recipe))
