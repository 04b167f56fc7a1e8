"""ShapesWorld: the embedded default pool and benchmark.

Seeded scenes of simple objects (:mod:`.world`), written as VIT source datasets in the
styles of LLaVA, SVIT and MMInstruct (:mod:`.writers`, :mod:`.sources`), some degraded on
purpose (wrong and leaking answers, near-duplicates, redundant easy rows, a low-quality
source, a yes:no skew; :mod:`.pathologies`) with the truth in a ``_truth`` column that no
method may read, and a held-out
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
from .pathologies import DEMO_PATHOLOGIES, LOW_QUALITY_SOURCE
from .pool import degraded_share, degraded_shares, pool_and_truth, statuses
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
    "DEMO_PATHOLOGIES",
    "LOW_QUALITY_SOURCE",
    "SHAPES",
    "SIZES",
    "SOURCES",
    "Scene",
    "benchmark",
    "degraded_share",
    "degraded_shares",
    "evaluate",
    "image_table",
    "make_scene",
    "pool_and_truth",
    "render",
    "score_benchmark",
    "shapesworld",
    "stage1_captions",
    "statuses",
    "training_pool",
]
