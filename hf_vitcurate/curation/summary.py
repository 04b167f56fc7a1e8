"""The closing summary: per config, rows kept, the degraded share against the pool and random draws, yes:no.

One row per config; with a ground truth (ShapesWorld) the degraded share of the config,
of the rows it was drawn from, and of ``seeds`` uniform draws of the same size (mean and
standard deviation). :func:`table_text` is the short table a person reads at a glance.
The full report (by pathology kind, with a plot) comes from :mod:`hf_vitcurate.report`
when that module is installed (:func:`full_report`).

Example:
    >>> rows = [{"config": "svit_core", "rows": 350, "degraded": 0.05, "pool": 0.09, "random_mean": 0.091,
    ...          "random_sd": 0.01, "yes_no": "8.0:1"}]
    >>> print(table_text(rows))
    config     rows  degraded  pool  random     vs random  yes:no
    svit_core   350      5.0%  9.0%  9.1%±1.0%    -4.1 sd  8.0:1
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np
from datasets import Dataset

from ..columns import list_column

logger = logging.getLogger(__name__)
_TURN = re.compile(r"#t\d+$")


def _ids(dd) -> list[str]:
    return [i for d in dd.values() for i in list_column(d, "id")]


def _share(ids: list[str], truth: dict[str, str]) -> float:
    if not ids:
        return 0.0
    return sum(truth.get(_TURN.sub("", i), "clean") != "clean" for i in ids) / len(ids)


def yes_no_ratio(datasets: list[Dataset]) -> str:
    """``"4.2:1"``: yes answers per no answer (``yes_no`` column), ``"-"`` without one."""
    values = [v for d in datasets if "yes_no" in d.column_names for v in list_column(d, "yes_no")]
    yes, no = values.count("yes"), values.count("no")
    if not yes and not no:
        return "-"
    return f"{yes / no:.1f}:1" if no else f"{yes}:0"


def summary_rows(curation, *, truth: dict[str, str] | None = None, seeds: int = 5) -> list[dict[str, Any]]:
    """One row per config of a :class:`~hf_vitcurate.curation.run.Curation` (see the module docstring)."""
    out = []
    for config, (dd, _manifest) in curation.outputs.items():
        ids = _ids(dd)
        row: dict[str, Any] = {"config": config, "rows": len(ids)}
        if truth:
            population = list_column(curation.populations[config], "id")
            draws = [_share(list(np.random.default_rng(s).choice(population, size=min(len(ids), len(population)),
                                                                 replace=False)), truth) for s in range(seeds)]
            row.update(degraded=round(_share(ids, truth), 4), pool=round(_share(population, truth), 4),
                       random_mean=round(float(np.mean(draws)), 4), random_sd=round(float(np.std(draws)), 4))
        row["yes_no"] = yes_no_ratio(list(dd.values()))
        out.append(row)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def table_text(rows: list[dict[str, Any]]) -> str:
    """The summary as a fixed-width text table (config | rows | degraded vs pool vs random | yes:no)."""
    truth = any("degraded" in r for r in rows)
    headers = ["config", "rows"] + (["degraded", "pool", "random", "vs random"] if truth else []) + ["yes:no"]
    body = []
    for r in rows:
        cells = [r["config"], str(r["rows"])]
        if truth:
            sd = r["random_sd"]
            z = (r["degraded"] - r["random_mean"]) / sd if sd else 0.0
            cells += [_pct(r["degraded"]), _pct(r["pool"]), f"{_pct(r['random_mean'])}±{_pct(sd)}", f"{z:+.1f} sd"]
        cells.append(r["yes_no"])
        body.append(cells)
    widths = [max(len(x) for x in col) for col in zip(headers, *body)]
    right = {1, 2, 3, 5} if truth else {1}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join(line(c) for c in [headers, *body])


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """The same table in Markdown, for the card."""
    from ..hub.card import md_table

    text = table_text(rows).splitlines()
    cells = [re.split(r"\s{2,}", line.strip()) for line in text]
    return md_table(cells[0], cells[1:])


def full_report(curation, *, truth: dict[str, str] | None, seeds: int, plot_path: str | None = None) -> dict[str, Any] | None:
    """:func:`hf_vitcurate.report.curation_report` of every config, with its table and plot; ``None`` without the module."""
    try:
        from .. import report
    except ImportError:
        logger.info("hf_vitcurate.report is not installed: the summary table only")
        return None
    outputs = {c: _joined(dd) for c, (dd, _) in curation.outputs.items()}
    result = report.curation_report(curation.pool, outputs, truth=truth, seeds=seeds)
    out = {"report": result, "table": report.report_table(result)}
    if plot_path:
        out["plot"] = report.report_plot(result, plot_path)
    return out


def _joined(dd) -> Dataset:
    from datasets import concatenate_datasets

    parts = list(dd.values())
    if len(parts) == 1:
        return parts[0]
    common = [c for c in parts[0].column_names if all(c in p.column_names for p in parts)]
    return concatenate_datasets([p.select_columns(common) for p in parts])
