"""``curation.json``: what a publish contains, so a rerun can tell whether it would publish the same thing.

The manifest holds, per config and split: row count, ``ids_sha256`` (the selected ids),
``content_sha256`` (every column of every row), the input fingerprint, rows per
source and the provenance steps that made it; the features; the rejected rows by
reason; the card used. ``identity_sha256`` hashes the parts that decide the published
content (not times, tags, fingerprints or shard sizes), and :func:`would_change`
compares it with an earlier publish. The hashes are the package's one identity
(:mod:`hf_vitcurate.identity`): ``content_sha256`` is :func:`~hf_vitcurate.identity.data_fingerprint`
of the split, the card and manifest hashes :func:`~hf_vitcurate.identity.params_fingerprint`.

Example:
    >>> from datasets import Dataset, DatasetDict
    >>> dd = DatasetDict({"train": Dataset.from_dict({"id": ["b", "a"]})})
    >>> m = describe({"default": dd})
    >>> m["configs"]["default"]["splits"]["train"]["num_rows"]
    2
    >>> identity_sha256(m) == identity_sha256(describe({"default": dd}))
    True
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow.compute as pc
from datasets import Dataset, DatasetDict

from .. import provenance
from ..columns import ids_sha256
from ..errors import FormatError, MissingColumnError
from ..identity import data_fingerprint, params_fingerprint

MANIFEST_FILE = "curation.json"
FORMAT = 1
# Step fields that change on every run without changing what is published.
VOLATILE_STEP_KEYS = ("time",)


def value_counts(ds: Dataset, column: str) -> dict[str, int]:
    """Rows per value of ``column`` (empty when the column is absent), reading that column only."""
    if column not in ds.column_names or len(ds) == 0:
        return {}
    col = ds.select_columns([column]).with_format("arrow")[:][column]
    counts = pc.value_counts(col.combine_chunks())
    return {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}


def collect_steps(tree: dict[str, DatasetDict]) -> tuple[list[dict[str, Any]], dict[str, dict[str, list[int]]]]:
    """Provenance steps of all splits, each once, in order; and which steps each split went through.

    Splits of one curation share their history, so the same step appears in many
    splits' provenance; it is listed once with the splits it applies to.
    """
    unique: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    per_split: dict[str, dict[str, list[int]]] = {}
    for name, dd in tree.items():
        per_split[name] = {}
        for split, ds in dd.items():
            ids = []
            for step in provenance.steps(ds):
                # Times differ between reruns; a step is the same step whatever second it ran.
                key = json.dumps({k: v for k, v in step.items() if k not in VOLATILE_STEP_KEYS}, sort_keys=True)
                if key not in index:
                    index[key] = len(unique)
                    unique.append(step)
                ids.append(index[key])
            per_split[name][split] = ids
    return unique, per_split


def split_digests(ds: Dataset) -> dict[str, Any]:
    """``ids_sha256`` and rows per ``source`` of one split (what :func:`describe` reads besides the content hash)."""
    return {"ids_sha256": ids_sha256(ds), "sources": value_counts(ds, "source")}


def content_digest(ds: Dataset) -> str:
    """``content_sha256`` of one split: :func:`~hf_vitcurate.identity.data_fingerprint` without its prefix."""
    return data_fingerprint(ds).removeprefix("sha256:")


def rejected_counts(rejected) -> dict[str, int]:
    """Rejected rows by reason from a ``Dataset`` with ``reject_reason``, a ``DatasetDict`` of them, or a dict."""
    if rejected is None:
        return {}
    if isinstance(rejected, dict) and not isinstance(rejected, DatasetDict):
        return {str(k): int(v) for k, v in rejected.items()}
    parts = rejected.values() if isinstance(rejected, DatasetDict) else [rejected]
    out: dict[str, int] = {}
    for ds in parts:
        if "reject_reason" not in ds.column_names:
            raise MissingColumnError("`rejected` needs a 'reject_reason' column (as schema.validate returns)")
        for reason, n in value_counts(ds, "reject_reason").items():
            out[reason] = out.get(reason, 0) + n
    return out


def card_identity(card: str, card_data: dict[str, Any] | None) -> str:
    """Hash of the card template choice and its JSON-able inputs (plots count by title only)."""
    data = dict(card_data or {})
    plots = data.pop("plots", None) or {}
    payload = {"card": str(card), "card_data": provenance._jsonable(data), "plots": sorted(plots)}
    return params_fingerprint(payload)


def describe(
    tree: dict[str, DatasetDict],
    *,
    card: str = "generic",
    card_data: dict[str, Any] | None = None,
    rejected=None,
    known: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The content part of the manifest, computed from the data alone (one read pass per split).

    ``known``: ``{config: {split: {field: value}}}`` already computed (:func:`content_digest`
    and :func:`split_digests`, by ``publish`` in a thread while the shards are written).
    """
    from .. import __version__

    steps, per_split = collect_steps(tree)
    configs: dict[str, Any] = {}
    for name, dd in tree.items():
        splits = {}
        for split, ds in dd.items():
            have = (known or {}).get(name, {}).get(split, {})
            splits[split] = {
                "num_rows": len(ds),
                **(split_digests(ds) if "ids_sha256" not in have else {}),
                **({"content_sha256": content_digest(ds)} if "content_sha256" not in have else {}),
                **have,
                "fingerprint": ds._fingerprint,  # private, no public getter; informative only (not in identity_sha256)
                "steps": per_split[name][split],
            }
        configs[name] = {"features": next(iter(dd.values())).features.to_dict(), "splits": splits}
    return {
        "format": FORMAT,
        "package_version": __version__,
        "card": str(card),
        "card_sha256": card_identity(card, card_data),
        "configs": configs,
        "steps": steps,
        "rejected": rejected_counts(rejected),
    }


