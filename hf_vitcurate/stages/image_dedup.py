"""Image de-duplication: exact copies by content hash, near copies by embedding or perceptual hash.

:func:`image_duplicates` splits a dataset of images into the rows kept and the duplicates
(rejected, with ``reject_reason`` and ``duplicate_of``, the id of the row they repeat):

- ``duplicate_image``: the same bytes (SHA-256 of each image's file or stored bytes);
- ``near_duplicate_image``: cosine similarity of the ``image_embedding`` vectors
  (:func:`hf_vitcurate.stages.image_embeddings`) over ``threshold``, or, with ``column=None``,
  the cosine of small RGB thumbnails (:func:`thumbnail_vector`, a perceptual descriptor:
  re-encoded, re-saved and resized copies stay close; no model needed).

Both inside the dataset and against ``against`` (images already in the pool, which are never
removed). Rows are read in order and the first occurrence is kept: a row is a duplicate of
the most similar earlier row that was kept (so a chain A ~ B ~ C with A and C apart keeps
A and C). Neighbours come from a faiss range search (``IndexFlatIP`` on unit vectors): exact,
no pair loop in Python. Rows in = kept + rejected.

Example:
    >>> kept, rejected = image_duplicates(embedded, against=pool)             # doctest: +SKIP
    >>> rejected.select_columns(["id", "reject_reason", "duplicate_of"])[0]    # doctest: +SKIP
    {'id': 'img-7', 'reject_reason': 'near_duplicate_image', 'duplicate_of': 'img-2'}
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator

import numpy as np
from datasets import Dataset, Value

from .. import provenance
from ..columns import add_columns
from ..errors import ConfigError, missing_column
from ..images import decode
from ..results import Split
from .image_embeddings import normalise

EXACT, NEAR = "duplicate_image", "near_duplicate_image"
# Cosine over which two images are the same picture: model embeddings; 16x16 RGB thumbnails
# (ShapesWorld: re-encoded copies >= 0.995, distinct scenes <= 0.968).
DEFAULT_THRESHOLDS = {"embedding": 0.97, "thumbnail": 0.985}
THUMBNAIL = 16


def image_refs(ds: Dataset, *, batch_size: int = 1024) -> Iterator[list[dict]]:
    """Each row's image references (``{"bytes", "path"}``), read ``batch_size`` rows at a time
    (a pool's image bytes are never all in memory at once)."""
    if "images" not in ds.column_names:
        raise missing_column("images", ds.column_names, what="image column")
    for batch in ds.with_format("arrow").select_columns(["images"]).iter(batch_size=batch_size):
        yield from (row or [] for row in batch.column("images").to_pylist())


def _bytes(ref: dict | None) -> bytes | None:
    if not ref:
        return None  # a null image in the list: no bytes to compare
    if ref.get("bytes") is not None:
        return ref["bytes"]
    try:
        from datasets.utils.file_utils import xopen

        with xopen(ref["path"], "rb") as f:
            return f.read()
    except (OSError, TypeError, ValueError):
        return None  # a missing file hashes as nothing: not an exact duplicate of anything


def row_hash(refs: list[dict]) -> str | None:
    """SHA-256 of a row's image bytes (several images: of their hashes in order); None without images
    or when one cannot be read."""
    digests = [_bytes(r) for r in refs]
    if not digests or any(d is None for d in digests):
        return None
    parts = [hashlib.sha256(d).hexdigest() for d in digests]
    return parts[0] if len(parts) == 1 else hashlib.sha256(" ".join(parts).encode()).hexdigest()


def content_hashes(ds: Dataset) -> list[str | None]:
    """:func:`row_hash` of every row of ``ds``."""
    return [row_hash(refs) for refs in image_refs(ds)]


def thumbnail_vector(image, *, size: int = THUMBNAIL) -> np.ndarray:
    """A perceptual descriptor of a PIL image: its ``size`` x ``size`` RGB thumbnail (box filter), centred, unit norm.

    Re-encoded (JPEG, WebP), re-saved and resized copies keep a cosine near 1; a gradient-sign
    hash (dHash) does not do here: objects of any colour on a light background give the
    same signs, so two pictures that differ only in an object's colour would hash alike.

    >>> from PIL import Image
    >>> v = thumbnail_vector(Image.new("RGB", (32, 32), (10, 200, 30)))
    >>> v.shape, round(float(np.linalg.norm(v)), 4)
    ((768,), 1.0)
    """
    from PIL import Image

    pixels = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BOX), dtype=np.float32).ravel()
    pixels -= pixels.mean()
    norm = float(np.linalg.norm(pixels))
    return pixels / norm if norm > 0 else pixels


