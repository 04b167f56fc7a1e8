"""The cache of tiny models, now :mod:`hf_vitcurate.models.cache` (re-exported here for its users).

:func:`~hf_vitcurate.testing.train_tiny` keeps what it builds there: ``towers/<key>/`` (a
pretrained vision tower, pool-independent) and ``f_pre/<key>/`` (a whole build, keyed by the
pool, the captions, the architecture, the seed, the recipe and the code); :func:`cached_train`
puts any fine-tune through the same cache (``train/<key>``). The machinery lives in ``models/``
so that selection drivers (``select/``) cache their fine-tunes without importing ``testing/``.

Off with ``cache=False`` or ``HF_VITCURATE_TINY_CACHE=0``.

Example:
    >>> key = entry_key(params={"seed": 0})
    >>> len(key)
    16
"""

from __future__ import annotations

from ..atomic import read_json, write_json
from ..models.cache import (CACHE_SWITCH, CODE_FILES, IDENTITY_FILE, ROOT, TOWER_CODE_FILES, WAIT_SECONDS,
                            cache_root, cached, cached_train, code_version, copy_entry, copy_folder, enabled,
                            entry_key, train_key, train_or_reuse)

__all__ = ["CACHE_SWITCH", "CODE_FILES", "IDENTITY_FILE", "ROOT", "TOWER_CODE_FILES", "WAIT_SECONDS", "cache_root",
           "cached", "cached_train", "code_version", "copy_entry", "copy_folder", "enabled", "entry_key", "read_json",
           "train_key", "train_or_reuse", "write_json"]
