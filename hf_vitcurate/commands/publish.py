"""``vitcurate publish``: write a Hub dataset repo (push_to_hub layout + card) and push it if asked.

Mirrors :func:`hf_vitcurate.hub.publish`. ``INPUT_DIR`` is a ``save_to_disk`` folder of
a ``Dataset`` or ``DatasetDict``, or a folder whose subfolders are such folders (one
config each, e.g. one per MMInstruct domain).

Example:
    $ vitcurate publish curated/ me/shapes-mix --local-dir out/shapes-mix --card mllm_selector --version v1
    $ vitcurate publish curated/ me/shapes-mix --local-dir out/shapes-mix --version v2 --push
"""

from __future__ import annotations

import json
import os

from datasets import DatasetDict, load_from_disk


def register(sub) -> None:
    from ..hub.card import CARDS

    p = sub.add_parser("publish", help="write a Hub dataset repo with a generated card; push with --push")
    p.add_argument("input", help="save_to_disk folder (Dataset or DatasetDict), or a folder of them (one per config)")
    p.add_argument("repo_id", help="Hub dataset repo, e.g. org/name")
    p.add_argument("--local-dir", required=True, help="working tree of the repo (versions kept in its versions/)")
    p.add_argument("--config", default=None,
                   help="config name for a single dataset (default: 'default'); for a folder of configs, "
                        "comma-separated configs to publish")
    p.add_argument("--card", default="generic", help=f"template: one of {', '.join(CARDS)}, or a path")
    p.add_argument("--card-data", default=None, help="JSON file with card fields (sources, license, tables, ...)")
    p.add_argument("--rejected", default=None, help="save_to_disk folder of rejected rows (with reject_reason)")
    p.add_argument("--version", default=None, help="tag of this release (never overwritten), e.g. v1")
    p.add_argument("--max-shard-size", default="500MB", help="Parquet shard size (default 500MB)")
    p.add_argument("--push", action="store_true", help="upload with huggingface_hub (token from HF_TOKEN or login)")
    p.add_argument("--public", action="store_true", help="create the Hub repo public (default: private)")
    p.set_defaults(func=run)


def _is_saved(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "dataset_info.json")) or os.path.isfile(os.path.join(path, "dataset_dict.json"))


def load_tree(path: str, config: str | None):
    """A saved Dataset/DatasetDict, or ``{subfolder: DatasetDict}`` for a folder of saved datasets; plus ``configs``."""
    if _is_saved(path):
        return load_from_disk(path), config
    subdirs = sorted(d for d in os.listdir(path) if _is_saved(os.path.join(path, d)))
    if not subdirs:
        raise SystemExit(f"{path} is not a save_to_disk folder and has none inside")
    tree = {}
    for d in subdirs:
        value = load_from_disk(os.path.join(path, d))
        tree[d] = value if isinstance(value, DatasetDict) else DatasetDict({str(value.split or "train"): value})
    return tree, (config.split(",") if config else None)


def run(args) -> int:
    from ..hub import publish

    data, configs = load_tree(args.input, args.config)
    card_data = None
    if args.card_data:
        with open(args.card_data, encoding="utf-8") as f:
            card_data = json.load(f)
    rejected = load_from_disk(args.rejected) if args.rejected else None
    out = publish(
        data,
        args.repo_id,
        local_dir=args.local_dir,
        configs=configs,
        card=args.card,
        card_data=card_data,
        version=args.version,
        push=args.push,
        private=not args.public,
        max_shard_size=args.max_shard_size,
        rejected=rejected,
    )
    with open(os.path.join(out, "curation.json"), encoding="utf-8") as f:
        man = json.load(f)
    counts = {c: {s: v["num_rows"] for s, v in m["splits"].items()} for c, m in man["configs"].items()}
    print(json.dumps({"local_dir": out, "repo_id": args.repo_id, "version": args.version, "pushed": args.push,
                      "rows": counts, "identity_sha256": man["identity_sha256"]}, indent=2))
    return 0
