"""Dataset statistics: the SVIT report (SVIT, arXiv:2307.04087: Table 1, §3.4 and Figure 3 analogues).

:func:`stats` reads any dataset in the canonical schema, in Arrow batches (no image is
decoded), and returns a JSON-ready dict:

- totals: rows, image references, rows without images, turns, QA pairs (``gpt`` turns),
  mean question and answer length in words (``<image>`` removed, white-space words),
  per QA pair as in SVIT §3.4;
- ``groups``: the same per ``task`` (or per ``source``, ``by="source"``), plus the mean
  ``informativeness`` and the yes/no counts when those columns exist;
- ``rows_per_source_task``: ``{source: {task: rows}}``;
- ``first_words``: per group (and ``"all"``), the most common first word and first three
  words of the questions (every ``human`` turn), with their share of questions.

:func:`to_markdown` renders it (Table 1 analogue, source x task table, question types),
:func:`plot_first_words` draws the Figure 3 analogue (one two-ring donut per group: first
word inside, first three words outside).

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a"], "images": [[]], "source": ["s"], "task": ["conv"],
    ...     "conversations": [[{"from": "human", "value": "<image>\\nWhat is it?"},
    ...                        {"from": "gpt", "value": "A red ball."}]]})
    >>> report = stats(ds)
    >>> report["groups"]["conv"]["mean_question_words"], report["first_words"]["all"]["1"][0]
    (3.0, ['what', 1, 1.0])
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from .errors import ConfigError, missing_column
from .stages._arrow import turns

IMAGE_TOKEN = "<image>"
# Punctuation runs, apostrophes inside words kept ("what's").
_NOT_WORD = r"[^\p{L}\p{N}'\s]+"
_MARKUP = r"<st>|<ed>"


def _words(values: pa.Array) -> np.ndarray:
    """Number of white-space separated words per text, ``<image>`` placeholders removed."""
    # Trim first: Arrow's split yields an empty word for leading/trailing white space.
    text = pc.utf8_trim_whitespace(pc.replace_substring(values, IMAGE_TOKEN, " "))
    words = pc.list_value_length(pc.utf8_split_whitespace(text))
    empty = pc.equal(pc.utf8_length(text), 0)
    return np.where(np.asarray(empty), 0, np.asarray(words, dtype=np.int64))


def _first_words(values: pa.Array, k: int) -> pa.Array:
    """The first ``k`` words of each text, lowercased, punctuation dropped, joined by spaces."""
    text = pc.utf8_lower(pc.replace_substring(values, IMAGE_TOKEN, " "))
    # SVIT's referring markup <st>object<ed>[box] would otherwise read as the word "st".
    text = pc.replace_substring_regex(text, _MARKUP, " ")
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, _NOT_WORD, " "))
    words = pc.list_slice(pc.utf8_split_whitespace(text), 0, k)
    return pc.binary_join(words, " ")


def stats(
    ds: Dataset,
    *,
    by: str = "task",
    first_words: tuple[int, ...] = (1, 3),
    top: int = 20,
    map_batch_size: int = 50_000,
) -> dict[str, Any]:
    """Statistics of ``ds`` grouped by ``by`` (``"task"`` or ``"source"``); see module docstring.

    ``first_words``: the prefix lengths counted for question types; ``top``: how many
    prefixes are kept per group and length; ``map_batch_size``: rows per Arrow batch read.
    """
    if by not in ("task", "source"):
        raise ConfigError(f"by={by!r} must be 'task' or 'source'")
    needed = ["conversations", "source", "task"]
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise missing_column(missing[0], ds.column_names, what="stats needs column",
                             hint="load the rows with load_vit (it adds source and task)")
    extras = [c for c in ("images", "informativeness", "yes_no") if c in ds.column_names]
    table_ds = ds.select_columns(needed + extras).with_format("arrow")

    acc: dict[str, Counter] = defaultdict(Counter)
    crosstab: dict[str, Counter] = defaultdict(Counter)
    prefixes: dict[int, dict[str, Counter]] = {k: defaultdict(Counter) for k in first_words}
    for table in table_ds.iter(batch_size=map_batch_size):
        _count_batch(table, by, extras, acc, crosstab, prefixes)

    groups = {name: _summary(acc[name], extras) for name in sorted(acc)}
    total = Counter()
    for c in acc.values():
        total.update(c)
    report: dict[str, Any] = {"by": by, **_summary(total, extras), "groups": groups}
    report["rows_per_source_task"] = {s: dict(sorted(t.items())) for s, t in sorted(crosstab.items())}
    report["first_words"] = _top_prefixes(prefixes, sorted(acc), top)
    return report


def _count_batch(table: pa.Table, by: str, extras: list[str], acc: dict[str, Counter], crosstab: dict[str, Counter],
                 prefixes: dict[int, dict[str, Counter]]) -> None:
    """Add one Arrow batch's sums per group to ``acc``, its rows per (source, task) to ``crosstab``,
    and its question prefixes per group to ``prefixes``."""
    n = table.num_rows
    group = pc.fill_null(table.column(by), "").combine_chunks().dictionary_encode()
    g_codes = np.asarray(group.indices, dtype=np.int64)
    g_names = [str(x) for x in group.dictionary.to_pylist()]
    n_groups = len(g_names)

    def per_group(weights: np.ndarray | None, codes: np.ndarray = g_codes) -> np.ndarray:
        if not len(codes):
            return np.zeros(n_groups)
        return np.bincount(codes, weights=weights, minlength=n_groups)

    sums: dict[str, np.ndarray] = {"rows": per_group(None)}
    if "images" in extras:
        n_img = np.asarray(pc.fill_null(pc.list_value_length(table.column("images")), 0), dtype=np.int64)
    else:
        n_img = np.zeros(n, dtype=np.int64)
    sums["images"] = per_group(n_img)
    sums["rows_without_images"] = per_group((n_img == 0).astype(np.int64))

    values, roles, turn_row, _ = turns(table)
    t_group = g_codes[turn_row]
    is_q = np.asarray(pc.equal(roles, "human"), dtype=bool)
    is_a = np.asarray(pc.equal(roles, "gpt"), dtype=bool)
    words = _words(values)
    sums["turns"] = per_group(None, t_group)
    sums["qa_pairs"] = per_group(is_a.astype(np.int64), t_group)
    sums["questions"] = per_group(is_q.astype(np.int64), t_group)
    sums["question_words"] = per_group(words * is_q, t_group)
    sums["answer_words"] = per_group(words * is_a, t_group)
    if "informativeness" in extras:
        info = np.asarray(pc.fill_null(table.column("informativeness"), 0).to_numpy(), dtype=np.float64)
        sums["informativeness"] = per_group(info)
    if "yes_no" in extras:
        yn = np.asarray(pc.fill_null(table.column("yes_no"), "").to_numpy(zero_copy_only=False), dtype=object)
        sums["yes"] = per_group((yn == "yes").astype(np.int64))
        sums["no"] = per_group((yn == "no").astype(np.int64))
    for key, arr in sums.items():
        for i, name in enumerate(g_names):
            acc[name][key] += float(arr[i])

    pairs = pa.table({"s": pc.fill_null(table.column("source"), ""), "t": pc.fill_null(table.column("task"), "")})
    for row in pairs.group_by(["s", "t"]).aggregate([("s", "count")]).to_pylist():
        crosstab[row["s"]][row["t"]] += row["s_count"]

    q_idx = pa.array(np.flatnonzero(is_q))
    q_values, q_group = values.take(q_idx), t_group[is_q]
    for k, per_name in prefixes.items():
        prefix = _first_words(q_values, k)
        counted = pa.table({"g": pa.array(q_group), "p": prefix}).group_by(["g", "p"]).aggregate([("p", "count")])
        for g, p, c in zip(*(counted.column(x).to_pylist() for x in ("g", "p", "p_count"))):
            per_name[g_names[g]][p] += c


def _top_prefixes(prefixes: dict[int, dict[str, Counter]], names: list[str], top: int) -> dict[str, dict[str, list]]:
    """``{group: {k: [[prefix, count, share], ...]}}``, the ``top`` commonest, for ``"all"`` and each group."""
    fw: dict[str, dict[str, list]] = {}
    for name in ["all", *names]:
        fw[name] = {}
        for k, per_name in prefixes.items():
            if name == "all":
                counter = Counter()
                for c in per_name.values():
                    counter.update(c)
            else:
                counter = per_name[name]
            n_q = sum(counter.values())
            fw[name][str(k)] = [[p, c, round(c / n_q, 4)] for p, c in counter.most_common(top)]
    return fw


def _summary(c: Counter, extras: list[str]) -> dict[str, Any]:
    """Totals and means of one group's accumulated sums."""
    def mean(num: str, den: str) -> float | None:
        return round(c[num] / c[den], 2) if c[den] else None

    out: dict[str, Any] = {
        "rows": int(c["rows"]),
        "images": int(c["images"]),
        "rows_without_images": int(c["rows_without_images"]),
        "turns": int(c["turns"]),
        "qa_pairs": int(c["qa_pairs"]),
        "questions": int(c["questions"]),
        "mean_qa_pairs_per_row": mean("qa_pairs", "rows"),
        "mean_question_words": mean("question_words", "questions"),
        "mean_answer_words": mean("answer_words", "qa_pairs"),
    }
    if "informativeness" in extras:
        out["mean_informativeness"] = mean("informativeness", "rows")
    if "yes_no" in extras:
        out["yes"], out["no"] = int(c["yes"]), int(c["no"])
    return out


