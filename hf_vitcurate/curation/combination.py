"""The recommended combination: the recipe's steps in order, each step's removed rows counted.

Steps (names of :data:`~hf_vitcurate.curation.recipe.STEPS`):

- ``cleanup``: drop rows a flag column marks (``where``, default ``leakage``: answers citing
  the annotation source; the stage runs here if the pool has no such column);
- ``near_duplicates``: keep one row of each group of rows with the same images and nearly
  the same text (MinHash; options of :func:`hf_vitcurate.stages.near_duplicates`);
- ``quality``: keep the top ``fraction`` (default 0.8) per source by ``column`` (default
  ``sq``, REVO-LION's sample quality, averaged over a row's turns, from the ``revo_lion`` output);
- ``diversity`` / ``balance``: SVIT's steps (:func:`hf_vitcurate.select.diversity`,
  :func:`hf_vitcurate.select.balance`) down to the budget.

Rows left above the budget at the end are drawn uniformly (``not selected``).

Example:
    >>> from datasets import Dataset
    >>> from hf_vitcurate.curation.outputs import Context
    >>> from hf_vitcurate.curation.recipe import Output, Step
    >>> conv = lambda a: [{"from": "human", "value": "<image>Q?"}, {"from": "gpt", "value": a}]
    >>> pool = Dataset.from_dict({"id": list("abcd"), "conversations": [conv("Red."), conv("See the caption."),
    ...     conv("Blue."), conv("Green.")]})
    >>> built = combination(pool, Output("rec", "recommended", n=2, steps=[Step("cleanup")]), Context(work_dir="."))
    >>> built.accounting
    {'rows_in': 4, 'kept': 2, 'removed': {'cleanup': 1, 'not selected': 1}}
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset, DatasetDict

from ..columns import list_column
from ..errors import ConfigError
from .outputs import Built, Context, account
from .recipe import Output, Step


def combination(pool: Dataset, output: Output, context: Context) -> Built:
    """Run ``output.steps`` on ``pool`` down to ``output``'s budget; the manifest lists each step."""
    from ..select import random_subset

    budget = output.budget(len(pool))
    ds, removed, steps = pool, {}, []
    for i, step in enumerate(output.steps):
        before = len(ds)
        ds = STEP_FUNCTIONS[step.name](ds, step, budget=budget, seed=output.seed, context=context,
                                       where=f"outputs.{output.name}.steps[{i}].{step.name}")
        removed[step.name] = removed.get(step.name, 0) + before - len(ds)
        steps.append({"step": step.name, "options": step.options, "rows_in": before, "rows_out": len(ds)})
        if context.say:
            context.say(f"  {output.name}: {step.name} {before} -> {len(ds)} rows")
    if budget is not None and len(ds) > budget:
        ds, _ = random_subset(ds, n=budget, seed=output.seed)
    manifest = {"method": "recommended", "n_pool": len(pool), "n_selected": len(ds), "budget": budget,
                "seed": output.seed, "steps": steps}
    return Built(DatasetDict({"train": ds}), manifest, account(len(pool), len(ds), removed))


def _cleanup(ds: Dataset, step: Step, *, where: str, **_: Any) -> Dataset:
    from ..stages import leakage, reject

    column = step.options.get("where", "leakage")
    if column not in ds.column_names:
        if column != "leakage":
            raise ConfigError(f"{where}.where: the pool has no column {column!r}; run the stage that adds it")
        ds = leakage(ds)
    kept, _ = reject(ds, where=column, values=step.options.get("values"))
    return kept


def _near_duplicates(ds: Dataset, step: Step, **_: Any) -> Dataset:
    from ..stages import near_duplicates

    kept, _ = near_duplicates(ds, **step.options)
    return kept


def _quality(ds: Dataset, step: Step, *, context: Context, where: str, **_: Any) -> Dataset:
    from ..select import s1

    column = step.options.get("column", "sq")
    if column not in ds.column_names:
        if column not in context.scores:
            raise ConfigError(f"{where}.column: no {column!r} scores (run the revo_lion output first, or pick a column "
                              "the pool has)")
        scores = context.scores[column]
        known = [v for v in scores.values()]
        fill = sum(known) / len(known) if known else 0.0  # an unscored row ranks as an average one
        ds = ds.add_column(column, [scores.get(i, fill) for i in list_column(ds, "id")])
    by = step.options.get("by", "source")
    kept, _ = s1(ds, fraction=float(step.options.get("fraction", 0.8)), by=by, column=column)
    return kept


def _diversity(ds: Dataset, step: Step, *, budget: int | None, seed: int, **_: Any) -> Dataset:
    from ..select import diversity

    n = min(budget or len(ds), len(ds))
    kept, _ = diversity(ds, n=n, seed=seed, **step.options)
    return kept


def _balance(ds: Dataset, step: Step, *, budget: int | None, seed: int, **_: Any) -> Dataset:
    from ..select import balance

    n = min(budget or len(ds), len(ds))
    kept, _ = balance(ds, n=n, seed=seed, **step.options)
    return kept


STEP_FUNCTIONS = {
    "cleanup": _cleanup,
    "near_duplicates": _near_duplicates,
    "quality": _quality,
    "diversity": _diversity,
    "balance": _balance,
}
