"""The LLaVA training loss, unreduced: negative log-likelihood of each answer token.

Training sums it over a step's tokens; loss-based scores (MLLM-Selector necessity) read
it per row. Both call :func:`token_nll` on the same batches from :func:`chat.encode`.

Example:
    >>> nll, mask = token_nll(model(**model_inputs(batch)).logits, batch["labels"])  # doctest: +SKIP
    >>> per_row = nll.sum(1); n_tokens = mask.sum(1)                                  # doctest: +SKIP
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .chat import IGNORE_INDEX, model_inputs


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL ``[batch, seq-1]`` (0 where not scored) and the mask of scored tokens.

    Token t is predicted from positions < t (logits shifted by one), in float32.
    """
    logits = logits[:, :-1].float()
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    nll = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        target.clamp_min(0).reshape(-1),
        reduction="none",
    ).view_as(target)
    return nll * mask, mask


def row_nll(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed answer NLL and answer-token count of each row of ``batch`` (no grad)."""
    with torch.inference_mode():
        logits = model(**model_inputs(batch, model)).logits
        nll, mask = token_nll(logits, batch["labels"].to(logits.device))
    return nll.sum(1), mask.sum(1)
