"""One sniffer of encoded image bytes (hf_vitcurate.images.image_type) behind both the file suffix of
written images (formats.writing) and the media type of data URLs (engine.request.image_mime)."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from hf_vitcurate.engine.request import image_mime
from hf_vitcurate.formats.writing import _image_ext
from hf_vitcurate.images import image_type


def encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), (200, 10, 10)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, suffix, mime", [("PNG", ".png", "image/png"), ("JPEG", ".jpg", "image/jpeg"),
                                               ("WEBP", ".webp", "image/webp"), ("GIF", ".gif", "image/gif"),
                                               ("BMP", ".bmp", "image/bmp"), ("TIFF", ".tif", "image/tiff")])
def test_every_common_format_gets_its_suffix_and_media_type_from_one_sniffer(fmt, suffix, mime):
    data = encoded(fmt)
    assert image_type(data)[1:] == (suffix, mime)
    assert _image_ext(data) == suffix and image_mime(data) == mime  # was .img and image/png for BMP, TIFF
    # What PIL itself says the bytes are agrees.
    assert PILImage.open(io.BytesIO(data)).get_format_mimetype() == mime


def test_unknown_bytes():
    assert image_type(b"GIF8") is None and image_type(b"") is None
    assert _image_ext(b"not an image") == ".img" and image_mime(b"not an image") == "image/png"