def identity_sha256(manifest: dict[str, Any]) -> str:
    """Hash of what decides the published content; equal hashes = same publish."""
    view = {
        "package_version": manifest["package_version"],
        "card_sha256": manifest["card_sha256"],
        "rejected": manifest["rejected"],
        "steps": [{k: v for k, v in s.items() if k not in VOLATILE_STEP_KEYS} for s in manifest["steps"]],
        "configs": {
            name: {
                "features": c["features"],
                "splits": {
                    split: {k: s[k] for k in ("num_rows", "ids_sha256", "content_sha256", "sources", "steps")}
                    for split, s in c["splits"].items()
                },
            }
            for name, c in manifest["configs"].items()
        },
    }
    return params_fingerprint(view)


def load_manifest(published: str | dict[str, Any]) -> dict[str, Any] | None:
    """A manifest from a dict, a ``curation.json`` path or a folder holding one (``None`` if absent)."""
    if isinstance(published, dict):
        return published
    path = os.path.join(published, MANIFEST_FILE) if os.path.isdir(published) else published
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except ValueError as err:  # a truncated or hand-edited file
            raise FormatError(f"{path}: not valid JSON ({err}); publish again to rewrite it") from None


def would_change(
    ds,
    published: str | dict[str, Any],
    *,
    configs=None,
    card: str = "generic",
    card_data: dict[str, Any] | None = None,
    rejected=None,
) -> bool:
    """True when publishing ``ds`` with these options would differ from ``published``.

    ``published`` is a local publish folder, a ``curation.json`` path (e.g. downloaded
    from the Hub with ``hf_hub_download``) or a manifest dict. No manifest → ``True``.

    Example:
        >>> would_change(dd, "out/my-mixture")  # doctest: +SKIP
        False
    """
    from .layout import as_configs

    old = load_manifest(published)
    if old is None:
        return True
    new = describe(as_configs(ds, configs), card=card, card_data=card_data, rejected=rejected)
    return identity_sha256(new) != old.get("identity_sha256")
