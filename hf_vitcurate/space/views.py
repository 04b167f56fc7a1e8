"""What the page shows of a :class:`~.actions.Session`: the counts line, the rejected table, before/after.

Plain text and tables (Markdown, lists of rows), so tests read them as a person would.

Example:
    >>> from hf_vitcurate.space.actions import Session
    >>> counts(Session())
    'No dataset loaded yet.'
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from datasets import Dataset

from ..schema import CORE_COLUMNS
from .actions import Session

# Columns not shown in the counts line: the canonical schema's, and what loading and validation may add.
BASE_COLUMNS = {*CORE_COLUMNS, "image_id", "reject_reason"}


def counts(session: Session) -> str:
    """One line a person reads at a glance: rows loaded, kept, rejected, selected, stages run."""
    if session.pool is None:
        return "No dataset loaded yet."
    parts = [f"**{session.name}**", f"loaded **{len(session.pool)}** rows",
             f"kept **{len(session.kept)}**", f"rejected **{len(session.rejected)}**"]
    added = [c for c in session.tagged.column_names if c not in BASE_COLUMNS]
    if added:
        parts.append("columns added: " + ", ".join(f"`{c}`" for c in added))
    if session.selected is not None:
        parts.append(f"selected **{len(session.selected)}** of {len(session.tagged)}")
    return " · ".join(parts)


def _per(ds: Dataset | None, column: str) -> Counter:
    return Counter(ds[column]) if ds is not None and column in ds.column_names else Counter()


def before_after(session: Session, *, column: str = "task") -> list[list[Any]]:
    """``[[group, rows before, rows after, share after], ...]`` per ``column`` value, then the total."""
    before, after = _per(session.tagged, column), _per(session.selected, column)
    rows = [[g, before[g], after[g], f"{after[g] / before[g]:.0%}" if before[g] else "-"] for g in sorted(before)]
    total_b, total_a = sum(before.values()), sum(after.values())
    rows.append(["all", total_b, total_a, f"{total_a / total_b:.0%}" if total_b else "-"])
    return rows


def steps(session: Session) -> str:
    """The steps run so far, in order."""
    return " → ".join(["load", "validate", *session.steps]) if session.pool is not None else ""


# The figures of a stats report shown side by side, before and after a selection.
FIGURES = [("rows", "rows"), ("images", "images"), ("qa_pairs", "QA pairs"), ("mean_qa_pairs_per_row", "QA pairs per row"),
           ("mean_question_words", "words per question"), ("mean_answer_words", "words per answer")]


def per_group(report: dict[str, Any] | None) -> list[list[Any]]:
    """``[[task, rows, QA pairs, words per question, words per answer], ...]`` of a stats report."""
    if not report:
        return []
    keys = ["rows", "qa_pairs", "mean_question_words", "mean_answer_words"]
    rows = [[g, *(s.get(k) for k in keys)] for g, s in sorted(report["groups"].items())]
    return rows + [["all", *(report.get(k) for k in keys)]]


def compare(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[list[Any]]:
    """``[[figure, before, after], ...]``: the overall figures of two stats reports ("-" where one is missing)."""
    if not before:
        return []
    return [[label, before.get(key, "-"), (after or {}).get(key, "-")] for key, label in FIGURES]
