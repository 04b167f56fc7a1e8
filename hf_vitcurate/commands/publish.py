"""``vitcurate publish``: write a Hub dataset repo (push_to_hub layout + card) and push it if asked.

Mirrors :func:`hf_vitcurate.hub.publish`. ``INPUT`` is a ``save_to_disk`` folder of
a ``Dataset`` or ``DatasetDict``, or a folder whose subfolders are such folders (one
config each, e.g. one per MMInstruct domain).

Example:
    $ vitcurate publish curated/ --repo-id me/shapes-mix --local-dir out/shapes-mix --card mllm_selector --version v1
    $ vitcurate publish curated/ --repo-id me/shapes-mix --local-dir out/shapes-mix --version v2 --push
"""

from __future__ import annotations

import json
import os

from ..errors import ConfigError, check_path
from .common import option, print_summary, quiet_if_small


def register(sub) -> None:
    from ..hub.card import CARDS
    from ..hub.publishing import publish

    p = sub.add_parser("publish", help="write a Hub dataset repo with a generated card; push with --push")
    p.add_argument("input", help="save_to_disk folder (Dataset or DatasetDict), or a folder of them (one per config)")
    p.add_argument("--repo-id", required=True, help="Hub dataset repo, e.g. org/name")
    p.add_argument("--local-dir", required=True, help="working tree of the repo (versions kept in its versions/)")
    p.add_argument("--configs", default=None,
                   help="config name for a single dataset (default: 'default'); for a folder of configs, "
                        "comma-separated configs to publish")
    option(p, publish, "card", f"template: one of {', '.join(CARDS)}, or a path")
    p.add_argument("--card-data", default=None, help="JSON file with card fields (sources, license, tables, ...)")
    p.add_argument("--rejected", default=None, help="save_to_disk folder of rejected rows (with reject_reason)")
    option(p, publish, "version", "tag of this release (never overwritten), e.g. v1", type=str)
    option(p, publish, "max_shard_size", "Parquet shard size")
    option(p, publish, "push", "upload with huggingface_hub (token from HF_TOKEN or login)")
    option(p, publish, "private", "create the Hub repo private")
    p.set_defaults(func=run)


def _is_saved(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "dataset_info.json")) or os.path.isfile(os.path.join(path, "dataset_dict.json"))


def load_tree(path: str, configs: str | None):
    """A saved Dataset/DatasetDict, or ``{subfolder: DatasetDict}`` for a folder of saved datasets; plus ``configs``."""
    from datasets import DatasetDict, load_from_disk

    if _is_saved(path):
        return load_from_disk(path), configs
    check_path(path, hub=False)
    subdirs = sorted(d for d in os.listdir(path) if _is_saved(os.path.join(path, d))) if os.path.isdir(path) else []
    if not subdirs:
        raise ConfigError(f"INPUT: {path} is not a save_to_disk folder and has none inside")
    tree = {}
    for d in subdirs:
        value = load_from_disk(os.path.join(path, d))
        tree[d] = value if isinstance(value, DatasetDict) else DatasetDict({str(value.split or "train"): value})
    return tree, (configs.split(",") if configs else None)


def _rows(data) -> int:
    if isinstance(data, dict):  # DatasetDict, or {config: DatasetDict}
        return sum(_rows(v) for v in data.values())
    return len(data)


def run(args) -> int:
    from datasets import load_from_disk

    from ..hub import publish

    data, configs = load_tree(args.input, args.configs)
    quiet_if_small(_rows(data))
    card_data = None
    if args.card_data:
        check_path(args.card_data, flag="--card-data", hub=False)
        with open(args.card_data, encoding="utf-8") as f:
            try:
                card_data = json.load(f)
            except json.JSONDecodeError as err:
                raise ConfigError(f"--card-data: {args.card_data} is not JSON ({err})") from None
        if not isinstance(card_data, dict):
            raise ConfigError(f"--card-data: {args.card_data} must hold a JSON object, not {type(card_data).__name__}")
    check_path(args.rejected, flag="--rejected", hub=False)
    rejected = load_from_disk(args.rejected) if args.rejected else None
    out = publish(data, repo_id=args.repo_id, local_dir=args.local_dir, configs=configs, card=args.card,
                  card_data=card_data, version=args.version, push=args.push, private=args.private,
                  max_shard_size=args.max_shard_size, rejected=rejected)
    with open(os.path.join(out, "curation.json"), encoding="utf-8") as f:
        man = json.load(f)
    counts = {c: {s: v["num_rows"] for s, v in m["splits"].items()} for c, m in man["configs"].items()}
    print_summary({"output": out, "repo_id": args.repo_id, "version": args.version, "pushed": args.push,
                   "rows": counts, "identity_sha256": man["identity_sha256"]})
    return 0
