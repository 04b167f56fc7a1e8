"""Publish curated datasets as Hub dataset repos: the ``push_to_hub`` layout, a generated card, versions.

Example:
    >>> from hf_vitcurate.hub import publish, would_change
    >>> publish(curated, "me/shapes-mix", local_dir="out/shapes-mix", version="v1")  # doctest: +SKIP
    >>> would_change(curated, "out/shapes-mix")  # doctest: +SKIP
    False

Modules: ``layout`` (Parquet shards, README YAML), ``card`` (templates in
``hf_vitcurate/cards``), ``plots`` (score histograms), ``manifest`` (``curation.json``),
``versions`` (``versions/<tag>/`` snapshots, copies that never change), ``upload`` (:func:`push` through ``huggingface_hub``: commits of at most 50 files, retried, resumed without re-sending what the repo holds, then the tag),
``publishing`` (:func:`publish`, tying them together, one at a time per ``local_dir``: a
second publish into a folder in use fails with :class:`~hf_vitcurate.errors.LockedError`).
"""

from __future__ import annotations

from ..errors import VersionExistsError
from .card import CARDS
from .manifest import load_manifest, would_change
from .publishing import publish
from .upload import plan_operations, push
from .versions import list_versions

__all__ = [
    "CARDS",
    "VersionExistsError",
    "list_versions",
    "load_manifest",
    "plan_operations",
    "publish",
    "push",
    "would_change",
]
