"""Model answers as a column: batched greedy generation over the sharded, resumable runner.

Each row's last ``human`` turn is answered (a final ``gpt`` turn, the reference, is not
shown to the model) with greedy decoding and the KV cache, exactly as
:mod:`hf_vitcurate.models.generate` queries a model (same prompt through
:func:`hf_vitcurate.models.chat.encode`, left padding, ``do_sample=False``). Rows are
cut into chunks by :func:`hf_vitcurate.distributed.run_sharded` (one model per process,
``accelerate launch`` shards chunks, a killed run resumes from its finished chunks);
inside a chunk rows are sorted by length and batched so padding stays small, and the
answers go back in row order. Each answer column ``C`` comes with ``C_flag``: ``""``, or
``"image_error: ..."``/``"model_error: ..."`` for a row left unanswered (null) so that
one bad row never stops the run.

Why not ``models.generate.generate_with`` itself: it shards rows over processes and
gathers the answers (a collective call), which must not run inside a runner chunk that
only one rank processes. :func:`answer_rows` is its per-process loop.

Example:
    >>> ds = generate(pool, model="runs/model_T", column="answer__T", max_new_tokens=64,
    ...               work_dir="runs/answers/T")                               # doctest: +SKIP
    >>> ds[0]["answer__T"]                                                      # doctest: +SKIP
"""

from __future__ import annotations

import os

from datasets import Dataset, Value

from .. import provenance
from ..distributed import run_sharded
from ..errors import MissingColumnError
from ..images import MAX_PIXELS, decode_rows


def answer_rows(model, processor, rows: dict[str, list], *, max_new_tokens: int, batch_size: int,
                strict: bool = True) -> tuple[list[str | None], dict[int, str]]:
    """Greedy answers of a loaded model to the last question of each row of ``rows`` (row order kept).

    Returns the answers and ``{position: "model_error: ..."}`` for rows that fail inside
    the model alone (their answer is ``None``; see :func:`hf_vitcurate.models.batching.each_batch`;
    ``strict``: raise when no row works at all).
    """
    from ..models.batching import each_batch, row_lengths, token_batches
    from ..models.generate import greedy_batch

    n = len(rows["conversations"])
    answers: list[str | None] = [None] * n

    def run(idx) -> None:
        sub = {k: [v[i] for i in idx] for k, v in rows.items()}
        for i, text in zip(idx, greedy_batch(model, processor, sub, max_new_tokens=max_new_tokens)):
            answers[int(i)] = text

    failed = each_batch(token_batches(row_lengths(rows), batch_size), run, strict=strict)
    for i in failed:
        answers[i] = None  # a batch that failed part-way may have written some answers
    return answers, failed


def flag_column(column: str) -> str:
    """The flag column of an answer column: ``answer__T`` -> ``answer__T_flag``."""
    return f"{column}_flag"


# The model kept by ``generate(..., keep_loaded=True)``: {"key": ..., "value": (model, processor)}.
_KEPT: dict = {}


def _stamp(model: str) -> tuple:
    """Path and weight-file stats: a checkpoint rewritten in place is loaded again.

    The ctime is in it because copies that put the mtime back (``cp -p``, ``rsync -t``) still
    set a new ctime, as the hash cache of :mod:`hf_vitcurate.identity` relies on too.
    """
    if not os.path.isdir(model):
        return (model,)
    files = sorted(f for f in os.listdir(model) if f.endswith((".safetensors", ".bin", ".json")))
    stats = [(f, os.stat(os.path.join(model, f))) for f in files]
    return (os.path.realpath(model), *((f, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) for f, st in stats))


def release_model() -> None:
    """Drop the model kept by ``keep_loaded=True`` (frees its memory)."""
    _KEPT.clear()


def _load(model: str, dtype, num_threads: int | None, keep: bool):
    from ..models.loading import load, set_threads

    key = (_stamp(model), str(dtype))
    if keep and _KEPT.get("key") == key:
        return _KEPT["value"]
    _KEPT.clear()  # at most one kept model: free the previous one before loading
    set_threads(num_threads)
    net, processor = load(model, dtype=dtype)
    net.eval()
    if keep:
        _KEPT.update(key=key, value=(net, processor))
    return net, processor


def generate(
    ds: Dataset,
    *,
    model: str | os.PathLike,
    work_dir: str | os.PathLike | None = None,
    restart: bool = False,
    column: str = "answer",
    max_new_tokens: int = 64,
    batch_size: int = 16,
    chunk_size: int = 512,
    dtype: str | None = "auto",
    num_threads: int | None = None,
    keep_loaded: bool = False,
    max_pixels: int | None = MAX_PIXELS,
    fingerprint: str | None = None,
) -> Dataset:
    """Add ``column``: the greedy answer of the checkpoint ``model`` to each row's last question.

    ``work_dir`` keeps finished chunks, so rerunning the same call resumes (default: a
    temporary folder, no resume); ``restart=True`` discards them. ``batch_size``: rows per
    ``generate`` call. ``num_threads``: CPU threads for torch in this process.
    ``keep_loaded=True`` keeps the model in memory after the call, so consecutive calls
    with the same checkpoint (one model answering several datasets) load it once; free it
    with :func:`release_model`. An existing ``column`` is replaced. Bad rows never stop the
    run: a row whose images do not decode (or have more than ``max_pixels`` pixels) gets a
    null answer and ``{column}_flag = "image_error: <reason>"``, a row that fails inside the
    model alone ``"model_error: <reason>"`` (``""`` for good rows); counts go to the provenance.
    ``fingerprint``: ``data_fingerprint(ds, ["images", "conversations"])`` (the columns it has)
    when the caller already has it: the rows are not hashed again to key the chunks.
    """
    if "conversations" not in ds.column_names:
        raise MissingColumnError(f"generate needs a 'conversations' column (columns: {ds.column_names})")
    from ..identity import model_fingerprint
    from .flags import flag_counts, scatter

    path = os.fspath(model)
    flag = flag_column(column)
    loaded: list = []
    worked = [False]  # has the model answered a row in this process? Until then, no row working is fatal.

    def compute(rows: dict[str, list]) -> dict[str, list]:
        n = len(rows["conversations"])
        good, kept, bad = decode_rows(rows, max_pixels=max_pixels)
        answers: list = []
        failed: dict[int, str] = {}
        if good:
            if not loaded:  # one model per process, loaded on first use (not for fully resumed runs)
                loaded.extend(_load(path, dtype, num_threads, keep_loaded))
            answers, failed = answer_rows(*loaded, kept, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                          strict=not worked[0])
            worked[0] = worked[0] or len(failed) < len(good)
        flags = [failed.get(j, "") for j in range(len(good))]
        return {column: scatter(n, good, answers, {}), flag: scatter(n, good, flags, bad)}

    params = {"model": model_fingerprint(path), "column": column, "max_new_tokens": max_new_tokens,
              "decoding": "greedy", "max_pixels": max_pixels}
    # None: a temporary folder that all processes share (distributed.shared_temp_dir).
    work = os.fspath(work_dir) if work_dir is not None else None
    out = run_sharded(
        ds, compute, work, chunk_size=chunk_size, features={column: Value("string"), flag: Value("string")},
        params=params, input_columns=[c for c in ("images", "conversations") if c in ds.column_names],
        desc=f"generate {column}", restart=restart, decode=False, fingerprint=fingerprint,
    )
    return provenance.record(out, "generate", kind="stage", rows_in=len(ds),
                             params={**params, "batch_size": batch_size, "flags": flag_counts(out, flag)},
                             model=path, parent=ds)
