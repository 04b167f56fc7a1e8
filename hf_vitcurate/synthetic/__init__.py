"""ShapesWorld: the embedded default pool and benchmark.

Seeded scenes of simple objects (:mod:`.world`), written as VIT source datasets in the
styles of LLaVA, SVIT and MMInstruct (:mod:`.writers`, :mod:`.sources`), some degraded on
purpose with the truth in a ``_truth`` column that no method may read, and a held-out
benchmark with its scoring (:mod:`.benchmark`); :func:`evaluate` (``evaluate.py``) runs a
checkpoint on it.

Example:
    >>> from hf_vitcurate.synthetic import shapesworld, score_benchmark
    >>> dd = shapesworld(40, seed=0)
    >>> bench = dd["benchmark"]
    >>> score_benchmark(bench, [c[-1]["value"] for c in bench["conversations"]])["average"]
    100.0
"""

from .benchmark import CHANCE, benchmark, score_benchmark
from .evaluate import evaluate  # the model side's scorer (imports models lazily)
from .pool import degraded_share, pool_and_truth
from .sources import (
    DEFAULT_DEGRADE,
    DEFAULT_ROWS_PER_IMAGE,
    DEGRADED,
    SOURCES,
    image_table,
    shapesworld,
    stage1_captions,
    training_pool,
)
from .world import COLOR_NAMES, SHAPES, SIZES, Scene, make_scene, render

__all__ = [
    "CHANCE",
    "COLOR_NAMES",
    "DEFAULT_DEGRADE",
    "DEFAULT_ROWS_PER_IMAGE",
    "DEGRADED",
    "SHAPES",
    "SIZES",
    "SOURCES",
    "Scene",
    "benchmark",
    "degraded_share",
    "evaluate",
    "image_table",
    "make_scene",
    "pool_and_truth",
    "render",
    "score_benchmark",
    "shapesworld",
    "stage1_captions",
    "training_pool",
]
