"""Models without downloads: load any image-text checkpoint, build tiny ones, train, generate.

Public names (imported lazily: ``import hf_vitcurate.models`` does not import torch):

- :func:`tiny_checkpoint` - build and save a tiny LLaVA checkpoint (tokenizer trained locally);
- :func:`load`, :func:`load_model`, :func:`load_processor` - Auto classes, any checkpoint;
- :func:`encode` - canonical rows -> model inputs with labels on ``gpt`` tokens only;
- :func:`token_nll`, :func:`row_nll` - the unreduced LLaVA loss (training, necessity);
- :func:`train`, :func:`pretrain` - the LLaVA recipe, Accelerate-ready, resumable;
- :func:`generate_answers`, :func:`generate_with` - batched greedy answers;
- :data:`TINY_RECIPE`, :func:`tiny_recipe`, :func:`tiny_pretrain_recipe` - the CPU-tuned recipes.

Example:
    >>> from hf_vitcurate.models import tiny_checkpoint, train, generate_answers, tiny_recipe
    >>> base = tiny_checkpoint("ckpt/tiny", pool)                          # doctest: +SKIP
    >>> ft = train(base, pool, "runs/ft", **tiny_recipe())                 # doctest: +SKIP
    >>> generate_answers(ft, benchmark, max_new_tokens=16)[:2]             # doctest: +SKIP
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "tiny_checkpoint": "tiny",
    "train_tokenizer": "tiny",
    "TinyArchitecture": "tiny",
    "TINY_ARCHITECTURE": "tiny",
    "load": "loading",
    "load_model": "loading",
    "load_processor": "loading",
    "encode": "chat",
    "to_messages": "chat",
    "model_inputs": "chat",
    "token_nll": "loss",
    "row_nll": "loss",
    "train": "training",
    "pretrain": "training",
    "Recipe": "training",
    "generate_answers": "generate",
    "generate_with": "generate",
    "TINY_RECIPE": "recipes",
    "TINY_PRETRAIN_RECIPE": "recipes",
    "tiny_recipe": "recipes",
    "tiny_pretrain_recipe": "recipes",
    "train_tiny": "recipes",
}

# Lazy: importing the package stays cheap (no torch until a name is used).
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
