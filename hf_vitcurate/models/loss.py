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
    return _nll(logits[:, :-1], labels[:, 1:])


def _nll(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NLL of ``target[b, j]`` under ``logits[b, j]`` (float32), 0 where the target is ignored."""
    logits = logits.float()
    mask = target != IGNORE_INDEX
    nll = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        target.clamp_min(0).reshape(-1),
        reduction="none",
    ).view_as(target)
    return nll * mask, mask


def scored_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions whose logits predict a labelled token in some row (t - 1 for each labelled t).

    >>> scored_positions(torch.tensor([[-100, -100, 5, 6], [-100, 7, -100, -100]])).tolist()
    [0, 1, 2]
    """
    return ((labels[:, 1:] != IGNORE_INDEX).any(0)).nonzero().flatten()


def row_nll(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed answer NLL and answer-token count of each row of ``batch`` (no grad).

    Only the hidden states that predict an answer token go through the LM head: the forward
    keeps the positions scored in some row (``logits_to_keep``, which every family's forward
    takes) and a pre-hook on the head gathers each row's own scored positions out of them
    (rows of one batch have their answers at different positions, so the union alone would
    multiply the head's work by the batch size). Answers are a small share of a row, and full
    logits of a batch at a 150k-token vocabulary are tens of GB in float32.
    """
    import inspect

    labels = batch["labels"]
    inputs = model_inputs(batch, model)
    head = getattr(model, "get_output_embeddings", lambda: None)()  # a plain module has no head to hook
    with torch.inference_mode():
        if head is None or "logits_to_keep" not in inspect.signature(model.forward).parameters:
            logits = model(**inputs).logits
            nll, mask = token_nll(logits, labels.to(logits.device))
            return nll.sum(1), mask.sum(1)
        keep = scored_positions(labels)
        target = labels[:, keep + 1]  # hidden state keep[j] predicts token keep[j] + 1
        rows, cols = (target != IGNORE_INDEX).nonzero(as_tuple=True)
        if len(rows) == 0:
            zeros = torch.zeros(len(labels))
            return zeros, zeros.long()

        def gather(_module, args):
            hidden = args[0]
            return (hidden[rows.to(hidden.device), cols.to(hidden.device)].unsqueeze(0), *args[1:])

        hook = head.register_forward_pre_hook(gather)
        try:
            logits = model(**inputs, logits_to_keep=keep.to(model.device)).logits[0]  # [scored tokens, vocab]
        finally:
            hook.remove()
        nll = F.cross_entropy(logits.float(), target[rows, cols].to(logits.device), reduction="none")
        sums = torch.zeros(len(labels), dtype=nll.dtype, device=nll.device).index_add_(0, rows.to(nll.device), nll)
    return sums, (target != IGNORE_INDEX).sum(1)
