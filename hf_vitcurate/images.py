"""Decode one image safely: a picture, or a short reason why not, never an exception.

Model stages read their chunks undecoded (``run_sharded(..., decode=False)``: images as
``{"bytes", "path"}``) and decode each row here, so a truncated PNG, corrupt bytes, a missing file or a decompression bomb
flags its row (``"image_error: <reason>"``) instead of killing the run, as decoding a
whole chunk through ``datasets`` does (``OSError: image file is truncated``). An image is
loaded fully (``load()``), so truncation is caught here and not later inside the model;
its size is checked from the header before any pixel is decoded (``max_pixels``), so a
bomb costs nothing. Orientation and mode follow ``datasets``' own decoding (EXIF
transpose), then RGB as the processors expect: good rows get the same pixels as before.

Example:
    >>> import io
    >>> from PIL import Image as PILImage
    >>> buf = io.BytesIO(); PILImage.effect_noise((64, 64), 60).save(buf, format="PNG")
    >>> png = buf.getvalue()
    >>> decode({"bytes": png, "path": None}).size
    (64, 64)
    >>> decode({"bytes": png[: len(png) // 2], "path": None})
    'truncated or corrupt (image file is truncated)'
    >>> decode({"bytes": png, "path": None}, max_pixels=1000)
    'too large (64x64 = 4096 pixels > max_pixels 1000)'
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

# 40M pixels: above any photo a vision encoder needs (a 6000x6000 scan is 36M), below the
# size whose decoding alone takes GBs (40M RGB pixels = 120 MB, as RGBA 160 MB).
MAX_PIXELS = 40_000_000
ERROR = "image_error: "


# Encoded image types by their first bytes: (name, file suffix, media type).
_SIGNATURES = (
    (lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"), "png", ".png", "image/png"),
    (lambda b: b.startswith(b"\xff\xd8\xff"), "jpeg", ".jpg", "image/jpeg"),
    (lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP", "webp", ".webp", "image/webp"),
    (lambda b: b[:6] in (b"GIF87a", b"GIF89a"), "gif", ".gif", "image/gif"),
    (lambda b: b[:2] == b"BM", "bmp", ".bmp", "image/bmp"),
    (lambda b: b[:4] in (b"II*\x00", b"MM\x00*"), "tiff", ".tif", "image/tiff"),
)


def image_type(data: bytes) -> tuple[str, str, str] | None:
    """``(name, suffix, media type)`` of encoded image bytes from their first bytes, or ``None``.

    The one place the package sniffs image bytes (file names when writing images out, data URLs
    for HTTP backends).

    >>> image_type(b"GIF89a...."), image_type(b"\\xff\\xd8\\xff\\xe0"), image_type(b"junk")
    (('gif', '.gif', 'image/gif'), ('jpeg', '.jpg', 'image/jpeg'), None)
    """
    head = bytes(data[:16])
    for test, name, suffix, mime in _SIGNATURES:
        if test(head):
            return name, suffix, mime
    return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 120 else text[:117] + "..."


def _open(ref: Any):
    """A lazily opened PIL image of ``ref`` (bytes, a local path, or a remote path ``datasets`` reads)."""
    import PIL.Image

    if isinstance(ref, str):
        ref = {"bytes": None, "path": ref}
    data, path = ref.get("bytes"), ref.get("path")
    if data is not None:
        return PIL.Image.open(io.BytesIO(data))
    if "://" in path or "::" in path:  # hf://, https:// ...: read through datasets (tokens, retries)
        from datasets.utils.file_utils import xopen

        with xopen(path, "rb") as f:
            return PIL.Image.open(io.BytesIO(f.read()))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder")
    return PIL.Image.open(path)


def decode(ref: Any, *, max_pixels: int | None = MAX_PIXELS, mode: str | None = "RGB"):
    """``ref`` (``{"bytes", "path"}`` as ``Image(decode=False)`` gives it, a path, or a PIL image)
    as a fully loaded PIL image in ``mode``, or a short reason string when it cannot be one.

    ``max_pixels``: refuse images with more pixels (width x height, read from the header
    before decoding; ``None``: no cap beyond PIL's own decompression-bomb guard).
    """
    import PIL.Image
    import PIL.ImageOps

    if ref is None or ref == "" or (isinstance(ref, dict) and ref.get("bytes") is None and not ref.get("path")):
        return "no image (no bytes and no path)"
    if not isinstance(ref, (str, dict, PIL.Image.Image)):
        return f"not an image reference ({type(ref).__name__})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            im = ref if isinstance(ref, PIL.Image.Image) else _open(ref)
            pixels = im.size[0] * im.size[1]
            if max_pixels is not None and pixels > max_pixels:
                return f"too large ({im.size[0]}x{im.size[1]} = {pixels} pixels > max_pixels {max_pixels})"
            im.load()
            if im.getexif().get(PIL.Image.ExifTags.Base.Orientation) is not None:
                im = PIL.ImageOps.exif_transpose(im)
            if mode and im.mode != mode:
                im = im.convert(mode)
            return im
    except PIL.Image.DecompressionBombError as exc:
        return f"decompression bomb ({_short(exc)})"
    except FileNotFoundError:
        return "missing file"
    except PIL.UnidentifiedImageError:
        return "not an image (unidentified format)"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # PIL's decoders raise all of these
        return f"truncated or corrupt ({_short(exc)})"
    except Exception as exc:  # noqa: BLE001 - a decoder bug must flag its row, not stop the run
        return f"undecodable ({type(exc).__name__}: {_short(exc)})"


def decode_rows(rows: dict[str, list], *, max_pixels: int | None = MAX_PIXELS, column: str = "images"
                ) -> tuple[list[int], dict[str, list], dict[int, str]]:
    """Decode the ``column`` images of a batch (a dict of lists); keep the rows whose images all decode.

    Returns ``(good, kept, errors)``: positions of the good rows, the batch restricted to
    them with decoded images, and ``{position: "image_error: <reason>"}`` for the others
    (the first failing image of the row; ``image 2/3`` names it when the row has several).

    >>> good, kept, errors = decode_rows({"images": [[], [{"bytes": b"junk", "path": None}]], "x": [1, 2]})
    >>> good, kept["x"], errors
    ([0], [1], {1: 'image_error: not an image (unidentified format)'})
    """
    n = len(next(iter(rows.values()))) if rows else 0
    refs = rows.get(column) or [[]] * n
    good, decoded, errors = [], [], {}
    for i, row_refs in enumerate(refs):
        ims = []
        for k, ref in enumerate(row_refs or []):
            im = decode(ref, max_pixels=max_pixels)
            if isinstance(im, str):
                where = f"image {k + 1}/{len(row_refs)} " if len(row_refs) > 1 else ""
                errors[i] = f"{ERROR}{where}{im}"
                break
            ims.append(im)
        else:
            good.append(i)
            decoded.append(ims)
    kept = {k: [v[i] for i in good] for k, v in rows.items() if k != column}
    if column in rows:
        kept[column] = decoded
    return good, kept, errors

