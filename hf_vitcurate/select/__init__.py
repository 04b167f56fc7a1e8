"""Selections: each reads score columns and returns ``(subset, manifest)`` (see README).

One file per method: ``nbgs``/``mllm_selector`` (MLLM-Selector), ``revolion`` (REVO-LION), ``svit_core`` (SVIT),
``individual`` (Individual Select), ``baselines`` (random/top/bottom with the same budget).
"""

from .baselines import bottom, random, top
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
from .revolion_driver import TuneCrossResult, tune_cross_evaluate
from .svit_core import SVIT_CORE_SIZE, ShortfallError, balance, core, diversity, mix
