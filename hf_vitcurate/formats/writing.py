"""Writing rows as foreign JSON/JSONL records, and where their image files go.

:func:`write_records` streams a dataset to a ``.json`` array or ``.jsonl`` file (the
LLaVA and ShareGPT savers give it one ``to_record`` function); :func:`export_images`
decides each image's written path: relative to a root, or copied next to the output.

Example:
    >>> export_images([{"bytes": None, "path": "/data/imgs/a.png"}], "r1", "/data", "/data/images")
    ['imgs/a.png']
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Iterable

from datasets import Dataset

from ..errors import ConfigError, NotFoundError

# A URL scheme (http://, s3://, file://): such a path is not a local file. One pattern for the package.
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def write_records(
    ds: Dataset,
    path: str,
    to_record: Callable[[dict[str, Any], list[str]], dict[str, Any]],
    *,
    image_root: str | None = None,
    image_dir: str | None = None,
    extra_keys: Iterable[str] = (),
    map_batch_size: int = 10_000,
    image_paths: str = "under_root",
) -> str:
    """Stream ``ds`` to a ``.json`` array or ``.jsonl`` file, one ``to_record(row, image_paths)`` each.

    Image paths come from :func:`export_images` (``image_paths`` is its ``mode``) with
    ``image_root`` defaulting to the output's folder and ``image_dir`` to ``<image_root>/images``; ``extra_keys`` columns
    are copied into each record. Rows are read as Arrow batches (images not decoded).
    """
    lines = path.endswith(".jsonl")
    if not (lines or path.endswith(".json")):
        raise ConfigError(f"output must end in .json or .jsonl, got {path!r}")
    root = os.path.abspath(image_root or os.path.dirname(os.path.abspath(path)))
    image_dir = image_dir or os.path.join(root, "images")
    keys = [k for k in extra_keys if k in ds.column_names]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("" if lines else "[\n")
        first = True
        for batch in ds.select_columns(["id", "images", "conversations", *keys]).with_format("arrow").iter(batch_size=map_batch_size):
            for row in batch.to_pylist():
                rec = {**to_record(row, export_images(row["images"], row["id"], root, image_dir, mode=image_paths)), **{k: row[k] for k in keys}}
                text = json.dumps(rec, ensure_ascii=False)
                f.write(text + "\n" if lines else ("" if first else ",\n") + text)
                first = False
        f.write("" if lines else "\n]\n")
    return path


IMAGE_PATHS = ("under_root", "relative", "copy")


def export_images(images: list[dict[str, Any]] | None, row_id: str, root: str, image_dir: str, *, mode: str = "under_root") -> list[str]:
    """Paths to write for a row's images (URLs are kept as they are).

    ``mode``: ``"under_root"``: relative to ``root`` when under it, else absolute;
    ``"relative"``: always relative to ``root`` (valid when the output and the images move
    together); ``"copy"``: every image file is copied to ``image_dir`` and written relative
    (the output folder is self-contained). Images held as bytes are written to
    ``image_dir/{row_id}-{k}.{ext}`` first (bytes win over a stored path, which may name a
    file that is not here).
    """
    if mode not in IMAGE_PATHS:
        raise ConfigError(f"image_paths must be one of {list(IMAGE_PATHS)}, got {mode!r}")
    out = []
    for k, img in enumerate(images or []):
        path, blob = img.get("path"), img.get("bytes")
        if mode == "copy" and not blob and path and not URL.match(path):
            if not os.path.isfile(path):
                raise NotFoundError(f"row {row_id!r}: images[{k}]: cannot copy {path}: no such file")
            with open(path, "rb") as f:  # closed now, not when garbage-collected (thousands of rows)
                blob = f.read()
        if blob:
            os.makedirs(image_dir, exist_ok=True)
            path = os.path.join(image_dir, f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', str(row_id))}-{k}{_image_ext(blob)}")
            with open(path, "wb") as f:
                f.write(blob)
        if not path:
            raise ConfigError(f"row {row_id!r}: image {k} has neither bytes nor a path")
        if not URL.match(path):
            path = os.path.abspath(path)
            if mode != "under_root" or path.startswith(root.rstrip("/") + "/"):
                path = os.path.relpath(path, root)
        out.append(path)
    return out


def _image_ext(blob: bytes) -> str:
    """The file suffix of encoded image bytes (``.img`` when the type is unknown)."""
    from ..images import image_type

    found = image_type(blob)
    return found[1] if found else ".img"
