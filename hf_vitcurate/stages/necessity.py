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
by their true token length and cut into batches (``batch_size`` rows, ``max_batch_tokens``
padded positions) so padding stays small, then restored to row order.
A row longer than ``max_length`` tokens is truncated (its answer tokens past the limit are
not scored) and flagged ``truncated`` in ``necessity_flag``; a row with no answer token
left gets ``necessity = NaN`` and the flag ``no_response_tokens`` (selections refuse NaN
scores and name the row, so such rows must be split off explicitly:
``stages.reject(scored, where="necessity_flag", values=["no_response_tokens"])``, as
:func:`hf_vitcurate.select.mllm_selector` does before NBGS). Bad rows never stop a run: a row
whose images do not decode gets ``necessity = None`` and ``image_error: <reason>``, a row
that fails inside the model alone ``model_error: <reason>`` (:func:`unscored_flags` lists
the flags of every unscored row).

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
from ..errors import ConfigError
from ..images import MAX_PIXELS, decode_rows
from .flags import flag_counts, scatter

FEATURES = {"necessity": Value("float64"), "necessity_tokens": Value("int32"), "necessity_flag": Value("string")}


def token_lengths(processor, rows: dict[str, list], *, max_length: int | None = None) -> np.ndarray:
    """True token length of each row after encoding (image tokens included, capped at ``max_length``).

    Each row is encoded alone: 5-15 ms a row on a loaded CPU, 1-11% of its forward pass at
    512 x 4, and 18-21% of the scoring time on an H200 (benchmarks/RESULTS.md); but exact,
    where characters + 100 per image (:func:`~hf_vitcurate.models.batching.row_lengths`) miss
    each family's image tokens. A row that fails to encode gets length 0; its batch then fails
    and the row is flagged alone (``each_batch``).
    """
    from ..models.chat import encode

    out = np.zeros(len(rows["conversations"]), dtype=np.int64)
    for i in range(len(out)):
        try:
            out[i] = encode(processor, {k: [v[i]] for k, v in rows.items()})["input_ids"].shape[1]
        except Exception:  # noqa: BLE001 - flagged later, when its batch is scored
            continue
    return np.minimum(out, max_length) if max_length is not None else out


def plan_batches(processor, rows: dict[str, list], *, batch_size: int, max_batch_tokens: int | None = None,
                 max_length: int | None = None) -> list[np.ndarray]:
    """The scoring batches of ``rows``: positions sorted by true token length, at most ``batch_size``
    rows and ``max_batch_tokens`` padded positions each (:func:`~hf_vitcurate.models.batching.token_batches`)."""
    from ..models.batching import token_batches

    lengths = token_lengths(processor, rows, max_length=max_length)
    return token_batches(lengths, batch_size, max_batch_tokens=max_batch_tokens)


def score_rows(model, processor, rows: dict[str, list], *, batch_size: int, max_length: int | None,
               strict: bool = True, max_batch_tokens: int | None = None, ahead: bool | None = None
               ) -> dict[str, list]:
    """Summed answer NLL, answer-token count and flag of every row of ``rows`` (row order kept).

    A row that fails inside the model alone (retried alone when its batch fails, see
    :func:`hf_vitcurate.models.batching.each_batch`) gets ``None`` values and the flag
    ``"model_error: ..."``; the other rows of its batch are scored as usual. ``strict``:
    raise when no row works at all (see ``each_batch``). ``ahead``: encode the next batch
    while the model runs this one (:func:`~hf_vitcurate.models.batching.ahead`; None: where
    the model is not on the CPU).
    """
    from ..models.batching import ahead as encoded_ahead
    from ..models.batching import each_batch
    from ..models.chat import encode
    from ..models.loss import row_nll

    n = len(rows["conversations"])
    nll = np.zeros(n)
    tokens = np.zeros(n, dtype=np.int64)
    truncated = np.zeros(n, dtype=bool)

    def make(idx: np.ndarray) -> tuple[dict, dict | None]:
        """The batch as encoded, and cut to ``max_length`` where it is longer (else None)."""
        sub = {k: [v[i] for i in idx] for k, v in rows.items()}
        full = encode(processor, sub)
        if max_length is not None and full["input_ids"].shape[1] > max_length:
            return full, encode(processor, sub, max_length=max_length)
        return full, None

    def run(idx: np.ndarray) -> None:
        full, cut = get(idx)
        if cut is not None:
            truncated[idx] = (full["labels"][:, max_length:] != -100).any(1).numpy()
        s, t = row_nll(model, full if cut is None else cut)
        nll[idx] = s.double().cpu().numpy()
        tokens[idx] = t.cpu().numpy()

    batches = plan_batches(processor, rows, batch_size=batch_size, max_batch_tokens=max_batch_tokens, max_length=max_length)
    if ahead is None:
        ahead = str(getattr(model, "device", "cpu")).split(":")[0] != "cpu"
    with encoded_ahead(batches, make, enabled=ahead) as get:
        failed = each_batch(batches, run, strict=strict)
    flags = np.where(tokens == 0, "no_response_tokens", np.where(truncated, "truncated", "")).tolist()
    out = {"nll": nll.tolist(), "tokens": tokens.tolist(), "flag": flags}
    for i, reason in failed.items():
        out["nll"][i], out["tokens"][i], out["flag"][i] = None, None, reason
    return out


