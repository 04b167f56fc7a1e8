"""The curation report: what each curated output keeps, against its pool and against random draws.

For each output (a config of a curated repo: ``revo_lion``, ``svit_core``, ...) the report
gives the rows kept, the ``yes_no`` counts and their ratio as every table writes it
(``"5.9:1"``, :func:`hf_vitcurate.stats.yes_no_ratio`; docs/methods.md, "Yes/no") and the task mix.
With the truth of a synthetic pool (``{id: status}``, from
:func:`hf_vitcurate.synthetic.pool_and_truth`) it also gives the degraded share by kind
(``hallucination``, ``leak``, ``duplicate``, ``easy``) against the pool and against
``seeds`` uniform draws of the same size from the same pool
(:func:`hf_vitcurate.select.random_subset`, seeds ``seed``, ``seed + 1``, ...), with
z = (random mean - output) / random std: every measure here is lower-is-better, so a
positive z means the output holds fewer such rows than chance would.

Each method is measured on the pathology it is designed for (:data:`PATHOLOGIES`,
matched on the config name; the methods are named as the recipe's ``method`` and the
built-in recipe's configs, ``curation.recipe.METHODS``, and as the combination's steps):
``cleanup`` on ``leak``, ``revo_lion`` (SQ) on ``hallucination`` and the low-quality
source's share, ``mllm_selector`` (NBGS) on ``easy``, ``svit_core`` and ``balance`` on
yes:no, ``near_duplicates`` on ``duplicate``, ``recommended`` on every degraded row. Where an
output does not beat random by :data:`GOAL_Z` standard deviations there, its ``verdict``
is one sentence, written from the numbers, saying so and why.

Example:
    >>> from datasets import Dataset, DatasetDict, concatenate_datasets
    >>> ids = [f"r{i}" for i in range(40)]
    >>> pool = Dataset.from_dict({"id": ids, "task": ["vqa"] * 40, "conversations": [
    ...     [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "Yes." if i % 2 else "No."}] for i in range(40)]})
    >>> truth = {i: "leak" if k < 10 else "clean" for k, i in enumerate(ids)}
    >>> rep = curation_report(pool, {"cleanup": pool.select(range(10, 40))}, truth=truth)
    >>> rep["configs"]["cleanup"]["metrics"]["leak"]["config"], rep["configs"]["cleanup"]["verdict"] is None
    (0.0, True)
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets

from .columns import list_column
from .errors import ConfigError, MissingColumnError
from .formats.explode import TURN_ID
from .stats import yes_no_ratio
from .synthetic.pathologies import LOW_QUALITY_SOURCE
from .synthetic.pool import statuses  # exploded turns ({id}#t{k}) have their row's status

_ROW = "__report_row"  # the pool row number each random draw carries
GOAL_Z = 3.0  # a method beats random when it is this many standard deviations better
KINDS = ("hallucination", "leak", "duplicate", "easy")  # truth statuses other than "clean" (synthetic.STATUSES)
# (words in a config name, the method, the measures it must beat random on); first match wins.
# The methods' names are the recipe's (curation.recipe.METHODS) and the combination's steps (STEPS).
PATHOLOGIES: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = (
    (("recommend", "combin"), "recommended", ("degraded",)),
    (("near_dup", "dedup", "duplicate"), "near_duplicates", ("duplicate",)),
    (("leak", "clean"), "cleanup", ("leak",)),
    (("sq", "s1", "revo", "lion", "release"), "revo_lion", ("hallucination", f"source:{LOW_QUALITY_SOURCE}")),
    (("nbgs", "mllm", "selector", "necessity"), "mllm_selector", ("easy",)),
    (("svit", "core"), "svit_core", ("yes_no",)),
    (("balance",), "balance", ("yes_no",)),
    (("mminstruct", "taxonomy"), "mminstruct_style", ()),  # keeps every row: no pathology of its own
)


def method_of(config: str) -> tuple[str | None, tuple[str, ...]]:
    """The method a config name stands for and the measures it targets (``(None, ())`` if none).

    >>> method_of("svit_core")
    ('svit_core', ('yes_no',))
    """
    words = re.split(r"[^a-z0-9]+", config.lower())
    low = config.lower()
    for keys, method, targets in PATHOLOGIES:
        # Short keys ("sq", "s1") must be whole words; longer ones may be part of one.
        if any((k in words) if len(k) <= 3 else (k in low) for k in keys):
            return method, targets
    return None, ()


def _yes_no_labels(ds: Dataset) -> list[str]:
    if "yes_no" in ds.column_names:
        return list_column(ds, "yes_no")
    from .stages import yes_no

    return list_column(yes_no(ds), "yes_no")


def _measures(ds: Dataset, truth: Mapping[str, str] | None, sources: Sequence[str], yes_no: Sequence[str]) -> dict[str, float]:
    """Every lower-is-better measure of one dataset: degraded shares, source shares, yes:no."""
    n = len(ds)
    out: dict[str, float] = {}
    if truth is not None:
        counts = Counter(statuses(list_column(ds, "id"), truth))
        out["degraded"] = (n - counts.get("clean", 0)) / n if n else 0.0
        out.update({k: counts.get(k, 0) / n if n else 0.0 for k in KINDS})
    if sources and "source" in ds.column_names:
        by_source = Counter(list_column(ds, "source"))
        out.update({f"source:{s}": by_source.get(s, 0) / n if n else 0.0 for s in sources})
    yn = Counter(yes_no)
    out["yes_no"] = yn.get("yes", 0) / max(yn.get("no", 0), 1)
    return out


def _summary(ds: Dataset, yes_no: Sequence[str]) -> dict[str, Any]:
    yn = Counter(yes_no)
    tasks = Counter(list_column(ds, "task")) if "task" in ds.column_names else Counter()
    n = len(ds)
    return {
        "rows": n,
        "yes_no": {"yes": yn.get("yes", 0), "no": yn.get("no", 0), "ratio": yes_no_ratio(yn.get("yes", 0), yn.get("no", 0))},
        "task_mix": {t: round(c / n, 4) for t, c in sorted(tasks.items())},
    }


def _z(mean: float, std: float, value: float) -> float | None:
    if std > 0:
        return round((mean - value) / std, 2)
    return None  # every draw alike (the whole pool, or a kind it has none of): no spread to measure by


def _met(m: dict[str, Any]) -> bool:
    if m["z"] is None:
        return m["config"] < m["random_mean"]
    return m["z"] >= GOAL_Z


def _label(target: str) -> str:
    if target == "yes_no":
        return "yes:no"
    if target.startswith("source:"):
        return f"rows of the low-quality source {target[7:]}"
    return "degraded" if target == "degraded" else f"{target} rows"


def _short(target: str) -> str:
    return "yes:no" if target == "yes_no" else target.removeprefix("source:")


def _fmt(target: str, v: float) -> str:
    return f"{v:.1f}:1" if target == "yes_no" else f"{v:.1%}"  # yes:no as stats.yes_no_ratio writes it


def _spread(target: str, std: float) -> str:
    return f"{std:.1f}" if target == "yes_no" else f"{std:.1%}"


def why(target: str, m: dict[str, Any], rows: int, pool_rows: int) -> str:
    """Why an output misses the goal on one measure, from its numbers (a clause, no full stop).

    >>> why("easy", {"config": 0.1, "pool": 0.1, "random_mean": 0.1, "random_std": 0.01, "z": 0.0}, 50, 100)
    "it keeps 10.0%, no fewer than random draws' 10.0% ± 1.0%, so its scores do not single these rows out"
    """
    c, p, mean, std = m["config"], m["pool"], m["random_mean"], m["random_std"]
    kept, chance = _fmt(target, c), f"{_fmt(target, mean)} ± {_spread(target, std)}"
    if rows >= pool_rows:
        return f"it keeps all {pool_rows} rows of the pool, so random draws of its size are the pool itself"
    if target != "yes_no" and p == 0:
        return "the pool has none, so there is nothing to remove"
    if target == "yes_no" and c <= 1.0 and mean <= 1.0:
        return f"the pool's yes:no is already {_fmt(target, p)}, so there is no skew to correct"
    if std == 0:
        return f"every random draw has the same share ({_fmt(target, mean)}) and it keeps {kept}"
    best = mean / std if target != "yes_no" else (mean - 1.0) / std
    if best < GOAL_Z:
        return (f"even removing every one would be only {best:.1f} std below random, since a draw of {rows} rows holds "
                f"about {mean * rows:.0f} of them: too few for {GOAL_Z:.0f} std at this size" if target != "yes_no" else
                f"even a perfect 1:1 would be only {best:.1f} std below random's {chance}")
    if target == "yes_no" and c >= mean:
        return f"its yes:no is {kept}, no lower than random draws' {chance} (the pool's is {_fmt(target, p)}), so it dropped no more yes rows than chance"
    if target.startswith("source:") and abs(c - p) <= 0.25 * std:
        return f"it keeps the pool's own share ({_fmt(target, p)}), as a selection that takes the same fraction of every source does"
    if c > mean + std:
        return f"it keeps {kept}, more than random draws' {chance}, so its scores favour these rows"
    if c >= mean:
        return f"it keeps {kept}, no fewer than random draws' {chance}, so its scores do not single these rows out"
    return f"it keeps {kept} against random's {chance}, {m['z']:.1f} std better, short of {GOAL_Z:.0f}"


def _verdict(name: str, targets: Sequence[str], metrics: dict[str, dict], rows: int, pool_rows: int) -> str | None:
    missed = [t for t in targets if t in metrics and not _met(metrics[t])]
    if not missed:
        return None
    clauses = "; ".join(f"on {_label(t)}: {why(t, metrics[t], rows, pool_rows)}" for t in missed)
    return f"{name} does not beat random by {GOAL_Z:.0f} std {clauses}."


def _random_measures(pool: Dataset, n: int, truth, sources, pool_yes_no: list[str], seeds: int, seed: int) -> list[dict]:
    from .select import random_subset

    out = []
    for s in range(seed, seed + seeds):
        draw = random_subset(pool, n=min(n, len(pool)), seed=s).dataset
        rows = list_column(draw, _ROW)
        out.append(_measures(draw, truth, sources, [pool_yes_no[r] for r in rows]))
    return out


class _Base:
    """What random draws come from: the pool (or its turns), its yes_no labels and measures."""

    def __init__(self, ds: Dataset, truth: Mapping[str, str] | None, sources: Sequence[str]) -> None:
        self.yes_no = _yes_no_labels(ds)
        self.rows = len(ds)
        # A row number rides along so that each draw's yes:no is read from these labels.
        self.indexed = ds.add_column(_ROW, list(range(len(ds))))
        self.measures = _measures(ds, truth, sources, self.yes_no) if truth is not None else {}


def _unit(pool: Dataset, ds: Dataset) -> str:
    """``"turns"`` when ``ds`` holds exploded turns (ids ``{id}#t{k}``) of a pool of whole rows."""
    ids = list_column(ds, "id")[:200]
    if ids and all(TURN_ID.search(i) for i in ids) and not any(TURN_ID.search(i) for i in list_column(pool, "id")[:200]):
        return "turns"
    return "rows"


def _compare(name: str, ds: Dataset, yn: list[str], base: _Base, targets: Sequence[str], truth: Mapping[str, str],
             sources: Sequence[str], seeds: int, seed: int) -> dict[str, Any]:
    mine = _measures(ds, truth, sources, yn)
    draws = _random_measures(base.indexed, len(ds), truth, sources, base.yes_no, seeds, seed)
    metrics = {}
    for key, value in mine.items():
        arr = np.array([d[key] for d in draws])
        mean, std = float(arr.mean()), float(arr.std(ddof=1))
        metrics[key] = {"config": round(value, 4), "pool": round(base.measures[key], 4), "random_mean": round(mean, 4),
                        "random_std": round(std, 4), "z": _z(mean, std, value)}
    return {"random": {"rows": min(len(ds), base.rows), "seeds": list(range(seed, seed + seeds))},
            "metrics": metrics,
            "goals": {t: _met(metrics[t]) for t in targets if t in metrics},
            "verdict": _verdict(name, targets, metrics, len(ds), base.rows)}


def curation_report(
    pool: Dataset,
    outputs: Mapping[str, Dataset],
    *,
    truth: Mapping[str, str] | None = None,
    seeds: int = 5,
    seed: int = 0,
    targets: Mapping[str, Sequence[str]] | None = None,
    methods: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report of every output of ``pool`` (see the module docstring); JSON-serialisable.

    ``outputs`` maps a config name to its curated rows (a ``DatasetDict``'s splits are concatenated). ``targets``
    overrides what a config is measured on (``{"mine": ["leak"]}``; measures are the kinds,
    ``"degraded"``, ``"yes_no"`` and ``"source:NAME"``); by default the config name decides
    (:data:`PATHOLOGIES`), else its entry in ``methods`` (a recipe's method: ``{"small": "svit_core"}``).
    Without ``truth``: rows, yes:no and the task mix only.
    """
    if seeds < 2:
        raise ConfigError(f"seeds must be at least 2 to measure a spread, got {seeds}")
    if truth is not None and "id" not in pool.column_names:
        raise MissingColumnError("the pool has no id column; the truth maps ids to statuses, so give the pool its ids")
    chosen = {name: (method_of(name) if targets is None or name not in targets else ("custom", tuple(targets[name])))
              for name in outputs}
    for name, (method, _) in chosen.items():
        if method is None and methods and name in methods:  # a config named freely: its method decides
            chosen[name] = method_of(methods[name])
    sources = sorted({t[7:] for _, ts in chosen.values() for t in ts if t.startswith("source:")})
    bases: dict[str, _Base] = {"rows": _Base(pool, truth, sources)}
    report: dict[str, Any] = {"pool": _summary(pool, bases["rows"].yes_no), "seeds": seeds, "seed": seed,
                              "goal_z": GOAL_Z, "configs": {}}
    if truth is not None:
        report["pool"]["degraded"] = {k: round(v, 4) for k, v in bases["rows"].measures.items() if k == "degraded" or k in KINDS}
    for name, ds in outputs.items():
        if isinstance(ds, DatasetDict):  # a config's splits (Tune and Eval, one per type) together
            ds = concatenate_datasets(list(ds.values())) if len(ds) else Dataset.from_dict({"id": []})
        yn = _yes_no_labels(ds) if len(ds) else []
        entry = _summary(ds, yn)
        method, tgt = chosen[name]
        entry.update({"method": method, "targets": list(tgt)})
        if truth is not None:
            unit = _unit(pool, ds)
            if unit not in bases:  # an output of turns (REVO-LION) is drawn against the pool's turns
                from .formats.explode import explode_turns

                # Only ids, text, source and task are read: the image bytes stay behind.
                light = pool.select_columns([c for c in ("id", "conversations", "source", "task") if c in pool.column_names])
                bases[unit] = _Base(explode_turns(light.add_column("images", [[]] * len(light))), truth, sources)
            entry.update(_compare(name, ds, yn, bases[unit], tgt, truth, sources, seeds, seed))
            entry["random"]["unit"] = unit
        report["configs"][name] = entry
    return report


def _cell(m: dict[str, Any], key: str) -> str:
    z = "" if m["z"] is None else f" z{m['z']:+.1f}"
    return f"{_fmt(key, m['config'])}{z}"


def report_table(report: Mapping[str, Any]) -> str:
    """A short plain-text table of :func:`curation_report`'s result, with the verdicts below it.

    >>> from datasets import Dataset, DatasetDict, concatenate_datasets
    >>> pool = Dataset.from_dict({"id": list("abcd"), "task": ["vqa"] * 4, "conversations": [
    ...     [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "Yes."}]] * 4})
    >>> print(report_table(curation_report(pool, {"mine": pool.select([0, 1])})).splitlines()[0])
    config  rows  yes:no  tasks
    """
    configs = report["configs"]
    truthful = any("metrics" in c for c in configs.values())
    kinds = [k for k in ("degraded", *KINDS) if truthful and (report["pool"].get("degraded", {}).get(k) or k == "degraded")]
    head = ["config", "rows", *kinds, "yes:no", "tasks", *(["goal"] if truthful else [])]
    pool = report["pool"]
    rows = [["pool", str(pool["rows"]), *(_fmt(k, pool["degraded"][k]) for k in kinds), pool["yes_no"]["ratio"], str(len(pool["task_mix"])),
             *([""] if truthful else [])]]
    for name, c in configs.items():
        cells = [_cell(c["metrics"][k], k) for k in kinds] if truthful else []
        goal = ", ".join(f"{_short(t)} {'met' if ok else 'missed'}" for t, ok in c.get("goals", {}).items())
        rows.append([name, str(c["rows"]), *cells, c["yes_no"]["ratio"], str(len(c["task_mix"])), *([goal or "-"] if truthful else [])])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    if truthful:
        lines.append(f"shares kept; z = (random mean - share) / std over {report['seeds']} random draws of the same size; "
                     f"goal: z >= {report['goal_z']:.0f} on the method's pathology")
        lines += [c["verdict"] for c in configs.values() if c.get("verdict")]
    return "\n".join(lines)


def report_plot(report: Mapping[str, Any], path: str) -> str:
    """A PNG at ``path``: per measure, each config's share beside random draws (mean ± std); returns ``path``.

    Without truth in the report it draws each config's yes:no instead.
    """
    from .hub.plots import new_figure, save_figure

    configs = report["configs"]
    names = list(configs)
    truthful = any("metrics" in c for c in configs.values())
    keys = [k for k in ("degraded", *KINDS) if truthful and (report["pool"]["degraded"].get(k) or k == "degraded")]
    keys = keys or ["yes_no"]
    fig = new_figure(figsize=(3.2 * len(keys), 3.2), dpi=90)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    x = np.arange(len(names))
    for ax, key in zip(axes, keys):
        if truthful:
            mine = [configs[n]["metrics"][key]["config"] for n in names]
            mean = [configs[n]["metrics"][key]["random_mean"] for n in names]
            std = [configs[n]["metrics"][key]["random_std"] for n in names]
            ax.bar(x - 0.2, mine, 0.4, label="kept")
            ax.bar(x + 0.2, mean, 0.4, yerr=std, capsize=3, color="lightgray", label="random")
            ax.axhline(report["pool"]["degraded"][key], color="k", lw=0.8, ls="--", label="pool")
        else:
            yn = [configs[n]["yes_no"] for n in names]
            ax.bar(x, [c["yes"] / c["no"] if c["no"] else 0 for c in yn], 0.6)
        ax.set_title(key if key != "yes_no" else "yes:no", fontsize=9)
        ax.set_xticks(x, names, rotation=35, ha="right", fontsize=7)
    if truthful:  # only the kept/random bars carry labels
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, os.path.abspath(path))
    return path


__all__ = ["GOAL_Z", "KINDS", "PATHOLOGIES", "curation_report", "method_of", "report_plot", "report_table", "why"]
