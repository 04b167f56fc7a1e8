"""Pools with the research options: more rows of some formats, grouped captions.

The package's ``training_pool`` draws the default mix; the studies here also changed the
mix per source (``rows_per_image``) and wrote a share of the captions as grouped
descriptions ("Circles: a large red one at the top left. ..."), both options of
``hf_vitcurate.synthetic.shapesworld``. :func:`study_pool` is ``training_pool`` with them;
:func:`grouped_stage1_captions` is ``stage1_captions`` with a share of grouped ones.

Example:
    >>> pool = study_pool("clean", 100, sources=["captions", "mm_short_vqa"], grouped_captions=1.0)
    >>> len(pool)
    100
"""

from __future__ import annotations

import math

from datasets import Dataset, concatenate_datasets

from hf_vitcurate.synthetic import DEFAULT_ROWS_PER_IMAGE, DEGRADED, SOURCES, shapesworld, stage1_captions, training_pool
from hf_vitcurate.synthetic.sources import STAGE1_SEED_OFFSET


def study_pool(
    kind: str,
    n_rows: int,
    seed: int = 0,
    *,
    sources: list[str] | None = None,
    yes_ratio: float = 20.0,
    rows_per_image: dict[str, float] | None = None,
    grouped_captions: float = 0.0,
) -> Dataset:
    """``training_pool(kind, n_rows, seed, sources=, yes_ratio=)``, with ``rows_per_image`` and
    ``grouped_captions`` as in ``shapesworld`` (without them: exactly ``training_pool``)."""
    if not rows_per_image and not grouped_captions:
        return training_pool(kind, n_rows, seed, sources=sources, yes_ratio=yes_ratio)
    if kind not in ("clean", "degraded"):
        raise ValueError(f"kind must be 'clean' or 'degraded', got {kind!r}")
    names = [s for s in SOURCES if s != "text_only"] if sources is None else list(sources)
    degrade = {} if kind == "clean" else {k: v for k, v in DEGRADED.items() if k in names}
    rpi = {**DEFAULT_ROWS_PER_IMAGE, **(rows_per_image or {})}
    # As training_pool: a margin for the rounding of rows per image and the degraded pool's copies.
    n_images = math.ceil(n_rows / sum(rpi[s] for s in names) * 1.15) + 10
    world = shapesworld(n_images, seed, sources=names, rows_per_image=rows_per_image, degrade=degrade,
                        yes_ratio=yes_ratio, grouped_captions=grouped_captions, benchmark_images=0)
    pool = concatenate_datasets([world[s] for s in names])
    return pool.shuffle(seed=seed).select(range(n_rows))


def grouped_stage1_captions(n_images: int, seed: int = 0, *, grouped: float = 0.0) -> Dataset:
    """Stage-1 captions of ``n_images`` separate images, a share ``grouped`` of them grouped descriptions.

    Why: one-sentence captions teach a tiny model to read every object in order, not to
    find an object by one attribute and read another ("What color is the small cross?");
    writing a group is that lookup for every object. Trained in the same batches as
    questions it taught the lookup; as a separate stage 1 it did not carry over
    (RESULTS.md, "Binding").

    >>> caps = grouped_stage1_captions(20, seed=0, grouped=0.5)
    >>> len(caps), set(caps["task"])
    (20, {'caption'})
    """
    if not grouped:
        return stage1_captions(n_images, seed)
    world = shapesworld(n_images, seed + STAGE1_SEED_OFFSET, sources=["captions"], degrade={},
                        grouped_captions=grouped, benchmark_images=0)
    return world["captions"]