def unscored_flags(ds: Dataset) -> list[str]:
    """The distinct ``necessity_flag`` values of rows without a score (``no_response_tokens``,
    ``image_error: ...``, ``model_error: ...``): what a selection must set aside first,
    ``stages.reject(ds, where="necessity_flag", values=unscored_flags(ds))``.

    >>> unscored_flags(Dataset.from_dict({"necessity": [1.0, None, float("nan"), 2.0],
    ...     "necessity_flag": ["", "image_error: missing file", "no_response_tokens", "truncated"]}))
    ['image_error: missing file', 'no_response_tokens']
    """
    table = ds.with_format("arrow").select_columns(["necessity", "necessity_flag"])[:]
    values = table.column("necessity").to_pylist()
    flags = table.column("necessity_flag").to_pylist()
    return sorted({f for v, f in zip(values, flags) if f and (v is None or math.isnan(v))})


def necessity(
    ds: Dataset,
    *,
    model: str | os.PathLike,
    work_dir: str | os.PathLike | None = None,
    restart: bool = False,
    reduction: str = "sum",
    sign: str = "nll",
    batch_size: int = 16,
    max_batch_tokens: int | None = None,
    max_length: int | None = 2048,
    chunk_size: int = 512,
    dtype: str = "auto",
    max_pixels: int | None = MAX_PIXELS,
) -> Dataset:
    """Add ``necessity``, ``necessity_tokens`` and ``necessity_flag`` (see module docstring).

    ``model``: the seed checkpoint (folder or Hub id). ``work_dir`` keeps the finished
    chunks so a killed run resumes (default: a temporary folder, no resume); ``restart=True``
    discards them. ``batch_size``: rows per forward pass; ``max_batch_tokens``: also at most
    this many padded token positions per pass (rows are sorted by their true token length,
    so short rows share larger batches; None: rows only); ``chunk_size``: rows per resumable
    chunk. Under ``accelerate launch`` each process scores its chunks.
    ``dtype``: weights dtype (``"auto"``: the checkpoint's, bf16 on GPUs, float32 on CPUs without AVX512-BF16/AMX); ``"bfloat16"``
    also pays on CPUs with AVX512-BF16/AMX (benchmarks/RESULTS.md); losses are summed in
    float32 either way. A row whose images do not decode (truncated, corrupt, missing,
    more than ``max_pixels`` pixels, a decompression bomb) gets a null score and
    ``necessity_flag = "image_error: <reason>"``, a row that fails inside the model alone
    ``"model_error: <reason>"``; the run goes on and the flags are counted in the provenance.
    Chunks are keyed by the model's content (:func:`hf_vitcurate.identity.model_fingerprint`),
    not its path: a checkpoint rewritten in place never reuses old scores.
    """
    if reduction not in ("sum", "mean"):
        raise ConfigError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if sign not in ("nll", "loglik"):
        raise ConfigError(f"sign must be 'nll' or 'loglik', got {sign!r}")
    for name, value in (("batch_size", batch_size), ("max_batch_tokens", max_batch_tokens)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
    from ..identity import model_fingerprint
    from ..models.loading import load

    loaded: list = []
    worked = [False]  # has the model scored a row in this process? Until then, no row working is fatal.

    def compute(rows: dict[str, list]) -> dict[str, list]:
        n = len(rows["conversations"])
        good, kept, bad = decode_rows(rows, max_pixels=max_pixels)
        values: list = []
        out: dict[str, list] = {"tokens": [], "flag": []}
        if good:
            if not loaded:  # one model per process, loaded on first use
                net, processor = load(model, dtype=dtype)
                net.eval()
                loaded.extend([net, processor])
            out = score_rows(*loaded, kept, batch_size=batch_size, max_length=max_length, strict=not worked[0],
                             max_batch_tokens=max_batch_tokens)
            worked[0] = worked[0] or any(t is not None for t in out["tokens"])
            for s, t in zip(out["nll"], out["tokens"]):
                v = None if t is None else (s / t if reduction == "mean" else s) if t else math.nan
                values.append(-v if sign == "loglik" and v is not None else v)
        return {"necessity": scatter(n, good, values, {}), "necessity_tokens": scatter(n, good, out["tokens"], {}),
                "necessity_flag": scatter(n, good, out["flag"], bad)}

    params = {"model": model_fingerprint(model), "reduction": reduction, "sign": sign, "max_length": max_length,
              "dtype": str(dtype), "max_pixels": max_pixels}
    # None: a temporary folder that all processes share (distributed.shared_temp_dir).
    work = os.fspath(work_dir) if work_dir is not None else None
    scored = run_sharded(
        ds, compute, work, chunk_size=chunk_size, features=FEATURES, params=params,
        input_columns=[c for c in ("images", "conversations") if c in ds.column_names],
        desc="necessity", restart=restart, decode=False,
    )
    counts = flag_counts(scored, "necessity_flag")
    batching = {"batch_size": batch_size, "max_batch_tokens": max_batch_tokens}
    return provenance.record(
        scored, "necessity", kind="stage", rows_in=len(ds), params={**params, **batching, "flags": counts},
        model=os.fspath(model), parent=ds,
    )

