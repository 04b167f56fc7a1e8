"""Individual Select: choose whole datasets by fine-tuning and benchmarking.

From *Rethinking Overlooked Aspects in Vision-Language Models* (arXiv:2405.11850; see
docs/methods.md). Input: the candidate datasets by name (``sources``), a baseline set B0,
candidates grouped in ordered categories, and an
evaluator that fine-tunes on a composition and returns benchmark scores mapped to 0-100
(MME total / 2800 x 100, see :func:`mme_to_100`). For each category in order, every
candidate c is tried on its own: fine-tune on B ∪ {c}, evaluate, and accept c when
avg(B ∪ {c}) >= avg(B) - epsilon - TOLERANCE (epsilon = 0.5 points: "comparable" counts as a
keep; TOLERANCE = 1e-9 of the 0-100 scale absorbs float rounding, so an exact 0.5-point
drop such as 60.1 -> 59.6 is comparable). Then B <- B ∪ (all accepted of the category). The result is a
:class:`~hf_vitcurate.results.DriverSelection`: its dataset is the final composition's
datasets concatenated (in composition order), its manifest holds the composition, every
trial, the scores and the ids.

``evaluate`` receives names, not rows: a composition is identified (and cached, by the
caller's trainer too) by the sorted names of its datasets.

The paper evaluates candidates of one category against the same B (they are not added
one after another inside a category); ``sequential=True`` is the other reading, where an
accepted candidate joins B at once and later candidates of the category are tried on top.

Example:
    >>> from datasets import Dataset
    >>> sources = {n: Dataset.from_dict({"id": [n + "1", n + "2"]}) for n in "abc"}
    >>> scores = {(): 50.0, ("a",): 52.0, ("b",): 49.8, ("c",): 40.0, ("a", "b"): 53.0}
    >>> def evaluate(names):
    ...     return {"bench": scores.get(tuple(sorted(names)), 45.0)}
    >>> chosen, manifest = individual_select(sources, baseline=[], categories=[["a", "b", "c"]], evaluate=evaluate)
    >>> manifest["composition"], [t["accepted"] for t in manifest["trials"]], len(chosen)
    (['a', 'b'], [True, True, False], 4)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from datasets import Dataset, concatenate_datasets

from .. import provenance
from ..columns import ids_sha256, list_column
from ..errors import ConfigError
from ..results import DriverSelection

logger = logging.getLogger(__name__)

Evaluator = Callable[[list[str]], Mapping[str, float]]


TOLERANCE = 1e-9 * 100  # 1e-9 of the 0-100 scale: float rounding, not a real drop


def mme_to_100(mme_total: float) -> float:
    """MME total score (perception + cognition, at most 2800) on the 0-100 scale of the paper."""
    return mme_total / 2800.0 * 100.0


def average(scores: Mapping[str, float]) -> float:
    """Mean of the benchmark scores (each already on 0-100)."""
    if not scores:
        raise ConfigError("the evaluator returned no scores; evaluate(names) must return {benchmark: score}")
    bad = {k: v for k, v in scores.items() if not 0.0 <= float(v) <= 100.0}
    if bad:
        raise ConfigError(f"scores must be on 0-100 (map MME with mme_to_100): {bad}")
    return sum(float(v) for v in scores.values()) / len(scores)


def individual_select(
    sources: Mapping[str, Dataset],
    *,
    baseline: Sequence[str],
    categories: Sequence[Sequence[str]] | Mapping[str, Sequence[str]],
    evaluate: Evaluator,
    epsilon: float = 0.5,
    sequential: bool = False,
    cache: dict[tuple[str, ...], dict[str, float]] | None = None,
) -> DriverSelection:
    """Greedy dataset-level selection over ``sources`` (``{name: Dataset}``).

    ``evaluate(names)`` fine-tunes on the union of the named datasets and returns scores
    on 0-100. Results are cached by composition (order-free), so no composition is
    trained twice; pass ``cache`` to share it across calls (e.g. to resume). Returns the
    chosen datasets concatenated and a manifest with ``composition``, ``trials``,
    ``baseline_scores``, ``final_scores`` and ``params``.
    """
    named = list(categories.items() if isinstance(categories, Mapping)
                 else ((f"category_{i}", c) for i, c in enumerate(categories)))
    unknown = sorted(({n for _, c in named for n in c} | set(baseline)) - set(sources))
    if unknown:
        raise ConfigError(f"unknown dataset(s) {unknown}: sources has {sorted(sources)}")
    cache = {} if cache is None else cache

    def run(names: list[str]) -> dict[str, float]:
        key = tuple(sorted(names))
        if key not in cache:
            cache[key] = {k: float(v) for k, v in evaluate(sorted(names)).items()}
        return cache[key]

    current = list(dict.fromkeys(baseline))
    base_scores = run(current)
    trials = []
    for category, candidates in named:
        reference = run(current)
        accepted = []
        for cand in candidates:
            if cand in current:
                raise ConfigError(f"candidate {cand!r} of {category!r} is already in the composition {current}")
            trial_set = current + [cand]
            scores = run(trial_set)
            ok = average(scores) >= average(reference) - epsilon - TOLERANCE
            trials.append({
                "category": category, "candidate": cand, "composition": sorted(trial_set), "scores": scores,
                "average": round(average(scores), 4), "reference_average": round(average(reference), 4), "accepted": ok,
            })
            logger.info("%s: %s avg %.2f vs %.2f -> %s", category, cand, average(scores), average(reference),
                        "accept" if ok else "reject")
            if ok:
                accepted.append(cand)
                if sequential:
                    current = trial_set
                    reference = scores
        if not sequential:
            current = current + accepted
    params = {"epsilon": epsilon, "sequential": sequential, "baseline": list(baseline),
              "categories": {c: list(names) for c, names in named}}
    chosen = _concatenate(sources, current, params)
    ids = list_column(chosen, "id") if "id" in chosen.column_names else []
    manifest = {"method": "individual_select", "params": params, "seed": None,
                "n_pool": sum(len(d) for d in sources.values()), "n_selected": len(chosen),
                "ids_sha256": ids_sha256(ids), "ids": ids, "composition": current, "trials": trials,
                "baseline_scores": base_scores, "final_scores": run(current)}
    return DriverSelection.of(chosen, manifest)


def _concatenate(sources: Mapping[str, Dataset], names: list[str], params: dict[str, Any]) -> Dataset:
    """The named datasets concatenated in order (no rows for an empty composition), with provenance."""
    if not names:
        return next(iter(sources.values())).select([]) if sources else Dataset.from_dict({})
    parts = [sources[n] for n in names]
    out = provenance.with_steps(concatenate_datasets(parts), provenance.merge(parts))
    return provenance.record(out, "individual_select", kind="select", rows_in=sum(len(d) for d in sources.values()),
                             params={**params, "composition": names})


def trials_markdown(manifest: Mapping[str, Any]) -> str:
    """The trial table of an :func:`individual_select` manifest (the paper's Tables 4-5 style) as Markdown."""
    keys = sorted({k for t in manifest["trials"] for k in t["scores"]})
    lines = ["| category | candidate | " + " | ".join(keys) + " | avg | reference | accepted |",
             "|---" * (len(keys) + 5) + "|"]
    for t in manifest["trials"]:
        cells = [f"{t['scores'].get(k, float('nan')):.2f}" for k in keys]
        lines.append(f"| {t['category']} | {t['candidate']} | " + " | ".join(cells)
                     + f" | {t['average']:.2f} | {t['reference_average']:.2f} | {'yes' if t['accepted'] else 'no'} |")
    return "\n".join(lines)


def save_result(manifest: Mapping[str, Any], path: str) -> None:
    """Write an :func:`individual_select` manifest (composition, trials, parameters) as JSON."""
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
