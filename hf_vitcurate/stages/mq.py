"""The ``mq__{model}`` column: MQ^S of a model's answer against the row's reference (REVO-LION, arXiv:2310.06594).

REVO-LION: *On the Evaluation and Refinement of Vision-Language Instruction Tuning Datasets*; the
formula and its variants are in docs/methods.md.

The reference is the row's last ``gpt`` turn (the answer to the last question, which is
what :func:`hf_vitcurate.stages.generate` answers). MQ is computed by
:func:`hf_vitcurate.metrics.mq_scores` (variant C1 by default); with
``components=True`` the six component scores are kept too, as
``mq__{model}__bleu_1`` ... ``mq__{model}__rouge_l``.

``model_name`` names the column: by default the answer column's suffix (``answer__llava_conv``
→ ``mq__llava_conv``), so the tune-cross-evaluation's columns read "MQ of the model
tuned on T".

Example:
    >>> from datasets import Dataset
    >>> conv = [{"from": "human", "value": "What color is it?"}, {"from": "gpt", "value": "It is red."}]
    >>> ds = Dataset.from_dict({"conversations": [conv], "answer__T": ["It is red."]})
    >>> round(mq(ds, answer_column="answer__T")["mq__T"][0], 4)   # B@1-3 = 1, B@4 = 0.0316 (3 tokens), METEOR 0.9815, ROUGE-L 1
    0.8355
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Value

from .. import provenance
from ..errors import MissingColumnError
from ..metrics.mq import COMPONENTS, check_variant, default_scorer
from ._arrow import map_arrow, turns

ANSWER_PREFIX = "answer__"
MQ_PREFIX = "mq__"


def last_answers(table: pa.Table) -> pa.Array:
    """The last ``gpt`` turn of each row of an Arrow batch (``""`` when a row has none)."""
    values, roles, turn_row, _ = turns(table)
    gpt = np.flatnonzero(np.asarray(pc.equal(roles, "gpt"), dtype=bool))
    out = np.full(table.num_rows, -1, dtype=np.int64)
    out[turn_row[gpt]] = gpt  # turns are in order: the last write per row wins
    return pc.fill_null(values.take(pa.array(out, mask=out < 0)), "")


def model_name_of(answer_column: str) -> str:
    """``answer__T`` → ``T``; any other column name is its own model name."""
    return answer_column[len(ANSWER_PREFIX):] if answer_column.startswith(ANSWER_PREFIX) else answer_column


def mq(
    ds: Dataset,
    *,
    answer_column: str = "answer",
    model_name: str | None = None,
    variant: str = "C1",
    components: bool = False,
    map_batch_size: int = 10_000,
    num_proc: int | None = None,
) -> Dataset:
    """Add ``mq__{model}`` (float64): MQ^S of ``answer_column`` against the last ``gpt`` turn.

    ``num_proc`` scores batches in several processes (each loads WordNet once). A null
    answer (a row :func:`~hf_vitcurate.stages.generate` flagged and left unanswered) scores
    as the empty answer (REVO-LION's MQ^D averages every row, so a missing answer counts as
    a wrong one); their number is in the provenance (``flags: {"unanswered": n}``).
    """
    check_variant(variant)
    if answer_column not in ds.column_names:
        raise MissingColumnError(f"answer column {answer_column!r} not in dataset (columns: {ds.column_names}); run generate first")
    name = MQ_PREFIX + (model_name or model_name_of(answer_column))
    new = {name: Value("float64")}
    if components:
        new.update({f"{name}__{c}": Value("float64") for c in COMPONENTS})

    def fn(table: pa.Table) -> dict[str, pa.Array]:
        answers = pc.fill_null(table.column(answer_column), "").to_pylist()
        refs = last_answers(table).to_pylist()
        scores = default_scorer().scores(answers, refs, variant=variant)
        out = {name: pa.array(scores["mq"], pa.float64())}
        if components:
            out.update({f"{name}__{c}": pa.array(scores[c], pa.float64()) for c in COMPONENTS})
        return out

    params = {"answer_column": answer_column, "column": name, "variant": variant.upper(), "reference": "last gpt turn"}
    out = map_arrow(ds, fn, new, batch_size=map_batch_size, num_proc=num_proc, desc=f"mq {name}",
                    fingerprint_params={**params, "components": components})
    nulls = ds.with_format("arrow")[answer_column].null_count
    return provenance.record(out, "mq", kind="stage", rows_in=len(ds),
                             params={**params, "flags": {"unanswered": nulls} if nulls else {}}, parent=ds)
