"""Helpers shared by subcommands: reading inputs and writing outputs the same way everywhere."""

from __future__ import annotations

import os

from datasets import Dataset, DatasetDict, load_from_disk


def load_input(path: str, format: str = "auto", image_root: str | None = None, source: str | None = None) -> Dataset:
    """A dataset saved with ``save_to_disk`` or any file/repo :func:`hf_vitcurate.load_vit` reads."""
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "dataset_info.json")):
        ds = load_from_disk(path)
        if isinstance(ds, DatasetDict):
            raise SystemExit(f"{path} holds a DatasetDict; give one split's folder")
        return ds
    from .. import load_vit

    return load_vit(path, format=format, image_root=image_root, source=source)


def save_output(ds: Dataset, path: str) -> None:
    """Write ``ds`` to ``path``: ``.jsonl``/``.json``/``.parquet`` by suffix, else ``save_to_disk``."""
    if path.endswith(".parquet"):
        ds.to_parquet(path)
    elif path.endswith(".jsonl"):
        ds.to_json(path, lines=True)
    elif path.endswith(".json"):
        ds.to_json(path, lines=False)
    else:
        ds.save_to_disk(path)


def add_input_args(parser) -> None:
    parser.add_argument("input", help="file, folder saved with save_to_disk, or Hub repo id")
    parser.add_argument("--format", default="auto", help="input format (default: detect)")
    parser.add_argument("--image-root", default=None, help="folder that relative image paths are under")
    parser.add_argument("--source", default=None, help="value of the `source` column (default: file name)")


def add_release_args(parser, repo_id: str, out: str) -> None:
    """``--out``, ``--repo-id``, ``--version`` and ``--push``: the options every dataset script's release shares.

    Example: ``add_release_args(p, "hf-vitcurate/shapesworld-svit-core", "out/svit_core")``.
    """
    parser.add_argument("--out", default=out, help=f"output folder (default: {out})")
    parser.add_argument("--repo-id", default=repo_id, help="repo id for the card/publish")
    parser.add_argument("--version", default=None, help="publish version tag (e.g. v1)")
    parser.add_argument("--push", action="store_true", help="also push to the Hub (needs a token)")
