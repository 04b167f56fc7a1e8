"""One round of backend calls of the data engine, as a ``datasets.map`` (or resumable chunks across processes).

Every step of the engine (captions, questions, multi-round questions) sends its calls in
rounds: attempt 0 is greedy, each later attempt re-sends the calls still broken, sampled
at the engine's ``retry_temperature``. :func:`call_round` sends one round and records
every response in the engine's ledger; where it runs (one process, or chunks split across
the processes of ``accelerate launch`` and kept in ``work_dir``) is decided here, apart
from what the steps compute.

Example:
    >>> from datasets import Dataset
    >>> from hf_vitcurate.engine import Engine, EchoBackend, Request
    >>> engine = Engine(EchoBackend())
    >>> calls = Dataset.from_dict({"id": ["c1"], "prompt": ["<Q1> Is it red? </Q1> <A1> Yes </A1>"]})
    >>> call_round(engine, calls, "questions", 0, engine.backend, lambda row: Request(row["prompt"]))[0]["text"]
    '<Q1> Is it red? </Q1> <A1> Yes </A1>'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from datasets import Dataset, Features, Value

from ..columns import list_column
from .request import Backend, Request, Response
from .rows import fingerprint

if TYPE_CHECKING:
    from .engine import Engine

RESPONSE_FEATURES = Features({"_text": Value("string"), "_error": Value("string"), "_error_detail": Value("string"),
                              "_prompt_tokens": Value("int64"), "_completion_tokens": Value("int64"), "_cost_usd": Value("float64")})
_FIELDS = ("text", "error", "error_detail", "prompt_tokens", "completion_tokens", "cost_usd")


def call_round(
    engine: Engine,
    ds: Dataset,
    step: str,
    attempt: int,
    backend: Backend,
    make_request: Callable[[dict[str, Any]], Request],
) -> list[dict[str, Any]]:
    """Send one request per row of ``ds`` (``make_request(row)``); responses (as dicts) in row order.

    Each response's cost is recorded in ``engine.ledger`` under ``step`` and the row's ``id``.
    """
    temperature = 0.0 if attempt == 0 else engine.retry_temperature

    def run(batch) -> dict[str, list]:
        rows = batch.to_pylist()  # images stay undecoded ({"bytes", "path"}): the backend decodes, and flags what fails
        reqs = []
        for row in rows:
            r = make_request(row)
            r.attempt, r.temperature, r.meta = attempt, temperature, {"call": row["id"], "step": step}
            reqs.append(r)
        resps: list[Response] = backend.generate(reqs)
        costs = [engine.ledger.add(step, row["id"], resp, attempt) for row, resp in zip(rows, resps)]
        return {"_text": [r.text for r in resps], "_error": [r.error for r in resps],
                "_error_detail": [r.error_detail for r in resps], "_prompt_tokens": [r.prompt_tokens for r in resps],
                "_completion_tokens": [r.completion_tokens for r in resps], "_cost_usd": costs}

    desc = f"{step} (attempt {attempt + 1})"
    # Arrow batches: ``datasets`` would decode every image before ``run`` sees the batch, and one
    # truncated file would end the whole round there; undecoded, it is one request's image_error.
    ds = ds.with_format("arrow")
    if engine.work_dir:
        from ..distributed import run_sharded

        # A round's chunks are keyed by its inputs, settings and the backend's identity (a changed
        # checkpoint or server is another run): a rerun skips the finished ones; chunks left by
        # another run are replaced (the request cache keeps what they paid for).
        identity = getattr(backend, "identity", backend.model)  # a Backend (Protocol) may not be a CachedBackend
        out = run_sharded(ds, run, os.path.join(engine.work_dir, f"{step}-attempt{attempt + 1}"), chunk_size=engine.batch_size,
                          features=RESPONSE_FEATURES,
                          params={**engine.params(), "step": step, "attempt": attempt, "identity": identity},
                          desc=desc, replace_other_run=True)
    else:
        out = ds.map(run, batched=True, batch_size=engine.batch_size, desc=desc,
                     new_fingerprint=fingerprint(ds, f"{step}:{attempt}", engine.params()), load_from_cache_file=False)
    cols = {k: list_column(out, "_" + k) for k in _FIELDS}
    return [{k: cols[k][i] for k in cols} for i in range(len(out))]


__all__ = ["RESPONSE_FEATURES", "call_round"]