def _vectors(ds: Dataset, column: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors, valid)``: the float32 unit vectors of ``column``, or (``column=None``) thumbnail vectors."""
    if column is None:
        rows = []
        for refs in image_refs(ds):
            ims = [decode(r) for r in refs]
            ok = bool(ims) and not any(isinstance(im, str) for im in ims)
            rows.append(normalise(np.mean([thumbnail_vector(im) for im in ims], 0)[None])[0] if ok else None)
        valid = np.array([r is not None for r in rows], dtype=bool)
        zero = np.zeros(3 * THUMBNAIL * THUMBNAIL, np.float32)
        return np.array([zero if r is None else r for r in rows], dtype=np.float32).reshape(len(rows), zero.size), valid
    if column not in ds.column_names:
        raise missing_column(column, ds.column_names, what="embedding column",
                             hint="run hf_vitcurate.stages.image_embeddings first, or pass column=None for a perceptual hash")
    values = ds.with_format("arrow").select_columns([column])[:].column(column).to_pylist()
    valid = np.array([v is not None for v in values], dtype=bool)
    dim = next((len(v) for v in values if v is not None), 0)
    out = np.zeros((len(values), dim), dtype=np.float32)
    if valid.any():
        out[valid] = np.asarray([v for v in values if v is not None], dtype=np.float32)
    return out, valid


def neighbours(queries: np.ndarray, base: np.ndarray, *, threshold: float) -> list[dict[int, float]]:
    """For each query row, ``{base row: cosine}`` of the base rows with cosine over ``threshold`` (faiss range search).

    >>> v = np.eye(3, dtype=np.float32)
    >>> neighbours(v[:1], v, threshold=0.5)
    [{0: 1.0}]
    """
    import faiss

    if len(base) == 0 or len(queries) == 0:
        return [{} for _ in range(len(queries))]
    index = faiss.IndexFlatIP(base.shape[1])  # exact inner product = cosine on unit vectors
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    lims, sims, ids = index.range_search(np.ascontiguousarray(queries, dtype=np.float32), float(threshold))
    return [dict(zip(ids[lims[i]:lims[i + 1]].tolist(), sims[lims[i]:lims[i + 1]].tolist())) for i in range(len(queries))]


def row_ids(ds: Dataset) -> list[str]:
    return [str(v) for v in ds["id"]] if "id" in ds.column_names else [str(i) for i in range(len(ds))]


def image_duplicates(
    ds: Dataset,
    *,
    against: Dataset | None = None,
    threshold: float | None = None,
    column: str | None = "image_embedding",
) -> Split:
    """Split ``ds`` into kept rows and duplicate images (see the module docstring).

    ``against``: images already in the pool (same embedding ``column``); rows of ``ds`` that
    repeat one are rejected, ``against`` itself is untouched. ``threshold``: the similarity
    over which two images are near duplicates (default :data:`DEFAULT_THRESHOLDS`: 0.97 cosine
    for model embeddings, 0.985 for thumbnails); ``column=None``: compare thumbnails instead of
    embeddings (embeddings of an untrained model do not separate pictures: use thumbnails then). Rows with a null embedding (an undecodable image) are only compared by hash.
    """
    kind = "thumbnail" if column is None else "embedding"
    threshold = DEFAULT_THRESHOLDS[kind] if threshold is None else float(threshold)
    if not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold is a similarity in [-1, 1], got {threshold}")
    ids = row_ids(ds)
    hashes = content_hashes(ds)
    vecs, valid = _vectors(ds, column)
    inner = neighbours(vecs[valid], vecs[valid], threshold=threshold)
    where = np.flatnonzero(valid)
    near = [dict() for _ in range(len(ds))]
    for q, found in zip(where.tolist(), inner):
        near[q] = {int(where[j]): s for j, s in found.items() if where[j] < q}  # earlier rows only
    pool_hashes: dict[str, str] = {}
    pool_near: list[dict[int, float]] = [{} for _ in range(len(ds))]
    pool_ids: list[str] = []
    if against is not None and len(against):
        pool_ids = row_ids(against)
        for h, i in zip(content_hashes(against), pool_ids):
            if h is not None:
                pool_hashes.setdefault(h, i)
        pvecs, pvalid = _vectors(against, column)
        if pvalid.any() and valid.any() and pvecs.shape[1] != vecs.shape[1]:
            raise ConfigError(f"{column!r} has {vecs.shape[1]} dimensions here and {pvecs.shape[1]} in against: "
                              "embed both with the same model")
        found = neighbours(vecs[valid], pvecs[pvalid], threshold=threshold)
        pwhere = np.flatnonzero(pvalid)
        for q, hits in zip(where.tolist(), found):
            pool_near[q] = {int(pwhere[j]): s for j, s in hits.items()}
    reasons, of, detail = _decide(ids, hashes, near, pool_hashes, pool_near, pool_ids)
    return split_duplicates(ds, reasons, of, detail, params={"threshold": threshold, "method": kind, "column": column,
                                                    "against": len(against) if against is not None else 0})


def _decide(ids, hashes, near, pool_hashes, pool_near, pool_ids):
    """Row by row in order: ``(reasons, duplicate_of, details)``; only kept rows are anchors."""
    reasons: dict[int, str] = {}
    of: dict[int, str] = {}
    detail: dict[int, str] = {}
    first: dict[str, int] = {}
    for i, h in enumerate(hashes):
        if h is not None and h in pool_hashes:
            reasons[i], of[i], detail[i] = EXACT, pool_hashes[h], f"same bytes as pool image {pool_hashes[h]}"
        elif h is not None and h in first:
            reasons[i], of[i], detail[i] = EXACT, ids[first[h]], f"same bytes as row {first[h]}"
        elif pool_near[i]:
            j, s = max(pool_near[i].items(), key=lambda kv: (kv[1], -kv[0]))
            reasons[i], of[i], detail[i] = NEAR, pool_ids[j], f"similarity {s:.4f} with pool image {pool_ids[j]}"
        else:
            anchors = {j: s for j, s in near[i].items() if j not in reasons}
            if anchors:
                j, s = max(anchors.items(), key=lambda kv: (kv[1], -kv[0]))
                reasons[i], of[i], detail[i] = NEAR, ids[j], f"similarity {s:.4f} with row {j}"
        if h is not None and i not in reasons:
            first.setdefault(h, i)
    return reasons, of, detail


def split_duplicates(ds: Dataset, reasons: dict[int, str], of: dict[int, str], detail: dict[int, str], *, params: dict,
                     step: str = "image_duplicates") -> Split:
    """Rows of ``ds`` kept, and those in ``reasons`` rejected with ``reject_reason``, ``reject_detail``, ``duplicate_of``."""
    bad = sorted(reasons)
    kept = ds.select([i for i in range(len(ds)) if i not in reasons]) if bad else ds
    rejected = add_columns(
        ds.select(bad),
        {"reject_reason": [reasons[i] for i in bad], "reject_detail": [detail[i] for i in bad],
         "duplicate_of": [of[i] for i in bad]},
        features={"reject_reason": Value("string"), "reject_detail": Value("string"), "duplicate_of": Value("string")},
    )
    counts = dict(Counter(reasons.values()))
    kept = provenance.record(kept, step, kind="stage", rows_in=len(ds), rejected=counts, params=params, parent=ds)
    rejected = provenance.record(rejected, step, kind="stage", rows_in=len(ds), rows_out=len(rejected),
                                 rejected=counts, params=params, parent=ds)
    return Split(kept, rejected)
