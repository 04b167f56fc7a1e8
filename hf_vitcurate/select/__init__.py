"""Selections: each reads score columns and returns a :class:`~hf_vitcurate.results.Selection`.

A Selection unpacks as ``(dataset, manifest)``; the drivers that train or score on the way
(``mllm_selector``, ``tune_cross_evaluate``, ``individual_select``) return a
:class:`~hf_vitcurate.results.DriverSelection` with what they made as attributes. A size is
``n`` rows or a ``fraction`` of the pool (see docs/vocabulary.md).

One file per method: ``nbgs``/``mllm_selector`` (MLLM-Selector), ``revolion`` and
``revolion_driver`` (REVO-LION), ``svit_core`` (SVIT), ``individual`` (Individual Select),
``baselines`` (``random_subset``/``top``/``bottom`` with the same budget).
"""

from .baselines import bottom, random_subset, top
from .individual import individual_select, mme_to_100
from .mllm_selector import mllm_selector, seed_split
from .nbgs import nbgs
from .revolion import (
    DQTable,
    add_sq,
    dq_table,
    dq_vector,
    mq_matrix,
    release,
    s1,
    s2,
    s3,
    split_protocol,
)
from .revolion_driver import tune_cross_evaluate
from .svit_core import SVIT_CORE_SIZE, ShortfallError, balance, core, diversity, mix

__all__ = [
    "DQTable",
    "SVIT_CORE_SIZE",
    "ShortfallError",
    "add_sq",
    "balance",
    "bottom",
    "core",
    "diversity",
    "dq_table",
    "dq_vector",
    "individual_select",
    "mix",
    "mllm_selector",
    "mme_to_100",
    "mq_matrix",
    "nbgs",
    "random_subset",
    "release",
    "s1",
    "s2",
    "s3",
    "seed_split",
    "split_protocol",
    "top",
    "tune_cross_evaluate",
]