def yes_no_ratio(yes: int, no: int) -> str:
    """yes:no as every table, summary and card writes it: ``"5.9:1"``, ``"7:0"`` without a no, ``"-"`` without either.

    >>> yes_no_ratio(59, 10), yes_no_ratio(7, 0), yes_no_ratio(0, 0)
    ('5.9:1', '7:0', '-')
    """
    if not yes and not no:
        return "-"
    return f"{yes / no:.1f}:1" if no else f"{yes}:0"


def to_markdown(report: dict[str, Any], *, title: str = "Dataset statistics", top: int = 8) -> str:
    """Render a :func:`stats` report as Markdown (tables, then question types per group).

    Example:
        >>> print(to_markdown({"by": "task", "rows": 0, "groups": {}, "rows_per_source_task": {},
        ...                    "first_words": {}}).splitlines()[0])
        # Dataset statistics
    """
    by = report["by"]
    lines = [f"# {title}", ""]
    keys = ["rows", "images", "rows_without_images", "qa_pairs", "mean_qa_pairs_per_row",
            "mean_question_words", "mean_answer_words"]
    if "mean_informativeness" in report:
        keys.append("mean_informativeness")
    if "yes" in report:
        keys += ["yes", "no"]
    header = [by] + [k.replace("_", " ") for k in keys] + (["yes:no"] if "yes" in report else [])
    lines += ["## Per " + by + " (SVIT Table 1 and §3.4 analogue)", "",
              "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, g in list(report["groups"].items()) + [("**all**", report)]:
        ratio = [yes_no_ratio(g.get("yes", 0), g.get("no", 0))] if "yes" in report else []
        lines.append("| " + " | ".join([name] + [_fmt(g.get(k)) for k in keys] + ratio) + " |")
    lines += ["", "## Rows per source and task", "", "| source | task | rows |", "|---|---|---|"]
    for s, tasks in report["rows_per_source_task"].items():
        for t, n in tasks.items():
            lines.append(f"| {s} | {t} | {n} |")
    lines += ["", "## Questions by first words (SVIT Figure 3 analogue)", ""]
    for name, per_k in report["first_words"].items():
        for k, items in per_k.items():
            shown = ", ".join(f"{p!r} {share:.0%}" for p, _, share in items[:top])
            lines.append(f"- {name}, first {k} word{'s' if k != '1' else ''}: {shown}")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def plot_first_words(report: dict[str, Any], path: str, *, inner: int = 8, outer: int = 3, groups: list[str] | None = None) -> str:
    """Figure 3 analogue: per group a donut, first word inside, first three words outside.

    ``inner``: first words shown before "other"; ``outer``: three-word prefixes shown
    per first word. Needs ``first_words`` with lengths 1 and 3. Returns ``path`` (PNG).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fw = report["first_words"]
    names = groups or [g for g in fw if g != "all"] or ["all"]
    names = [g for g in names if fw.get(g, {}).get("1")] or ["all"]
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 5.2 * rows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        ones = fw[name].get("1", [])
        threes = fw[name].get("3", [])
        n_q = report["groups"].get(name, report)["questions"] if name != "all" else report["questions"]
        if not n_q:
            ax.axis("off")
            continue
        firsts = ones[:inner]
        inner_sizes = [c for _, c, _ in firsts]
        inner_labels = [f"{p} {c / n_q:.0%}" for p, c, _ in firsts]
        rest = n_q - sum(inner_sizes)
        if rest > 0:
            inner_sizes.append(rest)
            inner_labels.append("other")
        outer_sizes, outer_labels, outer_colors = [], [], []
        for i, (w, c, _) in enumerate(firsts):
            subs = [(p, pc_) for p, pc_, _ in threes if p == w or p.startswith(w + " ")][:outer]
            for p, pc_ in subs:
                outer_sizes.append(pc_)
                outer_labels.append(p if pc_ / n_q >= 0.02 else "")
                outer_colors.append(matplotlib.colors.to_rgba(cmap(i % 10), 0.55))
            left = c - sum(s for _, s in subs)
            if left > 0:
                outer_sizes.append(left)
                outer_labels.append("")
                outer_colors.append(matplotlib.colors.to_rgba(cmap(i % 10), 0.25))
        if rest > 0:
            outer_sizes.append(rest)
            outer_labels.append("")
            outer_colors.append((0.85, 0.85, 0.85, 1.0))
        inner_colors = [cmap(i % 10) for i in range(len(firsts))] + ([(0.7, 0.7, 0.7, 1.0)] if rest > 0 else [])
        ax.pie(outer_sizes, radius=1.0, labels=outer_labels, colors=outer_colors, labeldistance=1.05,
               textprops={"fontsize": 7}, wedgeprops={"width": 0.35, "edgecolor": "white"}, startangle=90, counterclock=False)
        ax.pie(inner_sizes, radius=0.65, labels=inner_labels, colors=inner_colors, labeldistance=0.45,
               textprops={"fontsize": 7}, wedgeprops={"width": 0.4, "edgecolor": "white"}, startangle=90, counterclock=False)
        ax.set_title(f"{name} ({n_q} questions)", fontsize=10)
        ax.set_aspect("equal")
    fig.suptitle(f"Questions by first words, per {report['by']}", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
