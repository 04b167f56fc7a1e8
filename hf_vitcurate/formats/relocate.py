"""Image paths that travel with a file: written relative to it, read back relative to it.

:func:`relocate_images` rewrites the ``images`` column for a canonical JSON(L) output:
paths relative to the output's folder (``image_paths="relative"``, valid when the output and
the images move together) or every image copied next to the output
(``image_paths="copy"``: ``images/{id}-{k}.{ext}``, the folder is self-contained).
:func:`resolve_images` is the reading side: relative paths of a canonical file are joined
to ``image_root`` (by default the file's folder), as every other format does.

Example:
    >>> relocate_images(ds, "out/pool.jsonl", image_paths="copy").to_json("out/pool.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Image, List

from .common import absolute_paths, resolve_path, root_prefix
from .writing import export_images


def _has_relative(images: pa.ChunkedArray) -> bool:
    """True when some image has a relative path and no bytes (vectorised)."""
    flat = pc.list_flatten(images)
    if len(flat) == 0 or not pa.types.is_struct(flat.type) or flat.type.get_field_index("path") < 0:
        return False
    paths = pc.fill_null(pc.struct_field(flat, "path").cast(pa.string()), "/")
    absolute = absolute_paths(paths)
    no_bytes = pc.is_null(pc.struct_field(flat, "bytes")) if flat.type.get_field_index("bytes") >= 0 else pc.invert(absolute)
    return bool(pc.any(pc.and_(no_bytes, pc.invert(absolute))).as_py())


def _undecoded(ds: Dataset) -> Dataset:
    return ds.cast_column("images", List(Image(decode=False)))


def relocate_images(
    ds: Dataset, path: str, *, image_paths: str = "relative", image_root: str | None = None, image_dir: str | None = None
) -> Dataset:
    """``ds`` with image paths for a file written at ``path``, relative to ``image_root`` (default:
    the file's folder); copies go to ``image_dir`` (default ``<image_root>/images``), as in
    :func:`~.writing.write_records`."""
    root = os.path.abspath(image_root or os.path.dirname(os.path.abspath(path)))
    image_dir = image_dir or os.path.join(root, "images")

    def batch(b):
        rows = zip(b["images"], b["id"])
        return {"images": [[{"bytes": None, "path": p} for p in export_images(imgs, rid, root, image_dir, mode=image_paths)] for imgs, rid in rows]}

    out = _undecoded(ds).map(batch, batched=True, desc="relocating images")
    return out.cast_column("images", ds.features["images"])


def resolve_images(ds: Dataset, image_root: str | None) -> Dataset:
    """``ds`` with relative image paths (no bytes) joined to ``image_root``; unchanged when it is None."""
    prefix = root_prefix(image_root)
    if prefix is None or "images" not in ds.column_names or not _has_relative(ds.data.column("images")):
        return ds  # nothing to join: no pass over the (possibly embedded) image bytes

    def batch(b):
        return {"images": [[img if img["bytes"] or not img["path"] else {"bytes": None, "path": resolve_path(img["path"], prefix)}
                            for img in imgs or []] for imgs in b["images"]]}

    return _undecoded(ds).map(batch, batched=True, desc="resolving image paths")  # the caller casts to the schema
