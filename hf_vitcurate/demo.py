"""The main job on the embedded default: ShapesWorld -> validate -> scores -> selection -> Hub layout.

``vitcurate demo`` runs :func:`run_demo`: it draws a ShapesWorld pool, validates it
(bad rows go to ``rejected`` with reasons), tags it with the SVIT columns (concepts,
informativeness, yes/no, leakage), builds a tiny LLaVA checkpoint and pretrains it,
runs MLLM-Selector (seed model, ``necessity``, NBGS) for a share ``fraction`` of the pool, and publishes the
selection with its card as a local Hub-layout dataset. The ground truth of ShapesWorld is
set aside before anything runs and used only at the end, to report how many degraded rows
the selection kept.

Example:
    >>> summary = run_demo(output_dir="vitcurate_out", n_images=120)   # doctest: +SKIP
    >>> summary["selected"]                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from datasets import DatasetDict

logger = logging.getLogger(__name__)


def _say(msg: str) -> None:
    from .progress import quiet

    if not quiet():  # vitcurate -q: the closing summary only
        print(f"[vitcurate demo] {msg}", flush=True)


def run_demo(
    *,
    output_dir: str = "vitcurate_out",
    n_images: int = 160,
    fraction: float = 0.25,
    seed: int = 0,
    repo_id: str = "local/shapesworld-mllm-selector",
) -> dict[str, Any]:
    """Run the whole pipeline on ShapesWorld in ``output_dir``; select ``fraction`` of the pool; return a summary."""
    from . import validate
    from .columns import list_column
    from .hub import publish
    from .select.mllm_selector import mllm_selector
    from .stages import concepts, leakage, yes_no
    from .synthetic import degraded_share, pool_and_truth
    from .testing import tiny_recipe, train_tiny

    t0 = time.time()
    os.makedirs(output_dir, exist_ok=True)
    # The ground truth is set aside before anything runs: no method reads it.
    pool, truth = pool_and_truth(n_images, seed=seed)
    sources = sorted(set(list_column(pool, "source")))
    _say(f"ShapesWorld: {len(pool)} rows from {len(sources)} sources ({', '.join(sources)}), {n_images} images")

    kept, rejected = validate(pool)
    _say(f"validate: kept {len(kept)}, rejected {len(rejected)}")

    tagged = leakage(yes_no(concepts(kept)))
    _say("SVIT tags: concepts, concept_counts, informativeness, yes_no, leakage")

    captions = tagged.filter(lambda t: t == "caption", input_columns="task")
    # A tiny LLaVA: tokenizer on the pool's text, vision tower pretrained on ShapesWorld cells
    # (the stand-in for CLIP), then stage 1 on the captions, as LLaVA pretrains.
    f_pre = train_tiny(tagged, work_dir=os.path.join(output_dir, "models"), seed=seed, captions=captions)
    _say(f"tiny LLaVA checkpoint built, vision tower pretrained, stage 1 on {len(captions)} captions: {f_pre}")

    n = max(2, int(fraction * len(tagged)))
    result = mllm_selector(tagged, n=n, model=f_pre, work_dir=os.path.join(output_dir, "mllm_selector"), seed=seed,
                           recipe=tiny_recipe())
    selection, manifest = result
    _say(f"MLLM-Selector: seed {manifest['seed_rows']['n_selected']} rows -> f_seed, necessity on "
         f"{len(result.scored)} rows, NBGS drew {manifest['nbgs']['n_selected']}; selected {len(selection)}")

    hub_dir = os.path.join(output_dir, "hub")
    per_source = {name: list_column(pool, "source").count(name) for name in sources}
    card_data = {"sources": {name: {"license": "apache-2.0", "rows_in": n} for name, n in per_source.items()},
                 "license": "apache-2.0"}
    publish(DatasetDict({"train": selection}), repo_id, local_dir=hub_dir, card="mllm_selector",
            card_data=card_data, rejected=rejected)
    summary = {
        "rows_in": len(pool),
        "rejected": len(rejected),
        "kept": len(kept),
        "selected": len(selection),
        "n": n,
        "degraded_share_pool": round(degraded_share(kept, truth), 4),
        "degraded_share_selection": round(degraded_share(selection, truth), 4),
        "published_to": hub_dir,
        "load_with": f"datasets.load_dataset({hub_dir!r}, 'default')",
        "seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(output_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    _say(f"summary written to {os.path.join(output_dir, 'summary.json')}")
    return summary
