"""MLLM-Selector end to end (SPEC §1): seed model, necessity, NBGS, seed ∪ drawn.

1. draw n1 rows uniformly (seeded) and fine-tune f_pre on them -> f_seed;
2. remove the seed rows from the pool and score the rest with f_seed (``necessity``);
3. draw n2 = m - n1 rows by NBGS; the selection is seed ∪ drawn;
4. (optional, outside this function) stage 2 fine-tunes f_seed on the selection.

Example:
    >>> result = mllm_selector(pool, budget=2000, base_model="runs/f_pre", work_dir="runs/mllm")  # doctest: +SKIP
    >>> len(result["selection"])                                                                # doctest: +SKIP
    2000
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from datasets import Dataset, concatenate_datasets

from .. import provenance
from .common import finish
from .nbgs import default_seed_size, nbgs


def seed_split(ds: Dataset, n_seed: int, seed: int = 0) -> tuple[Dataset, Dataset, dict[str, Any]]:
    """``(seed_rows, rest_of_pool, manifest)``: n_seed rows drawn uniformly, the rest kept in order."""
    if not 0 < n_seed <= len(ds):
        raise ValueError(f"n_seed={n_seed} must be between 1 and the pool size {len(ds)}")
    picked = np.random.default_rng(seed).choice(len(ds), size=n_seed, replace=False)
    seed_rows, manifest = finish(ds, picked, "mllm_selector_seed", params={"n_seed": n_seed}, seed=seed)
    rest_idx = np.setdiff1d(np.arange(len(ds)), picked)
    rest = provenance.record(ds.select(rest_idx), "remove_seed_rows", kind="select", rows_in=len(ds),
                             params={"n_seed": n_seed}, seed=seed, parent=ds)
    return seed_rows, rest, manifest


def mllm_selector(
    pool: Dataset,
    budget: int,
    base_model: str | os.PathLike,
    work_dir: str | os.PathLike,
    *,
    n_seed: int | None = None,
    k: int | None = None,
    tau: float = 1.0,
    standardize: bool = False,
    seed: int = 0,
    reduction: str = "sum",
    batch_size: int = 16,
    train_recipe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the method on ``pool`` for a budget m; returns selection, scored pool, f_seed, manifests.

    ``n_seed`` defaults to 15% of the budget (SPEC §1). ``train_recipe`` goes to
    :func:`hf_vitcurate.models.train` for the seed model (default: the package's tiny recipe
    on a tiny checkpoint, else the LLaVA defaults of ``train``).
    """
    from ..models import train
    from ..stages.necessity import necessity

    if not 0 < budget <= len(pool):
        raise ValueError(f"budget={budget} must be between 1 and the pool size {len(pool)}")
    n_seed = default_seed_size(budget) if n_seed is None else n_seed
    if n_seed > budget:
        raise ValueError(f"n_seed={n_seed} exceeds the budget {budget}")
    work_dir = os.fspath(work_dir)
    seed_rows, rest, seed_manifest = seed_split(pool, n_seed, seed=seed)
    f_seed = train(base_model, seed_rows, os.path.join(work_dir, "f_seed"), seed=seed, **(train_recipe or {}))
    scored = necessity(rest, f_seed, reduction=reduction, batch_size=batch_size,
                       out_dir=os.path.join(work_dir, "necessity"))
    drawn, nbgs_manifest = nbgs(scored, budget - n_seed, k=k, tau=tau, seed=seed, standardize=standardize)
    # Seed rows carry no necessity (they were not scored): NaN keeps one schema.
    seed_scored = seed_rows.map(
        lambda b: {"necessity": [float("nan")] * len(b["id"]), "necessity_tokens": [0] * len(b["id"]),
                   "necessity_flag": ["seed"] * len(b["id"])},
        batched=True, features=scored.features, desc="seed rows",
    )
    selection = concatenate_datasets([seed_scored, drawn])
    selection = provenance.with_steps(selection, provenance.steps(drawn))
    selection = provenance.record(selection, "mllm_selector", kind="select", rows_in=len(pool),
                                  params={"budget": budget, "n_seed": n_seed, "k": nbgs_manifest["params"]["k"],
                                          "tau": tau, "standardize": standardize, "reduction": reduction},
                                  model=f_seed, seed=seed)
    return {"selection": selection, "scored": scored, "seed_rows": seed_rows, "f_seed": f_seed,
            "manifest": {"seed": seed_manifest, "nbgs": nbgs_manifest, "budget": budget}}
