"""MLLM-Selector's ``necessity`` column: the seed model's loss on each row (docs/methods.md).

MLLM-Selector: "MLLM-Selector: Necessity and Diversity-driven High-Value Data Selection for
Enhanced Visual Instruction Tuning" (arXiv:2503.20502).

For every ``gpt`` token t of a row, conditioned on the images and all earlier tokens
(the LLaVA training loss, unreduced)::

    nll(row)  = - sum_t log p(R_t | V, T, R_<t)
    necessity = nll(row)                       reduction="sum"  (default)
              = nll(row) / n_response_tokens   reduction="mean"

Eq. 3 of the paper prints the log-likelihood (= -nll) while its text says a higher
score means a harder, more necessary row; the default follows the text (higher =
higher loss) and ``sign="loglik"`` gives Eq. 3 literally. ``necessity_tokens`` holds the
number of scored tokens. Text-only rows are scored without images.

Rows are scored in chunks by :func:`hf_vitcurate.distributed.run_sharded` (one model per
process, resumable, same columns with 1 or N processes); inside a chunk rows are sorted
by length and cut into batches so padding stays small, then restored to row order.
A row longer than ``max_length`` tokens is truncated (its answer tokens past the limit are
not scored) and flagged ``truncated`` in ``necessity_flag``; a row with no answer token
left gets ``necessity = NaN`` and the flag ``no_response_tokens`` (selections refuse NaN
scores and name the row, so such rows must be split off explicitly:
``stages.reject(scored, where="necessity_flag", values=["no_response_tokens"])``, as
:func:`hf_vitcurate.select.mllm_selector` does before NBGS).

Example:
    >>> scored = necessity(pool, model="runs/f_seed", batch_size=16, work_dir="runs/necessity")  # doctest: +SKIP
    >>> scored.sort("necessity", reverse=True)[0]["id"]                                         # doctest: +SKIP
"""

from __future__ import annotations

import math
import os

import numpy as np
from datasets import Dataset, Value

from .. import provenance
from ..distributed import run_sharded

FEATURES = {"necessity": Value("float64"), "necessity_tokens": Value("int32"), "necessity_flag": Value("string")}


def text_length(rows: dict[str, list]) -> np.ndarray:
    """Rough length of each row (characters of all turns + 100 per image) for bucketing."""
    n_img = [len(v or []) for v in rows.get("images", [[]] * len(rows["conversations"]))]
    return np.array([sum(len(t["value"] or "") for t in c) + 100 * k for c, k in zip(rows["conversations"], n_img)])


def length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row positions grouped into batches of similar length (longest first)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def score_rows(model, processor, rows: dict[str, list], *, batch_size: int, max_length: int | None) -> dict[str, list]:
    """Summed answer NLL, answer-token count and flag of every row of ``rows`` (row order kept)."""
    from ..models.chat import encode
    from ..models.loss import row_nll

    n = len(rows["conversations"])
    nll = np.zeros(n)
    tokens = np.zeros(n, dtype=np.int64)
    truncated = np.zeros(n, dtype=bool)
    for idx in length_batches(text_length(rows), batch_size):
        sub = {k: [v[i] for i in idx] for k, v in rows.items()}
        full = encode(processor, sub)
        batch = full
        if max_length is not None and full["input_ids"].shape[1] > max_length:
            batch = encode(processor, sub, max_length=max_length)
            truncated[idx] = (full["labels"][:, max_length:] != -100).any(1).numpy()
        s, t = row_nll(model, batch)
        nll[idx] = s.double().cpu().numpy()
        tokens[idx] = t.cpu().numpy()
    flags = np.where(tokens == 0, "no_response_tokens", np.where(truncated, "truncated", ""))
    return {"nll": nll.tolist(), "tokens": tokens.tolist(), "flag": flags.tolist()}


def necessity(
    ds: Dataset,
    *,
    model: str | os.PathLike,
    work_dir: str | os.PathLike | None = None,
    restart: bool = False,
    reduction: str = "sum",
    sign: str = "nll",
    batch_size: int = 16,
    max_length: int | None = 2048,
    chunk_size: int = 512,
    dtype: str = "auto",
) -> Dataset:
    """Add ``necessity``, ``necessity_tokens`` and ``necessity_flag`` (see module docstring).

    ``model``: the seed checkpoint (folder or Hub id). ``work_dir`` keeps the finished
    chunks so a killed run resumes (default: a temporary folder, no resume); ``restart=True``
    discards them. ``batch_size``: rows per forward pass; ``chunk_size``: rows per resumable
    chunk. Under ``accelerate launch`` each process scores its chunks.
    ``dtype``: weights dtype (``"auto"``: the checkpoint's, bf16 on GPUs); ``"bfloat16"``
    also pays on CPUs with AVX512-BF16/AMX (benchmarks/RESULTS.md); losses are summed in
    float32 either way.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if sign not in ("nll", "loglik"):
        raise ValueError(f"sign must be 'nll' or 'loglik', got {sign!r}")
    from ..models.loading import load

    loaded: list = []

    def compute(rows: dict[str, list]) -> dict[str, list]:
        if not loaded:  # one model per process, loaded on first use
            net, processor = load(model, dtype=dtype)
            net.eval()
            loaded.extend([net, processor])
        out = score_rows(*loaded, rows, batch_size=batch_size, max_length=max_length)
        values = []
        for s, t in zip(out["nll"], out["tokens"]):
            v = (s / t if reduction == "mean" else s) if t else math.nan
            values.append(-v if sign == "loglik" else v)
        return {"necessity": values, "necessity_tokens": out["tokens"], "necessity_flag": out["flag"]}

    params = {"model": os.fspath(model), "reduction": reduction, "sign": sign, "max_length": max_length,
              "dtype": str(dtype)}
    # None: a temporary folder that all processes share (distributed.shared_temp_dir).
    work = os.fspath(work_dir) if work_dir is not None else None
    scored = run_sharded(
        ds, compute, work, chunk_size=chunk_size, features=FEATURES, params=params,
        input_columns=[c for c in ("images", "conversations") if c in ds.column_names],
        desc="necessity", restart=restart,
    )
    flags = [f for f in scored.with_format("arrow")["necessity_flag"].to_pylist() if f]
    counts = {f: flags.count(f) for f in set(flags)}
    return provenance.record(
        scored, "necessity", kind="stage", rows_in=len(ds), params={**params, "batch_size": batch_size, "flags": counts},
        model=os.fspath(model), parent=ds,
    )

