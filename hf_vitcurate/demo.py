"""The main job on the embedded default: ``vitcurate demo`` is ``vitcurate curate`` with the built-in ShapesWorld recipe.

:func:`run_demo` draws a ShapesWorld pool (its ground truth set aside for the report
only), validates it, tags it once (concepts, yes/no, leakage, MMInstruct taxonomy),
builds a tiny LLaVA checkpoint, and curates the pool into every config of the built-in
recipe (``hf_vitcurate/curation/recipes/shapesworld.yaml``): ``revo_lion`` (Tune and Eval),
``svit_core``, ``mminstruct_style`` (a split per instruction type), ``mllm_selector`` and
``recommended``. It publishes them as one local Hub-layout repo with one card (a section
per config, the report, ``recipe.yaml`` beside it) and returns the summary, whose
``table`` compares each config's degraded share with the pool's and with random draws.

Example:
    >>> summary = run_demo(output_dir="vitcurate_out", n_images=120)   # doctest: +SKIP
    >>> print(summary["table"])                                        # doctest: +SKIP
"""

from __future__ import annotations

import copy
from typing import Any

import yaml


def demo_recipe(*, n_images: int | None = None, fraction: float | None = None, seed: int | None = None,
                repo_id: str | None = None, outputs: list[str] | None = None):
    """The built-in ShapesWorld recipe with the demo's overrides (``None``: the recipe's own value).

    ``outputs`` keeps only the named configs (``["svit_core", "recommended"]``: no model to
    build).

    >>> sorted(demo_recipe(outputs=["svit_core"], fraction=0.2).outputs)
    ['svit_core']
    """
    from .curation import builtin, parse_recipe
    from .curation.recipe import BUDGETED  # the methods whose budget `fraction` overrides
    from .errors import ConfigError

    if fraction is not None and not 0 < fraction <= 1:  # named as the user gave it, not as recipe keys
        raise ConfigError(f"fraction: expected a number in (0, 1], got {fraction}")
    text = builtin("shapesworld")
    data = yaml.safe_load(text)
    changed = copy.deepcopy(data)
    world = changed["sources"]["shapesworld"]
    if n_images is not None:
        world["n_images"] = n_images
    if outputs is not None:
        unknown = sorted(set(outputs) - set(changed["outputs"]))
        if unknown:
            raise ConfigError(f"outputs: no config {unknown[0]!r} in the built-in recipe; "
                              f"choose from {list(changed['outputs'])}")
        changed["outputs"] = {k: v for k, v in changed["outputs"].items() if k in outputs}
    for spec in changed["outputs"].values():
        if seed is not None:
            spec["seed"] = seed
        if fraction is not None and spec["method"] in BUDGETED:
            spec.pop("n", None)
            spec["fraction"] = fraction
    if seed is not None:
        world["seed"] = seed
    if repo_id is not None:
        changed["publish"]["repo_id"] = repo_id
    if changed == data:
        return parse_recipe(data, text=text)  # the commented file, as users copy it
    note = "# The built-in ShapesWorld recipe with vitcurate demo's options applied.\n"
    return parse_recipe(changed, text=note + yaml.safe_dump(changed, sort_keys=False))


def run_demo(
    *,
    output_dir: str = "vitcurate_out",
    work_dir: str | None = None,
    n_images: int | None = None,
    fraction: float | None = None,
    seed: int | None = None,
    repo_id: str | None = None,
    outputs: list[str] | None = None,
) -> dict[str, Any]:
    """Run the built-in ShapesWorld recipe in ``output_dir``; return the summary (also in ``summary.json``).

    ``n_images``, ``fraction`` (the budget of every budgeted config), ``seed`` and
    ``repo_id`` override the recipe's values; ``None`` keeps them. ``outputs``: only these
    configs (see :func:`demo_recipe`). ``work_dir`` (default ``output_dir/work``): models,
    answers and scores, reused by a rerun with the same inputs.
    """
    from .curation.job import run_recipe
    from .progress import say

    recipe = demo_recipe(n_images=n_images, fraction=fraction, seed=seed, repo_id=repo_id, outputs=outputs)
    return run_recipe(recipe, output_dir=output_dir, work_dir=work_dir, say=say("vitcurate demo"))
