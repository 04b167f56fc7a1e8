"""``curate(pool, recipe)``: validate once, tag once, then build every output config of the recipe.

The pool's ground truth (ShapesWorld) never reaches a method: :func:`load_sources` sets it
aside and only the report reads it. The model-based outputs (``revo_lion``,
``mllm_selector``) start from one checkpoint, built once here (``model.checkpoint: tiny``)
or given. Outputs run in the recipe's order, except that a ``revo_lion`` output runs first:
its SQ scores feed a combination's ``quality`` step.

Example:
    >>> from hf_vitcurate.curation import parse_recipe
    >>> recipe = parse_recipe({"sources": {"shapesworld": {"n_images": 12}}, "stages": ["yes_no"],
    ...                        "outputs": {"rnd": {"method": "random_subset", "fraction": 0.5}}})
    >>> pool, truth = load_sources(recipe)
    >>> result = curate(pool, recipe, work_dir="unused")
    >>> dd, manifest = result["rnd"]
    >>> result.accounting["rnd"]["rows_in"] == result.accounting["rnd"]["kept"] + sum(result.accounting["rnd"]["removed"].values())
    True
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from datasets import Dataset, DatasetDict

from ..columns import list_column
from ..errors import RunError
from .outputs import Built, Context, build
from .recipe import Recipe, load_recipe, parse_recipe
from .summary import joined


@dataclass
class Curation:
    """What :func:`curate` made: ``curation[config]`` unpacks as ``(DatasetDict, manifest)``.

    Also ``pool`` (validated and tagged), ``rejected`` (validation's rejected rows),
    ``rows_in``, ``accounting`` (per config: rows in, kept, removed by step), ``model`` and ``timings``.
    """

    outputs: dict[str, tuple[DatasetDict, dict[str, Any]]]
    pool: Dataset
    rejected: Dataset
    rows_in: int
    accounting: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, config: str) -> tuple[DatasetDict, dict[str, Any]]:
        return self.outputs[config]

    def __iter__(self):
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)


def as_recipe(recipe: Recipe | dict | str | os.PathLike) -> Recipe:
    """A :class:`Recipe` from a parsed recipe, a mapping, a YAML file or a built-in name."""
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        return parse_recipe(recipe)
    return load_recipe(recipe)


def load_sources(recipe: Recipe | dict | str | os.PathLike) -> tuple[Dataset, dict[str, str] | None]:
    """``(pool, truth)``: every source of the recipe in one Dataset, and ShapesWorld's truth (else ``None``)."""
    from ..formats import load_vit
    from ..synthetic import pool_and_truth

    recipe = as_recipe(recipe)
    parts, truth = [], None
    for src in recipe.sources:
        if src.kind == "shapesworld":
            ds, t = pool_and_truth(src.n_images, seed=src.seed, **src.options)
            truth = {**(truth or {}), **t}
        else:
            # The recipe's name becomes the rows' source: the card's license table matches on it.
            ds = load_vit(src.path, format=src.format, image_root=src.image_root, source=src.name)
        parts.append(ds)
    return joined(parts), truth


def curate(
    pool: Dataset,
    recipe: Recipe | dict | str | os.PathLike,
    *,
    work_dir: str | os.PathLike = "vitcurate_out/work",
    say: Callable[[str], None] | None = None,
) -> Curation:
    """Validate ``pool``, run the recipe's stages once, then build each output config.

    Returns a :class:`Curation`: ``curation["svit_core"]`` is ``(DatasetDict, manifest)``.
    ``say`` gets one progress line per stage and output (default: silent).
    Rows in = kept + rejected: validation's rejected rows are ``curation.rejected``.
    """
    from .. import stages as stage_functions
    from ..schema import validate

    recipe = as_recipe(recipe)
    say = say or (lambda _msg: None)
    work_dir = os.fspath(work_dir)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    kept, rejected = validate(pool)
    if len(kept) + len(rejected) != len(pool):  # the one accounting every later count rests on
        raise RunError(f"validate: {len(pool)} rows in, {len(kept)} kept + {len(rejected)} rejected; please report this bug")
    timings["validate"] = _lap(t)
    say(f"validate: {len(pool)} rows -> kept {len(kept)}, rejected {len(rejected)} ({timings['validate']:.1f} s)")
    tagged = kept
    for step in recipe.stages:
        t = time.perf_counter()
        tagged = getattr(stage_functions, step.name)(tagged, **step.options)
        timings[step.name] = _lap(t)
        say(f"stage {step.name}: {len(tagged)} rows tagged ({timings[step.name]:.1f} s)")
    context = Context(work_dir=work_dir, say=say)
    if recipe.needs_model():
        t = time.perf_counter()
        context.model = starting_model(tagged, recipe, work_dir=work_dir)
        timings["model"] = _lap(t)
        say(f"model: {context.model} ({timings['model']:.1f} s)")
    result = Curation(outputs={}, pool=tagged, rejected=rejected, rows_in=len(pool), model=context.model, timings=timings)
    for name in run_order(recipe):
        t = time.perf_counter()
        spec = recipe.outputs[name]
        context.work_dir = output_work_dir(work_dir, name, tagged, context.model, spec)
        built: Built = build(tagged, spec, context)
        result.outputs[name] = (built.splits, {**built.manifest, "accounting": built.accounting})
        result.accounting[name] = built.accounting
        timings[name] = _lap(t)
        rows = {s: len(d) for s, d in built.splits.items()}
        say(f"output {name}: {sum(rows.values())} rows {rows} ({timings[name]:.1f} s)")
    result.outputs = {name: result.outputs[name] for name in recipe.outputs}  # the recipe's order
    return result


def run_order(recipe: Recipe) -> list[str]:
    """Output names, ``revo_lion`` outputs first (a ``recommended`` output's quality step reads their SQ)."""
    names = list(recipe.outputs)
    return [n for n in names if recipe.outputs[n].method == "revo_lion"] + [
        n for n in names if recipe.outputs[n].method != "revo_lion"]


def starting_model(pool: Dataset, recipe: Recipe, *, work_dir: str) -> str:
    """The checkpoint the model-based outputs start from: a tiny one built on ``pool``, or the recipe's.

    The tiny model's folder is named after what decides it (the pool's ids, the seed, the
    options, the package version), so a rerun with other inputs builds beside it instead of
    being refused, and a rerun with the same ones reuses it (the user cache makes a rebuild cheap).
    """
    options = dict(recipe.model)
    checkpoint = options.pop("checkpoint", "tiny")
    if checkpoint != "tiny":
        return checkpoint
    import logging
    import shutil

    from .. import __version__
    from ..columns import ids_sha256
    from ..errors import StaleStateError
    from ..identity import params_fingerprint
    from ..testing import train_tiny

    seed = options.pop("seed", recipe.sources[0].seed)
    captions = pool.filter(lambda t: t == "caption", input_columns="task") if "task" in pool.column_names else None
    key = params_fingerprint({"ids": ids_sha256(pool), "seed": seed, "options": options, "version": __version__})[:16]
    folder = os.path.join(work_dir, "models", key)
    try:
        return train_tiny(pool, work_dir=folder, seed=seed, captions=captions, **{"progress": False, **options})
    except StaleStateError as err:  # same inputs, other code (an upgrade): the folder is ours to rebuild
        logging.getLogger(__name__).warning("rebuilding the tiny model in %s (%s)", folder, err)
        shutil.rmtree(folder)
        return train_tiny(pool, work_dir=folder, seed=seed, captions=captions, **{"progress": False, **options})


def output_work_dir(work_dir: str, name: str, pool: Dataset, model: str | None, spec: Any) -> str:
    """``work_dir/<config>/<key>``: an output's resumable state, keyed by its pool, model and recipe entry.

    A rerun of the same output resumes or reuses it; other inputs get their own folder
    (the selections refuse a folder of other inputs).
    """
    from dataclasses import asdict

    from ..columns import ids_sha256
    from ..identity import params_fingerprint

    key = params_fingerprint({"ids": ids_sha256(pool), "model": model, "output": asdict(spec)})[:16]
    return os.path.join(work_dir, name, key)


def _lap(t: float) -> float:
    return round(time.perf_counter() - t, 1)


def source_counts(ds: Dataset) -> dict[str, int]:
    """Rows per ``source``."""
    names = list_column(ds, "source") if "source" in ds.column_names else []
    return {n: names.count(n) for n in sorted(set(names))}
