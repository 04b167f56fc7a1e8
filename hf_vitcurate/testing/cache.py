"""The cache of tiny models: built once per identity, copied into each run's ``work_dir``.

:func:`~hf_vitcurate.testing.train_tiny` builds f_pre (tokenizer, pretrained tower, stage 1)
for a pool. Building takes tens of seconds on a 2-core CPU; the same pool and recipe always
give the same model, so it is kept under the package's cache folder (``$HF_VITCURATE_CACHE``,
else ``~/.cache/hf_vitcurate``: :func:`hf_vitcurate.identity.cache_dir`), in ``tiny_models/``:

- ``towers/<key>/``: a pretrained vision tower (its weights and ``vision_pretraining.json``).
  It depends only on the architecture, the seed, the steps and the code, never on the pool,
  so every pool reuses it.
- ``f_pre/<key>/``: a whole build (``tiny/`` and ``f_pre/``), keyed by the pool's text, the
  captions (images and text), the architecture, the seed, the recipe and the code
  (:func:`code_version`: the source of the training code and the torch/transformers/tokenizers versions),
  so another pool, recipe or code version gets a new entry, never a stale model.

Safe under concurrent runs: an entry is built in a private ``<key>.partial-<pid>`` folder while
holding ``locks/<key>`` (:func:`hf_vitcurate.locks.hold`), and renamed into place only once
complete (its ``identity.json`` is written last); a killed build leaves only a partial folder,
which is never read and is removed by the next build. A second run with the same key waits for
the first and then reuses its entry. Runs copy the entry into their ``work_dir`` (a few MB),
so a ``work_dir`` stays self-contained and nothing a run writes can change the cache.

:func:`cached_train` puts any fine-tune (``models.train``) through the same cache (``train/<key>``).

Off with ``cache=False`` or ``HF_VITCURATE_TINY_CACHE=0``.

Example:
    >>> key = entry_key(params={"seed": 0})
    >>> len(key)
    16
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import LockedError, RunError

logger = logging.getLogger(__name__)

CACHE_SWITCH = "HF_VITCURATE_TINY_CACHE"
ROOT = "tiny_models"
IDENTITY_FILE = "identity.json"
# How long a run waits for another process building the same entry before giving up.
WAIT_SECONDS = 3600.0
# Source files whose code decides what a tiny model is (relative to the package).
# models/batching.py orders and groups the rows, models/recipes.py fills the recipe's defaults,
# schema.py names the image token the tokenizer learns: each changes the model as much as training.py.
CODE_FILES = ("testing/tiny.py", "testing/vision.py", "testing/recipes.py", "testing/cache.py",
              "models/training.py", "models/batching.py", "models/recipes.py", "models/loss.py",
              "models/chat.py", "models/loading.py", "schema.py", "synthetic/world.py")
# The subset the pretrained tower depends on (it never sees a chat template or an answer loss).
TOWER_CODE_FILES = ("testing/tiny.py", "testing/vision.py", "models/training.py", "models/recipes.py",
                    "models/loading.py", "synthetic/world.py")
_ANNOUNCED: set[str] = set()


def enabled(cache: bool | None) -> bool:
    """Whether to use the cache: ``cache`` if given, else not ``HF_VITCURATE_TINY_CACHE=0``."""
    if cache is not None:
        return bool(cache)
    return os.environ.get(CACHE_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def cache_root() -> str:
    """``<cache folder>/tiny_models``; printed (to stderr) the first time a process uses it, unless quiet
    (``vitcurate -q``: warnings and the summary only)."""
    from ..identity import cache_dir
    from ..progress import quiet

    root = os.path.join(cache_dir(), ROOT)
    if root not in _ANNOUNCED:
        _ANNOUNCED.add(root)
        if not quiet():
            print(f"tiny models: cache in {root} (cache=False or {CACHE_SWITCH}=0 turns it off)",
                  file=sys.stderr)
    return root


def code_version(files: tuple[str, ...] = CODE_FILES) -> dict[str, str]:
    """SHA-256 of the source ``files`` (relative to the package) and the torch / transformers / tokenizers versions."""
    import tokenizers
    import torch
    import transformers

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256()
    for name in files:
        path = os.path.join(package, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return {"source": digest.hexdigest()[:16], "torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__}  # tiny.py trains the tokenizer with it


def entry_key(*, data: Mapping[str, Any] | None = None, params: Mapping[str, Any]) -> str:
    """The 16-hex key of an entry: its data fingerprints and parameters (code version included by callers)."""
    from ..identity import params_fingerprint

    return params_fingerprint({"data": dict(data or {}), "params": dict(params)})[:16]


def _complete(entry: str) -> bool:
    return os.path.isfile(os.path.join(entry, IDENTITY_FILE))


def _clear_partials(kind_dir: str, key: str) -> None:
    """Remove what killed builds of ``key`` left (only called while holding the key's lock)."""
    for partial in glob.glob(os.path.join(kind_dir, f"{key}.partial-*")):
        shutil.rmtree(partial, ignore_errors=True)


def cached(kind: str, key: str, identity: Mapping[str, Any], build: Callable[[str], None]) -> str:
    """The complete entry ``<root>/<kind>/<key>``, built with ``build(folder)`` if missing; its path.

    ``build`` fills a fresh private folder; it becomes the entry only when it returns
    (``identity`` is written last, then the folder is renamed). Another process building
    the same key is waited for, then its entry is used.
    """
    from ..locks import hold

    kind_dir = os.path.join(cache_root(), kind)
    entry = os.path.join(kind_dir, key)
    if _complete(entry):
        logger.info("tiny models: reusing %s", entry)
        return entry
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            with hold(os.path.join(cache_root(), "locks", f"{kind}-{key}"), what=f"building tiny model {kind}/{key}"):
                if _complete(entry):  # built by the process we waited for
                    return entry
                _clear_partials(kind_dir, key)
                if os.path.isdir(entry):  # complete entries have identity.json; this one was cut short
                    shutil.rmtree(entry)
                partial = os.path.join(kind_dir, f"{key}.partial-{os.getpid()}")
                os.makedirs(partial)
                logger.info("tiny models: building %s", entry)
                build(partial)
                write_json(os.path.join(partial, IDENTITY_FILE), {**identity, "key": key})
                os.replace(partial, entry)
                return entry
        except LockedError:
            if time.monotonic() > deadline:
                raise RunError(f"tiny model {kind}/{key} is still being built by another process after "
                               f"{WAIT_SECONDS:.0f} s: stop it, or pass cache=False") from None
            time.sleep(1.0)


def copy_folder(source: str, dest: str) -> None:
    """Copy the folder ``source`` to ``dest`` through a partial folder and a rename (kept if complete)."""
    if os.path.exists(os.path.join(dest, "config.json")):
        return
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = f"{dest}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    if os.path.isdir(dest):  # a copy cut short by a kill (no config.json)
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def copy_entry(entry: str, names: list[str], work_dir: str) -> None:
    """Copy the folders ``names`` of ``entry`` into ``work_dir`` (see :func:`copy_folder`)."""
    for name in names:
        copy_folder(os.path.join(entry, name), os.path.join(work_dir, name))


def cached_train(ds, *, model: str | os.PathLike, output_dir: str | os.PathLike, cache: bool | None = None,
                 **recipe) -> str:
    """:func:`hf_vitcurate.models.train` through the cache: one training per identity, copied to ``output_dir``.

    The key is the run's :func:`~hf_vitcurate.models.training.train_identity` (the base model's
    content, the rows, the recipe) plus :func:`code_version`, so f_pre fine-tuned on the same
    rows twice (a benchmark rerun, another work_dir) trains once. Returns ``output_dir``.

    >>> cached_train(selection, model=f_pre, output_dir="runs/ft", **tiny_recipe())   # doctest: +SKIP
    """
    from ..identity import ensure_same, params_fingerprint
    from ..models.training import recorded_identity, train, train_identity

    output_dir = os.fspath(output_dir)
    if not enabled(cache):
        return train(ds, model=model, output_dir=output_dir, **recipe)
    ident = train_identity(ds, model=model, recipe=recipe)
    recorded, finished = recorded_identity(output_dir)
    if finished or recorded is not None:
        ensure_same(recorded, ident, place=f"output_dir {output_dir!r}", hint="use another output_dir")
        if finished:
            return output_dir
    elif os.path.isdir(output_dir) and os.listdir(output_dir):  # someone else's files: never replaced
        return train(ds, model=model, output_dir=output_dir, **recipe)
    key = params_fingerprint({"train": ident["key"], "code": code_version()})[:16]
    entry = cached("train", key, ident, lambda folder: train(ds, model=model, output_dir=os.path.join(folder, "model"),
                                                            **recipe))
    if recorded is not None:  # a run of these same inputs, cut short: the cached one replaces it
        shutil.rmtree(output_dir)
    copy_folder(os.path.join(entry, "model"), output_dir)
    return output_dir


def read_json(path: str) -> dict | None:
    """The JSON object in ``path``; None when missing or unreadable (a write cut short)."""
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path: str, value: Mapping[str, Any]) -> None:
    """Write ``value`` to ``path`` through a temporary file and a rename (never a truncated file)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, default=str)
    os.replace(tmp, path)
