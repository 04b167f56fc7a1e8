"""Models: load any image-text checkpoint, train it with the LLaVA recipe, generate answers.

Public names (imported lazily: ``import hf_vitcurate.models`` does not import torch):

- :func:`load`, :func:`load_model`, :func:`load_processor` - Auto classes, any checkpoint;
- :func:`encode` - canonical rows -> model inputs with labels on ``gpt`` tokens only;
- :func:`token_nll`, :func:`row_nll` - the unreduced LLaVA loss (training, necessity);
- :func:`train`, :func:`pretrain` - the LLaVA recipe, Accelerate-ready, resumable;
- :func:`generate_answers`, :func:`generate_with` - batched greedy answers;
- :func:`recipe_preset` - the named recipes (``llava``, ``llava-pretrain``, ``tiny``, ``tiny-pretrain``).

Tiny checkpoints to try all of it on a CPU are in :mod:`hf_vitcurate.testing`.

Example:
    >>> from hf_vitcurate.models import train, generate_answers, recipe_preset
    >>> ft = train(pool, model="llava-hf/llava-1.5-7b-hf", output_dir="runs/ft")   # doctest: +SKIP
    >>> generate_answers(benchmark, model=ft, max_new_tokens=16)[:2]                # doctest: +SKIP
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
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
    "recipe_preset": "recipes",
    "PRESETS": "recipes",
}

# Lazy: importing the package stays cheap (no torch until a name is used).
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
