"""Generation clean-up flags (SVIT, arXiv:2307.04087, section 3.3): leaked annotation sources, missing QA pairs.

SVIT asked GPT-4 to write QA pairs from captions, boxes and region descriptions; some
answers then say "according to the captions" or "based on the given information", and
some replies hold fewer QA pairs than asked. The paper finds them "based on relative
words" and regenerates them. Here each check is a score stage: it adds flag columns and
returns the dataset. :func:`hf_vitcurate.stages.reject` then splits the flagged rows off
as a :class:`~hf_vitcurate.results.Split` (rows in = kept + rejected, ``reject_reason``
and ``reject_detail`` on the rejected rows, like :func:`hf_vitcurate.validate`). The
MMInstruct engine's regenerate step reads the same flags.

- :func:`leakage`: columns ``leakage`` (bool) and ``leakage_phrases`` (phrases found in
  the ``gpt`` turns, lowercase; ``leakage`` is true exactly when it is not empty).
  Phrases match case-insensitively on Unicode word boundaries (no letter, digit or
  ``_`` next to them: "écaption" is no hit) with an optional plural ``s`` ("captions"
  hits ``caption``).
- :func:`qa_count`: columns ``qa_pairs`` (number of ``gpt`` turns), ``qa_expected`` (what
  was asked; 0: not checked) and ``qa_short`` (fewer than expected).

Example:
    >>> from datasets import Dataset
    >>> from hf_vitcurate.stages import reject
    >>> ds = Dataset.from_dict({"id": ["a", "b"], "task": ["conv", "conv"], "conversations": [
    ...     [{"from": "human", "value": "Color?"}, {"from": "gpt", "value": "Per the captions, red."}],
    ...     [{"from": "human", "value": "Color?"}, {"from": "gpt", "value": "Red."}]]})
    >>> flagged = leakage(ds)
    >>> flagged["leakage"][:]
    [True, False]
    >>> kept, rejected = reject(flagged, where="leakage")
    >>> len(kept), rejected[0]["reject_reason"]
    (1, 'leakage')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, List, Value

from .. import provenance
from ..errors import ConfigError, missing_column
from ._arrow import map_arrow, turns

# What SVIT's answers leak: the annotation sources GPT-4 was shown (captions, region
# descriptions, object boxes) and the way it refers to them. Configurable; "description"
# is in the paper's own example even though it also flags honest uses of the word.
DEFAULT_LEAK_PHRASES: tuple[str, ...] = (
    "caption",
    "description",
    "the given information",
    "the provided information",
    "the information provided",
    "the information given",
    "the given annotations",
    "the provided annotations",
    "bounding box coordinates",
    "region description",
)


# Python's ``\s`` (str.isspace) as one RE2 class: RE2's own ``\s`` is ASCII only.
_RE2_SPACE = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}]+"


def _phrase_patterns(phrases: Sequence[str]) -> tuple[str, re.Pattern]:
    r"""(RE2 pre-filter, Python rule): any phrase, white space runs, optional plural s.

    The Python pattern is the rule: no letter, digit or ``_`` (Unicode, as ``re``'s ``\w``)
    right before or after the match, so "écaption" is no "caption". RE2's ``\b`` and
    ``\s`` are ASCII only, so the vectorised pre-filter has no boundaries and a wider
    space class: it finds every row the rule can hit (and a few more), and the flag is
    set only where the rule found a phrase.
    """
    if not phrases:
        raise ConfigError("leakage needs at least one phrase, got none")
    alts = sorted({" ".join(p.lower().split()) for p in phrases}, key=lambda p: (-len(p), p))
    python = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in alts)
    re2 = "|".join(_RE2_SPACE.join(re.escape(w) for w in p.split()) for p in alts)
    return rf"(?i)(?:{re2})", re.compile(rf"(?i)(?<!\w)(?:{python})s?(?!\w)")


def leakage(
    ds: Dataset,
    *,
    phrases: Sequence[str] = DEFAULT_LEAK_PHRASES,
    map_batch_size: int = 10_000,
) -> Dataset:
    """Flag rows whose answers mention the annotation source (see module docstring).

    Returns ``ds`` with ``leakage``/``leakage_phrases`` columns; split the flagged rows off
    with ``stages.reject(out, where="leakage")``.
    """
    pattern, finder = _phrase_patterns(phrases)

    def flag(table: pa.Table) -> dict[str, pa.Array]:
        values, roles, turn_row, _ = turns(table)
        is_gpt = np.asarray(pc.equal(roles, "gpt"), dtype=bool)
        # RE2 scans every answer; Python applies the rule (and collects the phrases) on its hits.
        hit = is_gpt & np.asarray(pc.match_substring_regex(values, pattern), dtype=bool)
        found: list[list[str]] = [[] for _ in range(table.num_rows)]
        for i in np.flatnonzero(hit):
            row = found[turn_row[i]]
            for m in finder.finditer(values[int(i)].as_py()):
                p = " ".join(m.group(0).lower().split())
                if p not in row:
                    row.append(p)
        flags = np.fromiter((bool(r) for r in found), bool, table.num_rows)
        return {"leakage": pa.array(flags), "leakage_phrases": pa.array(found, pa.list_(pa.string()))}

    out = map_arrow(
        ds, flag, {"leakage": Value("bool"), "leakage_phrases": List(Value("string"))},
        batch_size=map_batch_size, desc="leakage",
    )
    return _record(ds, out, "leakage", "leakage", {"phrases": list(phrases)})


def qa_count(
    ds: Dataset,
    *,
    expected: int | Mapping[str, int],
    task_column: str = "task",
    map_batch_size: int = 10_000,
) -> Dataset:
    """Flag rows with fewer QA pairs (``gpt`` turns) than ``expected``.

    ``expected``: one number for every row, or ``{task: number}`` (tasks not listed are
    not checked, e.g. ``{"referring_qa": 10}`` as SVIT asked for 10 referring QAs).
    Adds ``qa_pairs``, ``qa_expected`` and ``qa_short``; split the short rows off with
    ``stages.reject(out, where="qa_short")`` (reason ``too_few_qa``).

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"task": ["conv"], "conversations": [[
        ...     {"from": "human", "value": "Q1"}, {"from": "gpt", "value": "A1"}]]})
        >>> qa_count(ds, expected=3)[0]["qa_short"]
        True
    """
    if isinstance(expected, Mapping):
        per_task = {str(k): int(v) for k, v in expected.items()}
        if task_column not in ds.column_names:
            raise missing_column(task_column, ds.column_names,
                                 hint="expected= is per task: pass task_column=, or one number for every row")
    else:
        per_task = None
        expected = int(expected)

    def count(table: pa.Table) -> dict[str, pa.Array]:
        _, roles, turn_row, _ = turns(table)
        is_gpt = np.asarray(pc.equal(roles, "gpt"), dtype=bool)
        pairs = np.bincount(turn_row[is_gpt], minlength=table.num_rows)
        if per_task is None:
            need = np.full(table.num_rows, expected, dtype=np.int64)
        else:
            tasks = np.asarray(pc.fill_null(table.column(task_column), "").to_numpy(zero_copy_only=False), dtype=object)
            need = np.array([per_task.get(t, 0) for t in tasks], dtype=np.int64)
        return {"qa_pairs": pa.array(pairs.astype(np.int32)), "qa_expected": pa.array(need.astype(np.int32)),
                "qa_short": pa.array(pairs < need)}

    out = map_arrow(
        ds, count, {"qa_pairs": Value("int32"), "qa_expected": Value("int32"), "qa_short": Value("bool")},
        batch_size=map_batch_size, desc="qa_count",
    )
    return _record(ds, out, "qa_count", "qa_short", {"expected": per_task if per_task is not None else expected})


def _record(ds: Dataset, out: Dataset, name: str, flag_column: str, params: dict) -> Dataset:
    """Record the stage's provenance step with the number of flagged rows."""
    flags = np.asarray(out.with_format("arrow")[flag_column], dtype=bool) if len(out) else np.zeros(0, bool)
    params = {**params, "flagged": int(flags.sum())}
    return provenance.record(out, name, kind="stage", rows_in=len(ds), params=params, parent=ds)
