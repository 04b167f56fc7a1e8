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

:func:`train_tiny` keeps what it builds in the user's cache folder (:mod:`.cache`): the tower
once per architecture, seed and steps, f_pre once per pool and recipe; a second run copies them.

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

# The identity of the model a work_dir holds (written by train_tiny with the cache on).
MARKER = "tiny_model.json"


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


def _identity(ds, captions, *, seed: int, vision_steps: int, recipe: dict) -> dict:
    """What decides f_pre: the pool's text, the captions, the architecture, seed, steps, recipe and code."""
    from dataclasses import asdict

    from ..identity import data_fingerprint
    from ..models.recipes import NEUTRAL_FIELDS
    from .cache import code_version, entry_key
    from .tiny import TINY_ARCHITECTURE

    has_captions = captions is not None and len(captions) > 0
    data = {"pool_text": data_fingerprint(ds, ["conversations"]),
            "captions": data_fingerprint(captions, [c for c in ("images", "conversations") if c in captions.column_names])
            if has_captions else None}
    params = {"architecture": asdict(TINY_ARCHITECTURE), "seed": seed, "vision_steps": vision_steps,
              "stage_1": {k: v for k, v in tiny_pretrain_recipe(seed=seed, **recipe).items() if k not in NEUTRAL_FIELDS}
              if has_captions else None, "code": code_version()}
    return {"data": data, "params": params, "key": entry_key(data=data, params=params)}


def _tower(base: str, *, seed: int, vision_steps: int, progress: bool, cache: bool) -> None:
    """Pretrain the tower of the checkpoint ``base`` in place, or put in the cached one for this seed and steps."""
    from dataclasses import asdict

    from .cache import TOWER_CODE_FILES, cached, code_version, entry_key
    from .tiny import TINY_ARCHITECTURE
    from .vision import export_tower, import_tower, pretrain_vision_tower

    if not cache:
        pretrain_vision_tower(base, steps=vision_steps, seed=seed, progress=progress)
        return
    # The tower never sees the pool: one entry per architecture, seed, steps and code serves every pool.
    params = {"architecture": asdict(TINY_ARCHITECTURE), "seed": seed, "steps": vision_steps,
              "code": code_version(TOWER_CODE_FILES)}
    built = []

    def build(folder: str) -> None:
        pretrain_vision_tower(base, steps=vision_steps, seed=seed, progress=progress)
        export_tower(base, folder)
        built.append(folder)

    entry = cached("towers", entry_key(params=params), {"params": params}, build)
    if not built:
        import_tower(entry, base)


def _build(ds, captions, work_dir: str, *, seed: int, vision_steps: int, cache: bool, recipe: dict) -> str:
    """``tiny/`` (and ``f_pre/`` when there are captions) in ``work_dir``; a rerun reuses what exists."""
    from datasets import concatenate_datasets

    from ..models.training import pretrain
    from .tiny import tiny_checkpoint

    base = os.path.join(work_dir, "tiny")
    if not os.path.exists(os.path.join(base, "config.json")):
        parts = [ds.select_columns(["conversations"])]
        if captions is not None and len(captions):
            parts.append(captions.select_columns(["conversations"]))
        # Built in a temporary folder and renamed: a killed run never leaves half a base behind.
        tmp = base + ".partial"
        tiny_checkpoint(concatenate_datasets(parts), output_dir=tmp, seed=seed)
        if vision_steps:
            _tower(tmp, seed=seed, vision_steps=vision_steps, progress=recipe.get("progress", True), cache=cache)
        os.replace(tmp, base)
    if captions is None or not len(captions):
        return base
    return pretrain(captions, model=base, output_dir=os.path.join(work_dir, "f_pre"),
                    **tiny_pretrain_recipe(seed=seed, **recipe))


def train_tiny(
    ds,
    *,
    work_dir: str | os.PathLike,
    seed: int = 0,
    caption_task: str = "caption",
    captions=None,
    vision_steps: int = 300,
    cache: bool | None = None,
    **recipe,
) -> str:
    """f_pre for a pool: a tiny checkpoint built on its text, its tower pretrained, stage 1 on captions.

    ``ds``: the pool (its text trains the tokenizer). ``captions``: the stage-1 rows
    (default: the rows of ``ds`` whose ``task`` is ``caption_task``; none at all skips
    stage 1); a separate, larger caption set gives a stronger f_pre. ``vision_steps``:
    ShapesWorld tower pretraining steps (0: keep the random tower). ``recipe`` overrides
    :data:`~hf_vitcurate.models.recipes.TINY_PRETRAIN_RECIPE`. Returns ``{work_dir}/f_pre``
    (or ``{work_dir}/tiny`` without stage 1); a rerun reuses what exists.

    ``cache`` (default on; ``HF_VITCURATE_TINY_CACHE=0`` turns it off): the models are built
    once per identity (pool text, captions, architecture, seed, steps, recipe, code) in the
    user's cache folder (:mod:`hf_vitcurate.testing.cache`) and copied into ``work_dir``; the
    pretrained tower is cached apart and reused across pools. ``{work_dir}/tiny_model.json``
    records the identity (with the cache on or off); a ``work_dir`` holding a model of other
    inputs raises :class:`~hf_vitcurate.errors.StaleStateError`.

    >>> f_pre = train_tiny(pool, work_dir="runs/tiny", seed=0)   # doctest: +SKIP
    """
    from ..identity import ensure_same
    from .cache import cached, copy_entry, enabled, read_json, write_json

    work_dir = os.fspath(work_dir)
    if captions is None and "task" in ds.column_names:
        captions = ds.filter(lambda t: t == caption_task, input_columns="task")
    names = ["tiny", "f_pre"] if captions is not None and len(captions) else ["tiny"]
    ident = _identity(ds, captions, seed=seed, vision_steps=vision_steps, recipe=recipe)
    marker = os.path.join(work_dir, MARKER)
    if os.path.exists(os.path.join(work_dir, "tiny")) or os.path.exists(marker):
        ensure_same(read_json(marker), ident, place=f"work_dir {work_dir!r}", hint="use another work_dir or delete it")
    # Written first: a run killed before the model is complete is resumed by the same inputs only.
    os.makedirs(work_dir, exist_ok=True)
    write_json(marker, ident)
    if not enabled(cache):
        return _build(ds, captions, work_dir, seed=seed, vision_steps=vision_steps, cache=False, recipe=recipe)
    entry = cached("f_pre", ident["key"], ident, lambda folder: _build(
        ds, captions, folder, seed=seed, vision_steps=vision_steps, cache=True, recipe=recipe))
    copy_entry(entry, names, work_dir)
    return os.path.join(work_dir, names[-1])
