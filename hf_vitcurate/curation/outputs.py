"""One builder per output method: ``(pool, output, context) -> Built`` (the config's splits, manifest, accounting).

Every builder accounts for its rows: ``rows_in`` (the pool it drew from) equals the rows
kept in the config plus the rows each step removed plus the rows not selected, so the
card and the summary can say where every row went.

Example:
    >>> from datasets import Dataset
    >>> from hf_vitcurate.curation.recipe import Output
    >>> pool = Dataset.from_dict({"id": [str(i) for i in range(10)]})
    >>> built = build(pool, Output("rnd", "random_subset", n=4), Context(work_dir="unused"))
    >>> built.accounting
    {'rows_in': 10, 'kept': 4, 'removed': {'not selected': 6}}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset, DatasetDict

from ..columns import list_column
from ..errors import ConfigError
from ..formats.explode import row_id
from .recipe import Output



@dataclass
class Context:
    """What builders share: ``work_dir`` (this output's models and chunks), the starting ``model``, scores made by
    earlier outputs."""

    work_dir: str
    model: str | None = None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # column -> {row id: value}
    say: Any = None


@dataclass
class Built:
    """A built config: its splits, its manifest, and where its rows went."""

    splits: DatasetDict
    manifest: dict[str, Any]
    accounting: dict[str, Any]


def build(pool: Dataset, output: Output, context: Context) -> Built:
    """Run ``output``'s method on ``pool``."""
    if output.method == "recommended":
        from .combination import combination  # it builds on this module's helpers

        return combination(pool, output, context)
    return BUILDERS[output.method](pool, output, context)


def account(rows_in: int, kept: int, removed: dict[str, int]) -> dict[str, Any]:
    removed = {**removed, "not selected": rows_in - kept - sum(removed.values())}
    removed = {k: v for k, v in removed.items() if v or k != "not selected"}
    return {"rows_in": rows_in, "kept": kept, "removed": removed}


def _random(pool: Dataset, output: Output, context: Context) -> Built:
    from ..select import random_subset

    sel, manifest = random_subset(pool, n=output.budget(len(pool)), seed=output.seed)
    return Built(DatasetDict({"train": sel}), manifest, account(len(pool), len(sel), {}))


def _core(pool: Dataset, output: Output, context: Context) -> Built:
    from ..select import core

    sel, manifest = core(pool, n=output.budget(len(pool)), seed=output.seed, **output.options)
    return Built(DatasetDict({"train": sel}), manifest, account(len(pool), len(sel), {}))


def _taxonomy(pool: Dataset, output: Output, context: Context) -> Built:
    """MMInstruct style: domain and instruction type columns, one split per instruction type."""
    from ..select import random_subset
    from ..stages import taxonomy

    ds = pool if "instruction_type" in pool.column_names else taxonomy(pool, **output.options)
    n = output.budget(len(ds))
    manifest: dict[str, Any] = {"method": "mminstruct_style", "params": dict(output.options)}
    if n is not None:
        ds, manifest["selection"] = random_subset(ds, n=n, seed=output.seed)
    types = list_column(ds, "instruction_type")
    splits = {}
    for name in sorted(set(types)):
        idx = [i for i, t in enumerate(types) if t == name]
        splits[name] = ds.select(idx)
    manifest["per_type"] = {k: len(v) for k, v in splits.items()}
    manifest["per_domain"] = {d: list_column(ds, "domain").count(d) for d in sorted(set(list_column(ds, "domain")))}
    return Built(DatasetDict(splits), manifest, account(len(pool), len(ds), {}))


def _mllm_selector(pool: Dataset, output: Output, context: Context) -> Built:
    from ..select import mllm_selector
    from ..testing import tiny_recipe

    options = dict(output.options)
    train = options.pop("train", {})
    recipe = tiny_recipe(**{"progress": False, **train}) if _is_tiny(context.model) else (train or None)
    result = mllm_selector(pool, n=output.budget(len(pool)), model=context.model, seed=output.seed, recipe=recipe,
                           work_dir=context.work_dir, **options)
    sel, manifest = result
    # The seed model's necessity of every scored row, for a later combination's quality step.
    context.scores["necessity"] = row_scores(result.scored, "necessity")
    return Built(DatasetDict({"train": sel}), manifest, account(len(pool), len(sel), {}))


def _release(pool: Dataset, output: Output, context: Context) -> Built:
    """REVO-LION: tune-cross-evaluation over protocol datasets (``groups`` of sources), then the release.

    Long because it groups the sources, trains and answers, and passes the SQ scores on to later outputs.
    """
    from ..select import release
    from ..select.revolion_driver import default_recipe, tune_cross_evaluate

    options = dict(output.options)
    groups = options.pop("groups", None)
    train = options.pop("train", {})
    eval_size = options.pop("eval_size", 600)
    release_options = {k: options.pop(k) for k in ("threshold", "column") if k in options}
    sources = protocol_datasets(pool, groups, where=f"outputs.{output.name}.options.groups")
    recipe = {**default_recipe(context.model), "progress": False, **train}
    options.setdefault("batch_size", 32)
    result = tune_cross_evaluate(sources, model=context.model, work_dir=context.work_dir,
                                 recipe=recipe, seed=output.seed, **options)
    scored, cross = result
    parts, manifest = release(scored, fraction=output.fraction or 0.7, eval_size=eval_size, seed=output.seed,
                              by=cross["by"], **release_options)
    manifest = {**manifest, "dq": cross["dq"], "trained": cross["trained"], "reused": cross["reused"],
                "cached": cross.get("cached", []),
                "groups": {k: sorted(set(list_column(v, "source"))) for k, v in sources.items()},
                "unit": "turn" if options.get("explode", True) else "row (last turn scored)",
                "dq_heatmap": os.path.join(context.work_dir, "dq_heatmap.png")}
    context.scores["sq"] = row_scores(scored, "sq")
    kept = sum(len(d) for d in parts.values())
    return Built(DatasetDict(dict(parts)), manifest, account(len(scored), kept, {}))


def protocol_datasets(pool: Dataset, groups: dict[str, list[str]] | None, *, where: str) -> dict[str, Dataset]:
    """``{group: rows}``: each group's sources together; ``"*"`` in a group takes every source no group names;
    otherwise a source in no group is its own dataset.

    >>> pool = Dataset.from_dict({"source": ["a", "b", "c", "d"]})
    >>> {k: len(v) for k, v in protocol_datasets(pool, {"x": ["a", "b"], "y": ["*"]}, where="groups").items()}
    {'x': 2, 'y': 2}
    """
    sources = list_column(pool, "source")
    owner: dict[str, str] = {}
    rest = None
    for group, members in dict(groups or {}).items():
        if not isinstance(members, list):
            raise ConfigError(f"{where}.{group}: expected a list of source names, got {members!r}")
        for m in members:
            if m == "*":
                rest = str(group)
            else:
                owner[m] = str(group)
    for s in sources:
        owner.setdefault(s, rest or s)
    out: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        out.setdefault(owner[s], []).append(i)
    return {g: pool.select(idx) for g, idx in sorted(out.items())}


def row_scores(scored: Dataset, column: str) -> dict[str, float]:
    """``{row id: mean score over its turns}`` (REVO-LION scores turns, ids ``{id}#t{k}``)."""
    sums: dict[str, list[float]] = {}
    for i, v in zip(list_column(scored, "id"), list_column(scored, column)):
        if v is not None:
            sums.setdefault(row_id(i), []).append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def _is_tiny(model: str | None) -> bool:
    return model is not None and os.path.isfile(os.path.join(model, "tiny_architecture.json"))


BUILDERS = {
    "random_subset": _random,
    "svit_core": _core,
    "mminstruct_style": _taxonomy,
    "mllm_selector": _mllm_selector,
    "revo_lion": _release,
}
