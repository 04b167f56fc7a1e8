"""``explode_turns``: multi-turn rows to single-turn (image, instruction, answer) rows.

Row ``x`` with k human/gpt pairs becomes rows ``x#t0``, ``x#t1``, ... (k counts from 0,
in turn order: REVO-LION's unit). Every new row keeps the row's images and its other
columns, and gets ``parent_id`` and ``turn`` (the pair index). ``<image>`` placeholders:
a pair whose question already holds one placeholder per image keeps its text as is
(LLaVA's first turn); any other question has its placeholders removed and, when the
row has images, one ``<image>\\n`` per image put in front, so each new row validates.
Runs on Arrow batches (no Python loop over rows; images are never decoded).

Example:
    >>> from datasets import Dataset
    >>> from hf_vitcurate.schema import FEATURES
    >>> turns = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
    ...          {"from": "human", "value": "Why?"}, {"from": "gpt", "value": "Because."}]
    >>> ds = Dataset.from_dict({"id": ["a"], "images": [[]], "conversations": [turns],
    ...                         "source": ["s"], "task": ["t"]}, features=FEATURES)
    >>> list(explode_turns(ds)["id"])
    ['a#t0', 'a#t1']
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Features, Value

from .. import provenance
from ..errors import ValidationError
from ..schema import CORE_COLUMNS, IMAGE_TOKEN


TURN_ID = re.compile(r"#t\d+$")  # the "#t{k}" suffix explode_turns gives each turn's id


def row_id(turn_id: str) -> str:
    """The id of the row a turn came from (other ids are returned as they are).

    >>> row_id("a#t1"), row_id("a")
    ('a', 'a')
    """
    return TURN_ID.sub("", turn_id)


def explode_turns(ds: Dataset, *, map_batch_size: int = 10_000) -> Dataset:
    """One row per human/gpt pair, ids ``"{id}#t{k}"`` with k from 0 (see module doc).

    Rows must be validated pairs (human first, alternating, ending with gpt); a row
    that is not raises :class:`~hf_vitcurate.ValidationError` naming it, since its
    turns could not be split without dropping one.
    """
    missing = [c for c in CORE_COLUMNS if c not in ds.column_names]
    if missing:
        raise ValidationError(None, missing[0], "column missing; explode_turns needs the canonical schema", code="missing_column")
    features = Features({k: v for k, v in ds.features.items() if k not in ("parent_id", "turn")})
    features["parent_id"] = Value("string")
    features["turn"] = Value("int32")
    out = ds.with_format("arrow").map(
        _explode_batch,
        batched=True,
        batch_size=map_batch_size,
        remove_columns=ds.column_names,
        features=features,
        desc="explode_turns",
    ).with_format(ds.format["type"])  # map kept the Arrow format used for the batches
    return provenance.record(out, "explode_turns", kind="transform", rows_in=len(ds), params={"id": "{id}#t{k}", "k_from": 0}, parent=ds)


def _explode_batch(table: pa.Table) -> pa.Table:
    n = table.num_rows
    conv = table["conversations"].combine_chunks()
    lengths = np.asarray(pc.fill_null(pc.list_value_length(conv), 0), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    flat = pc.list_flatten(conv)
    roles = np.asarray(pc.fill_null(pc.struct_field(flat, "from"), "").to_numpy(zero_copy_only=False), dtype=object)
    values = pc.struct_field(flat, "value")
    _check_pairs(table, lengths, starts, roles)

    pairs = lengths // 2
    parent = np.repeat(np.arange(n), pairs)
    k = np.arange(len(parent)) - np.concatenate([[0], np.cumsum(pairs)])[parent]
    human_idx = starts[parent] + 2 * k
    questions = values.take(pa.array(human_idx))
    answers = values.take(pa.array(human_idx + 1))

    n_images = np.asarray(pc.fill_null(pc.list_value_length(table["images"].combine_chunks()), 0))[parent]
    own = np.asarray(pc.fill_null(pc.count_substring(questions, IMAGE_TOKEN), 0))
    stripped = pc.replace_substring_regex(pc.replace_substring(questions, IMAGE_TOKEN + "\n", ""), "\n?" + IMAGE_TOKEN, "")
    prefix = pa.array([(IMAGE_TOKEN + "\n") * int(c) for c in n_images], pa.string())
    questions = pc.if_else(pa.array(own == n_images), questions, pc.binary_join_element_wise(prefix, stripped, ""))

    m = len(parent)
    order = np.empty(2 * m, dtype=np.int64)
    order[0::2], order[1::2] = np.arange(m), np.arange(m) + m
    turn_values = pa.concat_arrays([questions, answers]).take(pa.array(order))
    turn_roles = pa.array(np.tile(np.array(["human", "gpt"], dtype=object), m), pa.string())
    turns = pa.StructArray.from_arrays([turn_roles, turn_values], names=["from", "value"])
    conversations = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * m + 1, 2), pa.int32()), turns)

    take = pa.array(parent, pa.int64())
    ids = table["id"].combine_chunks().take(take)
    columns = {}
    for name in table.column_names:
        if name == "id":
            columns[name] = pc.binary_join_element_wise(ids, pa.array([f"#t{j}" for j in k], pa.string()), "")
        elif name == "conversations":
            columns[name] = conversations
        elif name not in ("parent_id", "turn"):
            columns[name] = table[name].combine_chunks().take(take)
    columns["parent_id"] = ids
    columns["turn"] = pa.array(k, pa.int32())
    return pa.table(columns)


def _check_pairs(table: pa.Table, lengths: np.ndarray, starts: np.ndarray, roles: np.ndarray) -> None:
    """Raise on the first row that is not (human, gpt) pairs."""
    parent = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(len(roles)) - starts[parent]
    expected = np.where(pos % 2 == 0, "human", "gpt")
    wrong = np.zeros(len(lengths), dtype=bool)
    wrong[parent[roles != expected]] = True
    wrong |= (lengths == 0) | (lengths % 2 == 1)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise ValidationError(
            table["id"][i].as_py(),
            "conversations",
            "turns are not human/gpt pairs, so they cannot be split without dropping one; run validate() first",
            code="not_pairs",
        )
