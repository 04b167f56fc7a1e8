"""The closing summary: per config, rows kept, the degraded share against the pool and random draws, yes:no.

:func:`report_of` runs :func:`hf_vitcurate.report.curation_report` on every config (the
splits of a config together) against the validated pool; :func:`summary_rows` keeps one
row per config of it, :func:`table_text` prints them as the short table a person reads at
a glance ("z": standard deviations better than random draws of the same size; the full
report, by pathology kind and with its verdicts, goes to ``summary.json`` and the card).

Example:
    >>> rows = [{"config": "svit_core", "rows": 350, "degraded": 0.05, "pool": 0.09, "random_mean": 0.091,
    ...          "random_std": 0.01, "z": 4.1, "yes_no": "8.0:1"}]
    >>> print(table_text(rows))
    config     rows  degraded  pool  random     vs random      yes:no
    svit_core   350      5.0%  9.0%  9.1%±1.0%  4.1 sd better   8.0:1
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset, concatenate_datasets

from ..hub.card import md_table


def joined(dd) -> Dataset:
    """A config's splits (a ``DatasetDict``, or a list of Datasets) as one Dataset, on the columns they share."""
    parts = list(dd.values()) if hasattr(dd, "values") else list(dd)
    if len(parts) == 1:
        return parts[0]
    common = [c for c in parts[0].column_names if all(c in p.column_names for p in parts)]
    return concatenate_datasets([p.select_columns(common) for p in parts])


def report_of(curation, *, truth: dict[str, str] | None = None, seeds: int = 5,
              methods: dict[str, str] | None = None) -> dict[str, Any]:
    """:func:`hf_vitcurate.report.curation_report` of every config of a :class:`~hf_vitcurate.curation.run.Curation`.

    ``methods``: each config's recipe method, which decides what a freely named config is measured on.
    """
    from ..report import curation_report

    outputs = {c: joined(dd) for c, (dd, _) in curation.outputs.items()}
    return curation_report(curation.pool, outputs, truth=truth, seeds=max(2, seeds), methods=methods)


def summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per config of a :func:`report_of` result: rows, degraded share, pool, random mean/std, z, yes:no."""
    out = []
    for config, entry in report["configs"].items():
        row: dict[str, Any] = {"config": config, "rows": entry["rows"]}
        m = (entry.get("metrics") or {}).get("degraded")
        if m:
            row.update(degraded=m["config"], pool=m["pool"], random_mean=m["random_mean"], random_std=m["random_std"],
                       z=m["z"])
        row["yes_no"] = entry["yes_no"]["ratio"]  # stats.yes_no_ratio's "5.9:1", as in the report and the card
        out.append(row)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _versus(z: float | None) -> str:
    if z is None:
        return "same as random"
    return f"{abs(z):.1f} sd {'better' if z > 0 else 'worse'}" if abs(z) >= 0.05 else "same as random"


def _cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The summary's header and body cells, shared by the text and the Markdown table."""
    truth = any("degraded" in r for r in rows)
    headers = ["config", "rows"] + (["degraded", "pool", "random", "vs random"] if truth else []) + ["yes:no"]
    body = []
    for r in rows:
        cells = [r["config"], str(r["rows"])]
        if truth:
            cells += [_pct(r["degraded"]), _pct(r["pool"]), f"{_pct(r['random_mean'])}±{_pct(r['random_std'])}",
                      _versus(r["z"])]
        cells.append(r["yes_no"])
        body.append(cells)
    return headers, body


def table_text(rows: list[dict[str, Any]]) -> str:
    """The summary as a fixed-width text table (config | rows | degraded vs pool vs random | yes:no)."""
    headers, body = _cells(rows)
    widths = [max(len(x) for x in col) for col in zip(headers, *body)]
    right = {1, 2, 3, len(headers) - 1}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join(line(c) for c in [headers, *body])


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """The same table in Markdown, for the card."""
    return md_table(*_cells(rows))
