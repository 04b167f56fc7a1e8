"""MLLM-Selector end to end: seed model, necessity, NBGS, seed ∪ drawn.

From *MLLM-Selector: Necessity and Diversity-driven High-Value Data Selection for Enhanced
Visual Instruction Tuning* (arXiv:2503.20502); the choices are in docs/methods.md.

1. draw n1 rows uniformly (seeded) and fine-tune ``model`` (f_pre) on them -> f_seed;
2. remove the seed rows from the pool and score the rest with f_seed (``necessity``);
   rows f_seed cannot score (no answer token within ``max_length``, an image that does not
   decode, a row failing in the model) have no score: they are set aside (``stages.reject``,
   their ``necessity_flag`` as the reason) and counted in the manifest and
   the provenance (rows in = selected + set aside + not selected);
3. draw n2 = m - n1 rows by NBGS from the scored rows; the selection is seed ∪ drawn;
4. (optional, outside this function) stage 2 fine-tunes f_seed on the selection.

Example:
    >>> result = mllm_selector(pool, n=2000, model="runs/f_pre", work_dir="runs/mllm")  # doctest: +SKIP
    >>> selection, manifest = result                                                   # doctest: +SKIP
    >>> len(selection), result.f_seed                                                   # doctest: +SKIP
    (2000, 'runs/mllm/f_seed')
    >>> manifest["set_aside"], len(result.set_aside)                                   # doctest: +SKIP
    ({}, 0)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from datasets import Dataset, concatenate_datasets

from .. import provenance
from ..columns import ids_sha256, list_column
from ..errors import ConfigError, StaleStateError
from ..results import DriverSelection, Split
from .common import finish, size
from .revolion_driver import default_recipe
from .nbgs import default_seed_size, nbgs, preset_values


def seed_split(ds: Dataset, *, n_seed: int, seed: int = 0) -> tuple[Dataset, Dataset, dict[str, Any]]:
    """``(seed_rows, rest_of_pool, manifest)``: n_seed rows drawn uniformly, the rest kept in order."""
    if not 0 < n_seed <= len(ds):
        raise ConfigError(f"n_seed={n_seed} must be between 1 and the pool size {len(ds)}")
    picked = np.random.default_rng(seed).choice(len(ds), size=n_seed, replace=False)
    seed_rows, manifest = finish(ds, picked, "mllm_selector_seed", params={"n_seed": n_seed}, seed=seed)
    rest_idx = np.setdiff1d(np.arange(len(ds)), picked)
    rest = provenance.record(ds.select(rest_idx), "remove_seed_rows", kind="select", rows_in=len(ds),
                             params={"n_seed": n_seed}, seed=seed, parent=ds)
    return seed_rows, rest, manifest


def mllm_selector(
    pool: Dataset,
    *,
    n: int | None = None,
    fraction: float | None = None,
    model: str | os.PathLike,
    work_dir: str | os.PathLike,
    n_seed: int | None = None,
    k: int | None = None,
    tau: float = 1.0,
    standardize: bool = False,
    seed: int = 0,
    reduction: str = "sum",
    sign: str = "nll",
    max_length: int | None = 2048,
    dtype: str = "auto",
    batch_size: int = 16,
    recipe: dict[str, Any] | None = None,
    restart: bool = False,
    quotas: str = "proportional",
    preset: str | None = None,
    cache: bool | None = None,
) -> DriverSelection:
    """Select a budget m of ``n`` rows (or a ``fraction`` of ``pool``) by MLLM-Selector.

    ``model`` is f_pre; f_seed is trained into ``work_dir/f_seed`` and necessity chunks are
    kept in ``work_dir/necessity`` (a rerun with the same inputs resumes; ``restart=True``
    starts over). A ``work_dir`` whose f_seed was trained from another pool, model or
    recipe is never reused: :class:`~hf_vitcurate.errors.StaleStateError` says what changed.
    ``n_seed`` defaults to 15% of the budget. ``quotas`` goes to :func:`nbgs` (``"equal"``:
    n2 / N per group, the paper's literal reading); ``preset="paper"`` fills the paper's
    n1 = 100k and k = 50k (:data:`~hf_vitcurate.select.nbgs.PAPER_PRESET`) where ``n_seed``
    or ``k`` is None. ``reduction``, ``sign``, ``max_length``, ``dtype`` and ``batch_size``
    go to :func:`~hf_vitcurate.stages.necessity`. ``recipe``: the options of
    :func:`hf_vitcurate.models.train` for the seed model; None: the ``tiny`` preset when
    ``model`` is a tiny checkpoint (a folder with ``tiny_architecture.json``), else the
    LLaVA defaults (:func:`~hf_vitcurate.select.revolion_driver.default_recipe`); ``seed``
    is used unless the recipe holds its own. ``cache``: see :func:`seed_model` (off: ``cache=False``). Returns a
    :class:`~hf_vitcurate.results.DriverSelection` (unpacks as ``(selection, manifest)``)
    with ``.f_seed`` (the seed checkpoint), ``.scored`` (the pool without the seed rows,
    with ``necessity``), ``.seed_rows`` and ``.set_aside`` (the scored rows without a
    score, with ``reject_reason``; the manifest's ``set_aside`` counts them per kind of reason).
    """
    from ..models.cache import cached_stage
    from ..stages.flags import flag_counts
    from ..stages.necessity import necessity

    n_seed, k = preset_values(preset, n_seed=n_seed, k=k)
    budget = size(len(pool), n=n, fraction=fraction)
    if budget < 1:
        raise ConfigError(f"the budget m={budget} must be at least 1 row")
    n_seed = default_seed_size(budget) if n_seed is None else n_seed
    if n_seed > budget:
        raise ConfigError(f"n_seed={n_seed} exceeds the budget m={budget}: lower n_seed or raise n")
    work_dir = os.fspath(work_dir)
    seed_rows, rest, seed_manifest = seed_split(pool, n_seed=n_seed, seed=seed)
    f_seed, how = seed_model(seed_rows, model=model, work_dir=work_dir, recipe=recipe, seed=seed, restart=restart,
                             cache=cache)
    scored = cached_stage(necessity, rest, model=f_seed, work_dir=os.path.join(work_dir, "necessity"), cache=cache,
                          restart=restart, reduction=reduction, sign=sign, max_length=max_length, dtype=dtype,
                          batch_size=batch_size)
    scorable, set_aside = set_unscored_aside(scored)
    # By kind (image_error, model_error, no_response_tokens): a reason's row-specific text never adds a key.
    set_aside_counts = flag_counts(set_aside, "reject_reason")
    drawn, nbgs_manifest = nbgs(scorable, n=budget - n_seed, k=k, tau=tau, seed=seed, standardize=standardize,
                                quotas=quotas)
    selection = concatenate_datasets([unscored_seed_rows(seed_rows, scored.features), drawn])
    selection = provenance.with_steps(selection, provenance.steps(drawn))
    params = {"n": budget, "fraction": fraction, "n_seed": n_seed, "k": nbgs_manifest["params"]["k"], "tau": tau,
              "standardize": standardize, "quotas": quotas, "preset": preset, "reduction": reduction, "sign": sign,
              "max_length": max_length, "dtype": str(dtype), "model": os.fspath(model), "set_aside": set_aside_counts}
    selection = provenance.record(selection, "mllm_selector", kind="select", rows_in=len(pool), params=params,
                                  model=f_seed, seed=seed)
    ids = list_column(selection, "id")
    manifest = {"method": "mllm_selector", "params": params, "seed": seed, "n_pool": len(pool),
                "n_selected": len(selection), "n_set_aside": len(set_aside), "set_aside": set_aside_counts,
                "n_not_selected": len(pool) - len(selection) - len(set_aside), "ids_sha256": ids_sha256(ids),
                "ids": ids, "f_seed": f_seed, "f_seed_cached": how == "cached", "seed_rows": seed_manifest, "nbgs": nbgs_manifest}
    return DriverSelection.of(selection, manifest, f_seed=f_seed, scored=scored, seed_rows=seed_rows,
                              set_aside=set_aside)


def seed_model(seed_rows: Dataset, *, model, work_dir: str, recipe: dict[str, Any] | None, seed: int,
               restart: bool, cache: bool | None = None) -> tuple[str, str]:
    """``(f_seed, how)``: ``model`` fine-tuned on ``seed_rows`` into ``work_dir/f_seed`` (reused for the same inputs).

    ``how``: ``"found"`` (already in ``work_dir``), ``"cached"`` (copied from the model cache,
    :func:`hf_vitcurate.models.cache.train_or_reuse`) or ``"trained"``. :func:`mllm_selector`'s
    ``cache`` (default on; off with ``cache=False`` or ``HF_VITCURATE_TINY_CACHE=0``) sends f_seed
    and the necessity chunks (``models.cache.cached_stage``) through the package's cache, keyed
    by content, so a rerun into a new ``work_dir`` trains and scores nothing (manifest
    ``f_seed_cached``). A ``work_dir`` holding a
    seed model of another pool, model or recipe raises
    :class:`~hf_vitcurate.errors.StaleStateError` naming what changed (never the old model).
    """
    from ..models.cache import train_or_reuse

    try:
        return train_or_reuse(seed_rows, model=model, output_dir=os.path.join(work_dir, "f_seed"), restart=restart,
                              cache=cache, **{"seed": seed, **dict(default_recipe(model) if recipe is None else recipe)})
    except StaleStateError as err:  # said in this function's terms: its folder is work_dir
        changed = err.changed or str(err)
        raise StaleStateError(f"work_dir {work_dir!r} holds a seed model (f_seed) of other inputs: {changed}; "
                              "use restart=True or another work_dir") from None


def unscored_seed_rows(seed_rows: Dataset, features) -> Dataset:
    """The seed rows with the scored rows' ``features``: they were not scored, so NaN necessity (one schema)."""
    return seed_rows.map(
        lambda b: {"necessity": [float("nan")] * len(b["id"]), "necessity_tokens": [0] * len(b["id"]),
                   "necessity_flag": ["seed"] * len(b["id"])},
        batched=True, features=features, desc="seed rows",
    )


def set_unscored_aside(scored: Dataset) -> Split:
    """``(scored rows, set aside)``: rows the seed model could not score have no ``necessity``.

    NBGS ranks scores, so those rows (no answer token within ``max_length``:
    ``no_response_tokens``; an image that does not decode: ``image_error: ...``; a row that
    fails in the model: ``model_error: ...``) are split off by
    :func:`hf_vitcurate.stages.reject`, their flag as the reason.
    """
    from ..stages.necessity import unscored_flags
    from ..stages.reject import reject

    return reject(scored, where="necessity_flag", values=unscored_flags(scored))
