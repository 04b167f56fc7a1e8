"""The package's model cache: each model built once per identity, copied into each run's folder.

Fine-tunes (:func:`cached_train`) and the tiny models of :mod:`hf_vitcurate.testing`
(``train_tiny``) are pure functions of their inputs: the same base model, rows, recipe and
code always give the same weights. So they are kept under the package's cache folder
(``$HF_VITCURATE_CACHE``, else ``~/.cache/hf_vitcurate``: :func:`hf_vitcurate.identity.cache_dir`),
in ``tiny_models/<kind>/<key>/`` (``train/``: fine-tunes; ``towers/``, ``f_pre/``: tiny
models), and a run copies the entry into its own folder (a few MB for a tiny model), so a
run's folder stays self-contained and nothing a run writes can change the cache.

The key hashes everything that decides the weights (:func:`train_key`): the base model's
content, the content of the rows' ``images`` and ``conversations``, the full recipe
(seed included), the process count, the device kind and :func:`code_version` (the source
of the training code and the torch / transformers / tokenizers versions), and for images
stored as paths the files' stamps (:func:`hf_vitcurate.identity.files_fingerprint`).
Another row, image file, recipe field, base model or code version is another entry, never a
stale model.

Safe under concurrent runs: an entry is built in a private ``<key>.partial-<pid>`` folder while
holding ``locks/<kind>-<key>`` (:func:`hf_vitcurate.locks.hold`), and renamed into place only once
complete (its ``identity.json`` is written last); a killed build leaves only a partial folder,
which is never read and is removed by the next build; a build that raises removes its partial
folder. A second run with the same key waits for the first and then reuses its entry. The lock
folder is removed when a build ends, in success or failure (see :func:`cached`).

Off with ``cache=False`` or ``HF_VITCURATE_TINY_CACHE=0``.

Example:
    >>> key = entry_key(params={"seed": 0})
    >>> len(key)
    16
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..atomic import write_json
from ..errors import LockedError, RunError

logger = logging.getLogger(__name__)

CACHE_SWITCH = "HF_VITCURATE_TINY_CACHE"
ROOT = "tiny_models"
IDENTITY_FILE = "identity.json"
# How long a run waits for another process building the same entry before giving up.
WAIT_SECONDS = 3600.0
# Source files whose code decides what a model is (relative to the package).
# models/batching.py orders and groups the rows, models/recipes.py fills the recipe's defaults,
# schema.py names the image token the tokenizer learns: each changes the model as much as training.py.
CODE_FILES = ("testing/tiny.py", "testing/vision.py", "testing/recipes.py", "testing/cache.py", "models/cache.py",
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
            print(f"models: cache in {root} (cache=False or {CACHE_SWITCH}=0 turns it off)", file=sys.stderr)
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


def _build(entry: str, key: str, identity: Mapping[str, Any], build: Callable[[str], None]) -> None:
    """Build ``entry`` (called while holding its lock): a private folder, ``identity.json`` last, a rename."""
    kind_dir = os.path.dirname(entry)
    _clear_partials(kind_dir, key)
    if os.path.isdir(entry):  # complete entries have identity.json; this one was cut short
        shutil.rmtree(entry)
    partial = os.path.join(kind_dir, f"{key}.partial-{os.getpid()}")
    os.makedirs(partial)
    logger.info("models: building %s", entry)
    try:
        build(partial)
        write_json(os.path.join(partial, IDENTITY_FILE), {**identity, "key": key}, indent=2)
        os.replace(partial, entry)
    except BaseException:  # an error, or a kill that Python sees (KeyboardInterrupt): leave no partial folder
        shutil.rmtree(partial, ignore_errors=True)
        raise


def cached(kind: str, key: str, identity: Mapping[str, Any], build: Callable[[str], None]) -> str:
    """The complete entry ``<root>/<kind>/<key>``, built with ``build(folder)`` if missing; its path.

    ``build`` fills a fresh private folder; it becomes the entry only when it returns
    (``identity`` is written last, then the folder is renamed); when it raises, the folder
    is removed and the error goes on. Another process building the same key is waited for,
    then its entry is used (or, if its build failed, the key is built here).

    Whoever takes the key's lock removes the lock folder before letting go, whether the
    build succeeded, failed, or was already done: no ``locks/`` folder outlives a run. That
    is safe because :func:`hf_vitcurate.locks.hold` checks that the file it locked is
    still the one at the path: a process that opened the old lock file before the removal
    gets that lock once it is let go, sees the file gone, and locks the new one (made
    afresh by ``hold``), so two processes never both hold the key. A process killed while
    building leaves its lock folder (a few bytes) and its partial folder to the next build.
    """
    from ..locks import hold

    entry = os.path.join(cache_root(), kind, key)
    lock_dir = os.path.join(cache_root(), "locks", f"{kind}-{key}")
    deadline = time.monotonic() + WAIT_SECONDS
    while not _complete(entry):
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(hold(lock_dir, what=f"building model {kind}/{key}"))
            except (LockedError, FileNotFoundError):  # FileNotFoundError: the lock folder was just removed
                if time.monotonic() > deadline:
                    raise RunError(f"model {kind}/{key} is still being built by another process after "
                                   f"{WAIT_SECONDS:.0f} s: stop it, or pass cache=False") from None
                time.sleep(1.0)
                continue
            try:
                if not _complete(entry):  # else built by the process we waited for
                    _build(entry, key, identity, build)
            finally:
                shutil.rmtree(lock_dir, ignore_errors=True)  # while still held: see above
        return entry
    logger.info("models: reusing %s", entry)
    return entry


def copy_folder(source: str, dest: str) -> None:
    """Copy the folder ``source`` to ``dest`` through a partial folder and a rename (kept if complete)."""
    if not os.path.exists(os.path.join(dest, "config.json")):  # absent, or a copy cut short by a kill
        copy_tree(source, dest)


def copy_entry(entry: str, names: list[str], work_dir: str) -> None:
    """Copy the folders ``names`` of ``entry`` into ``work_dir`` (see :func:`copy_folder`)."""
    for name in names:
        copy_folder(os.path.join(entry, name), os.path.join(work_dir, name))


def train_key(identity: Mapping[str, Any]) -> str:
    """The cache key of a fine-tune whose :func:`~hf_vitcurate.models.training.train_identity` is ``identity``.

    The identity holds the base model's content, the rows' ``images`` and ``conversations``,
    the recipe (all fields but the neutral ones: progress, logging, saving, threads,
    workers) and the process count; added here: :func:`code_version` and the device kind
    (``cpu``, ``cuda``, ``mps``: the same recipe gives other floating-point sums on another device).
    Images stored as paths are in the identity by path and stamp
    (:func:`~hf_vitcurate.identity.files_fingerprint`): an image edited at its path is another model.
    """
    from ..distributed import state
    from ..identity import params_fingerprint

    return params_fingerprint({"train": identity["key"], "code": code_version(),
                               "device": state().device.type})[:16]


def train_or_reuse(ds, *, model: str | os.PathLike, output_dir: str | os.PathLike, cache: bool | None = None,
                   restart: bool = False, identity: Mapping[str, Any] | None = None, **recipe) -> tuple[str, str]:
    """``(output_dir, how)``: :func:`cached_train`, saying where the checkpoint came from.

    ``how`` is ``"found"`` (``output_dir`` already held this finished run), ``"cached"``
    (copied from the cache) or ``"trained"`` (trained now). ``identity``: the run's
    ``train_identity`` when the caller has it (the rows are then not hashed again); its data
    fingerprint goes on to ``train``, which so hashes nothing either.
    """
    from ..distributed import state
    from ..identity import ensure_same
    from .training import recorded_identity, train, train_identity

    output_dir = os.fspath(output_dir)
    if restart and os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    ident = dict(identity) if identity is not None else train_identity(ds, model=model, recipe=recipe)
    rows = ident["data"]  # train's own identity takes it: the rows are hashed once, here
    recorded, finished = recorded_identity(output_dir)
    if finished or recorded is not None:
        ensure_same(recorded, ident, place=f"output_dir {output_dir!r}", hint="use restart=True or another output_dir")
        if finished:
            return output_dir, "found"
    elif os.path.isdir(output_dir) and os.listdir(output_dir):  # someone else's files: never replaced
        return train(ds, model=model, output_dir=output_dir, fingerprint=rows, **recipe), "trained"
    # Several processes would each wait on the lock the first holds, while it waits for them inside training.
    if not enabled(cache) or state().num_processes > 1:
        return train(ds, model=model, output_dir=output_dir, fingerprint=rows, **recipe), "trained"
    built: list[bool] = []

    def build(folder: str) -> None:
        train(ds, model=model, output_dir=os.path.join(folder, "model"), fingerprint=rows, **recipe)
        built.append(True)

    entry = cached("train", train_key(ident), ident, build)
    if recorded is not None:  # a run of these same inputs, cut short: the cached one replaces it
        shutil.rmtree(output_dir)
    copy_folder(os.path.join(entry, "model"), output_dir)
    return output_dir, "trained" if built else "cached"


def cached_train(ds, *, model: str | os.PathLike, output_dir: str | os.PathLike, cache: bool | None = None,
                 restart: bool = False, **recipe) -> str:
    """:func:`hf_vitcurate.models.train` through the cache: one training per identity, copied to ``output_dir``.

    The key (:func:`train_key`) is the run's :func:`~hf_vitcurate.models.training.train_identity`
    (the base model's content, the rows, the full recipe, the process count) plus
    :func:`code_version` and the device kind, so f_pre fine-tuned on the same rows twice (a
    rerun into a new folder, a benchmark) trains once; any other input trains anew. Like
    ``train``: an ``output_dir`` holding a finished run of the same inputs is returned as is,
    one of other inputs raises :class:`~hf_vitcurate.errors.StaleStateError`, ``restart=True``
    deletes ``output_dir`` first (the cache entry, keyed by content, stays valid). A folder
    holding other files is trained in place, uncached. ``cache=False`` or
    ``HF_VITCURATE_TINY_CACHE=0``: plain ``train``. Several processes (``accelerate launch``)
    train without the cache. Returns ``output_dir``.

    >>> cached_train(selection, model=f_pre, output_dir="runs/ft", **tiny_recipe())   # doctest: +SKIP
    """
    return train_or_reuse(ds, model=model, output_dir=output_dir, cache=cache, restart=restart, **recipe)[0]


def package_code() -> str:
    """SHA-256 (16 hex) of every module of the package: a stage's cached chunks are never served to other code."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(package, "**", "*.py"), recursive=True)):
        with open(path, "rb") as f:
            digest.update(os.path.relpath(path, package).encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()[:16]


def copy_tree(source: str, dest: str) -> None:
    """Copy the folder ``source`` to ``dest`` through a partial folder and a rename (a ``dest`` left
    by a copy cut short is replaced): a kill never leaves a half folder under the final name."""
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = f"{dest}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def cached_stage(stage: Callable, ds, *, model: str | os.PathLike, work_dir: str | os.PathLike,
                 cache: bool | None = None, fingerprint: str | None = None, **options):
    """``stage(ds, model=model, work_dir=work_dir, **options)``, its finished chunks copied from the cache.

    For a resumable model stage (:func:`hf_vitcurate.stages.generate`,
    :func:`hf_vitcurate.stages.necessity`) whose ``work_dir`` does not exist yet: the chunks
    are computed once per key into the cache (``stages/<key>``) and copied into ``work_dir``,
    where the stage then finds every chunk done (no model is loaded). The key is the
    stage's name, the model's content, the content of every column of ``ds`` (and the stamps
    of the image files it names by path), every option,
    the source of the whole package (any code change is a new key), the torch / transformers
    / tokenizers versions and the device kind. An existing ``work_dir`` (a resume, a rerun),
    ``restart=True``, several processes, ``cache=False`` or ``HF_VITCURATE_TINY_CACHE=0``:
    the stage alone, as called. ``fingerprint``: the
    :func:`~hf_vitcurate.identity.data_fingerprint` of the columns of ``ds`` the stage reads,
    when the caller already has it (a driver running one stage on the same rows with many
    models): it replaces the hash of every column in the key and is passed on to the stage
    (``stage(..., fingerprint=...)``), which keys its chunks with it.

    >>> scored = cached_stage(necessity, rest, model=f_seed, work_dir="runs/necessity")   # doctest: +SKIP
    """
    from ..distributed import state
    from ..identity import identity, params_fingerprint

    work_dir = os.fspath(work_dir)
    passed = {} if fingerprint is None else {"fingerprint": fingerprint}  # a stage without the option never sees it
    if (enabled(cache) and state().num_processes == 1 and not options.get("restart")
            and not os.path.exists(work_dir)):
        # model, rows (image files named by path included) and options, as every identity
        ident = {"stage": f"{stage.__module__}.{stage.__qualname__}",
                 **identity(model=model, data=ds, params=options, fingerprint=fingerprint)}
        key = params_fingerprint({**ident, "code": package_code(), "versions": code_version(()),
                                  "device": state().device.type})[:16]
        entry = cached("stages", key, ident, lambda folder: stage(
            ds, model=model, work_dir=os.path.join(folder, "chunks"), **passed, **options))
        copy_tree(os.path.join(entry, "chunks"), work_dir)
    return stage(ds, model=model, work_dir=work_dir, **passed, **options)
