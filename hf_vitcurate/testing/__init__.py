"""What tests, examples and the demo need: tiny checkpoints that train in seconds on a CPU.

A tiny checkpoint is a real Hugging Face checkpoint (``LlavaForConditionalGeneration``,
a few million parameters, a tokenizer trained locally) that everything in the package
loads through the Auto classes, like any Hub model; nothing downstream knows it is tiny.

- :mod:`.tiny`: :func:`tiny_checkpoint`, :func:`train_tokenizer`, :class:`TinyArchitecture`
  (LLaVA: a CLIP tower, a two-layer projector, a Llama language model);
- :mod:`.vision`: :func:`pretrain_vision_tower`, the local stand-in for CLIP;
- :mod:`.recipes`: :func:`tiny_recipe`, :func:`tiny_pretrain_recipe`, :func:`train_tiny`;
- :mod:`.cache`: where :func:`train_tiny` keeps what it builds (the user's cache folder,
  one entry per identity; ``cache=False`` or ``HF_VITCURATE_TINY_CACHE=0`` turns it off);
- :mod:`.toy`: :func:`toy_dataset`, a hand-made canonical dataset, and
  :data:`TOY_ARCHITECTURE`, a smaller architecture for unit tests.

- :mod:`.families`: :func:`tiny_family_checkpoint` and :data:`FAMILIES`, tiny random
  checkpoints of every supported VLM family (Qwen2-VL, Gemma 3, Idefics3, InternVL, ...)
  with the real model and processor classes and their published chat templates.

Example:
    >>> from hf_vitcurate.testing import tiny_checkpoint, toy_dataset, tiny_recipe
    >>> ds = toy_dataset(8)
    >>> path = tiny_checkpoint(ds, output_dir="ckpt/tiny")                  # doctest: +SKIP
    >>> train(ds, model=path, output_dir="runs/ft", **tiny_recipe())       # doctest: +SKIP
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "tiny_checkpoint": "tiny",
    "train_tokenizer": "tiny",
    "TinyArchitecture": "tiny",
    "TINY_ARCHITECTURE": "tiny",
    "pretrain_vision_tower": "vision",
    "tiny_recipe": "recipes",
    "tiny_pretrain_recipe": "recipes",
    "train_tiny": "recipes",
    "toy_dataset": "toy",
    "TOY_ARCHITECTURE": "toy",
    "tiny_family_checkpoint": "families",
    "FAMILIES": "families",
}

# Lazy: importing the package stays cheap (no torch until a name is used).
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
