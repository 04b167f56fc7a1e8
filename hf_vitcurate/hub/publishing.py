"""``publish``: a curated ``DatasetDict`` → a Hub dataset repo (locally, and on the Hub when asked).

Steps: write every split as Parquet shards (``layout``), draw score histograms and the
method's plots (``plots``), build ``curation.json`` (``manifest``), render the card
(``card``), swap the new files into ``local_dir``, push (``upload``) and keep the version
(``versions``). Files are written to a staging folder first, so a failure leaves the
previous publish untouched. ``local_dir`` is locked for the whole publish
(:func:`hf_vitcurate.locks.hold`): a second publish into it meanwhile fails at once with
:class:`~hf_vitcurate.errors.LockedError`, so a version never holds another's data.

Example:
    >>> from hf_vitcurate.hub import publish
    >>> publish(curated, "me/shapes-mix", local_dir="out/shapes-mix", card="mllm_selector",
    ...         card_data={"sources": {"llava_conv": "cc-by-4.0"}}, version="v1")  # doctest: +SKIP
    'out/shapes-mix'
    >>> load_dataset("out/shapes-mix", "default")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from datasets import Dataset, DatasetDict

from ..locks import hold
from . import card as cards
from . import layout, manifest, plots, upload, versions

logger = logging.getLogger(__name__)


def publish(
    ds: Dataset | DatasetDict | Mapping[str, DatasetDict],
    repo_id: str,
    *,
    local_dir: str,
    configs: str | Sequence[str] | None = None,
    card: str = "generic",
    card_data: dict[str, Any] | None = None,
    version: str | None = None,
    push: bool = False,
    private: bool = True,
    max_shard_size: int | str = "500MB",
    rejected: Dataset | DatasetDict | dict[str, int] | None = None,
    token: str | None = None,
) -> str:
    """Write ``ds`` to ``local_dir`` in the ``push_to_hub`` layout with a card; push if asked.

    Args:
        ds: a ``DatasetDict`` (the splits of one config), a ``Dataset`` (one
            split), or ``{config: DatasetDict}`` for several configs.
        repo_id: ``"org/name"`` on the Hub (used in the card's load snippet and by ``push``); where
            the data goes, the one positional argument after it, as in ``Dataset.push_to_hub(repo_id)``.
        local_dir: the working tree of the latest publish; earlier versions are kept in
            ``local_dir/versions/<tag>/``.
        configs: the config name for a single ``DatasetDict`` (default ``"default"``), or
            which configs of a dict to publish.
        card: a template of ``hf_vitcurate/cards`` (``generic``, ``mllm_selector``,
            ``revo_lion``, ``svit_core``, ``mminstruct``, ``individual_select``) or a path.
        card_data: sources and licenses, plots, tables, ... (see :mod:`hf_vitcurate.hub.card`).
        version: a tag (``"v1"``); refused if it exists locally or on the Hub. Saved as a copy in
            ``local_dir/versions/<tag>/`` that later edits of the working tree never change.
        push: upload with ``huggingface_hub`` and tag ``version``: commits of at most 50 files,
            retried on 429/412/5xx, resumed without re-sending what the repo already holds
            (:func:`hf_vitcurate.hub.upload.push`).
        private: visibility when the Hub repo is created.
        max_shard_size: Parquet shard size, as in ``push_to_hub``.
        rejected: rejected rows (with ``reject_reason``) or ``{reason: count}`` for the card.
        token: a Hub token for this push only (never stored, logged or written); default
            ``HF_TOKEN`` / ``hf auth login``.

    Returns:
        ``local_dir``. ``datasets.load_dataset(local_dir, config)`` gives back what was published.

    Raises:
        LockedError: another process is publishing into ``local_dir``.
        VersionExistsError: ``version`` is already published (locally, or on the Hub when pushing).
        ConfigError: a bad tag, config or split name, a split without rows, an unknown card.
    """
    card_data = dict(card_data or {})
    cards.template_path(card)  # fail on a bad template before the long write
    tree = layout.as_configs(ds, configs)
    layout.check_shard_size(max_shard_size)
    if version is not None:
        versions.check_tag(version)
    local_dir = os.path.abspath(local_dir)
    # One publish at a time per folder, from the tag check to the saved version: a second
    # one would rewrite the working tree between this one's write and its snapshot (its
    # rows saved under our tag). It fails at once (LockedError names the holder) rather
    # than wait: a publish can take hours (write, upload), and a waiting one would make
    # whichever finished last the working tree, an order nobody chose.
    with hold(local_dir, what=f"publishing {repo_id}" + (f" {version}" if version else "")):
        api = upload.make_api(token) if push else None
        if version is not None:
            versions.check_free(local_dir, version)
            if push:
                upload.check_remote_tag_free(api, repo_id, version)
        write_tree(tree, local_dir, repo_id=repo_id, version=version, card=card, card_data=card_data,
                   rejected=rejected, pushed=push, max_shard_size=max_shard_size)
        if push:
            upload.push(local_dir, repo_id, version=version, private=private, api=api, lock=False)
        if version is not None:
            # Only after a successful push: a failed push can be retried under the same tag.
            versions.snapshot(local_dir, version)
    logger.info("published %s to %s%s", repo_id, local_dir, f" as {version}" if version else "")
    return local_dir


def write_tree(tree: dict[str, DatasetDict], local_dir: str, *, repo_id: str, version: str | None, card: str,
               card_data: dict[str, Any], rejected, pushed: bool, max_shard_size: int | str) -> None:
    """Write the repo (shards, plots, ``curation.json``, README) to a staging folder, then swap it into ``local_dir``.

    The caller holds ``local_dir``'s lock. A failure leaves the previous publish untouched.
    """
    staging = tempfile.mkdtemp(prefix=".publish-", dir=local_dir)  # same filesystem: moves are renames
    try:
        # While the main thread writes Parquet (pyarrow drops the GIL), a second one hashes the
        # content and the ids and imports matplotlib (~0.6 s): publish costs little more than the write.
        known: dict[str, dict[str, dict[str, Any]]] = {n: {s: {} for s in dd} for n, dd in tree.items()}
        side = threading.Thread(target=_side_work, args=(tree, known), daemon=True)
        side.start()
        written: dict[str, dict[str, layout.SplitFiles]] = {}
        for name, dd in tree.items():
            written[name] = {}
            for split, ds in dd.items():
                written[name][split] = layout.write_split(ds, staging, layout.data_dir_for(name), split, max_shard_size)
        side.join()
        score_plots = plots.score_histograms(tree, staging)
        method_plots = plots.method_plots(card_data.get("plots"), staging)
        man = build_manifest(tree, written, repo_id=repo_id, version=version, card=card, card_data=card_data,
                             rejected=rejected, known=known)
        dataset_card = render_card(man, tree, written, repo_id=repo_id, version=version, card=card,
                                   card_data=card_data, score_plots=score_plots, method_plots=method_plots,
                                   pushed=pushed, local_dir=local_dir)
        with open(os.path.join(staging, "README.md"), "w", encoding="utf-8", newline="") as f:
            f.write(str(dataset_card))  # str(card), as push_to_hub writes it
        with open(os.path.join(staging, manifest.MANIFEST_FILE), "w", encoding="utf-8") as f:
            json.dump(man, f, indent=2, sort_keys=True)
            f.write("\n")
        layout.replace_tree(staging, local_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _side_work(tree: dict[str, DatasetDict], known: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Runs in a thread during the Parquet write: content and ids hashes, rows per source, matplotlib's import.

    A failure here is left for the main thread: :func:`manifest.describe` computes what is missing.
    """
    try:
        for name, dd in tree.items():
            for split, ds in dd.items():
                known[name][split].update(manifest.split_digests(ds), content_sha256=manifest.content_digest(ds))
        if any(plots.score_columns(next(iter(dd.values())).features) for dd in tree.values()):
            plots.preload()
    except Exception:  # noqa: BLE001 - recomputed (and raised, if it fails again) in the main thread
        logger.debug("side work failed; recomputed in the main thread", exc_info=True)


def build_manifest(tree: dict[str, DatasetDict], written: dict[str, dict[str, layout.SplitFiles]], *, repo_id: str,
                   version: str | None, card: str, card_data: dict[str, Any], rejected,
                   known: dict[str, dict[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """``curation.json``: :func:`manifest.describe` plus files, sizes, tag and time."""
    man = manifest.describe(tree, card=card, card_data=card_data, rejected=rejected, known=known)
    man["identity_sha256"] = manifest.identity_sha256(man)
    man["repo_id"] = repo_id
    man["version"] = version
    man["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    for name, c in man["configs"].items():
        c["data_dir"] = layout.data_dir_for(name)
        for split, s in c["splits"].items():
            w = written[name][split]
            s.update(files=w.files, num_bytes=w.num_bytes, parquet_bytes=w.uploaded_bytes)
    return man


def render_card(man: dict[str, Any], tree: dict[str, DatasetDict], written: dict[str, dict[str, layout.SplitFiles]], *,
                repo_id: str, version: str | None, card: str, card_data: dict[str, Any],
                score_plots: list[dict[str, Any]], method_plots: list[dict[str, str]], pushed: bool = True,
                local_dir: str | None = None):
    """The ``DatasetCard``: Hub metadata + push_to_hub's ``dataset_info``/``configs`` + the template body."""
    context = cards.build_context(man, repo_id=repo_id, version=version, card_data=card_data, written=written,
                                  score_plots=score_plots, method_plots=method_plots, pushed=pushed, local_dir=local_dir)
    data = cards.card_metadata(card, card_data, context["sources"], context["total_rows"])
    layout.hub_metadata(data, tree, written)
    return cards.render(card, data, context)
