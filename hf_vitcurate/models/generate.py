"""Batched greedy answers of any image-text checkpoint to the last question of each row.

Rows are sorted by length, cut into batches (left padding, KV cache, greedy decoding under
``torch.inference_mode``) and the answers come back in row order. Under
``accelerate launch`` each process answers its share and every process gets all answers.

Example:
    >>> answers = generate_answers(benchmark, model="runs/ft", max_new_tokens=16)   # doctest: +SKIP
"""

from __future__ import annotations

import os

import numpy as np
import torch


def greedy_batch(model, processor, rows: dict[str, list], *, max_new_tokens: int) -> list[str]:
    """Greedy answers (KV cache, left padding) to the last question of each row of one batch.

    The one place generation happens: :func:`generate_with` and the sharded
    ``stages.generate`` both call it.
    """
    from .chat import encode, model_inputs

    tokenizer = processor.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        inputs = model_inputs(encode(processor, rows, generation=True), model)
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             use_cache=True, pad_token_id=pad_id)
    texts = tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return [t.strip() for t in texts]


def generate_with(
    model,
    processor,
    dataset,
    *,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    progress: bool = True,
) -> list[str]:
    """Answers of a loaded ``model``/``processor`` to the last ``human`` turn of each row.

    A final ``gpt`` turn, if present (a reference answer), is ignored.
    """
    from accelerate.utils import gather_object
    from ..progress import progress as progress_bar

    from ..distributed import state as distributed_state
    from .batching import row_lengths

    data = dataset.select_columns([c for c in ("images", "conversations") if c in dataset.column_names])
    state = distributed_state()
    # Longest first: similar lengths share a batch (little padding), and memory peaks early.
    order = np.argsort(-row_lengths(data), kind="stable")
    mine = order[state.process_index :: state.num_processes]
    was_training = model.training
    model.eval()
    answers: dict[int, str] = {}
    batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
    for idx in progress_bar(batches, desc="generate", enabled=progress and state.is_main_process):
        texts = greedy_batch(model, processor, data[idx.tolist()], max_new_tokens=max_new_tokens)
        answers.update({int(i): t for i, t in zip(idx, texts)})
    model.train(was_training)
    if state.num_processes > 1:
        merged: dict[int, str] = {}
        for part in gather_object([answers]):
            merged.update(part)
        answers = merged
    return [answers[i] for i in range(len(data))]


def generate_answers(
    ds,
    *,
    model: str | os.PathLike,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    dtype: str | None = "auto",
    device: str | None = None,
    num_threads: int | str | None = None,
    progress: bool = True,
) -> list[str]:
    """Load the checkpoint ``model`` and answer the last question of each row of ``ds``.

    ``batch_size``: rows per ``generate`` call.

    >>> generate_answers(ds, model="ckpt/tiny", max_new_tokens=8, batch_size=16)   # doctest: +SKIP
    ['red', 'Yes', ...]
    """
    from .loading import load, using_threads

    with using_threads(num_threads):
        loaded, processor = load(model, dtype=dtype, device=device)
        return generate_with(
            loaded, processor, ds, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress
        )
