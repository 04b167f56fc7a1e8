"""What the engine asks a backend and what comes back: :class:`Request`, :class:`Response`, :class:`Backend`.

A request's :meth:`Request.key` hashes everything that determines the answer (model,
messages, image bytes, sampling settings, attempt): the request cache and the sampling
seed of a regeneration both key on it.

Example:
    >>> r = Request("Is it red?", max_tokens=8)
    >>> r.key("m") == Request("Is it red?", max_tokens=8).key("m"), r.key("m") == r.key("other")
    (True, False)
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class Request:
    """One generation call: a user prompt, optional images, sampling settings.

    ``attempt`` enters the cache key so that a regeneration is a new request (and is
    sampled with ``retry_temperature`` by the engine); ``meta`` (row ids, step) does not.
    """

    prompt: str
    images: list = field(default_factory=list)  # PIL images, encoded bytes or datasets' {"bytes", "path"}
    max_tokens: int = 512
    temperature: float = 0.0
    system: str | None = None
    attempt: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def image_bytes(self) -> list[bytes]:
        return [png_bytes(im) for im in self.images]

    def key(self, model: str) -> str:
        """Hash of everything that determines the answer (never the key or the meta)."""
        blob = json.dumps(
            {
                "model": model,
                "system": self.system,
                "prompt": self.prompt,
                "images": [_image_hash(im) for im in self.images],
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "attempt": self.attempt,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Response:
    """What came back. ``error`` is empty on success; ``cached`` marks a cache hit (not paid again)."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0
    model: str = ""
    key: str = ""
    cached: bool = False
    # "" | "bad_response" | "request_failed" | "http_<status>" | "redirected_elsewhere" | "image_error" | "model_error"
    error: str = ""
    error_detail: str = ""
    latency_s: float = 0.0
    tries: int = 1
    estimated: bool = False  # token counts guessed (no usage from the server): the ledger adds image tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """What the engine needs from a backend."""

    model: str

    def generate(self, requests: Sequence[Request]) -> list[Response]: ...


def png_bytes(image) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, dict):  # datasets Image storage {"bytes", "path"}
        if image.get("bytes"):
            return image["bytes"]
        with open(image["path"], "rb") as f:
            return f.read()
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _image_hash(image) -> str:
    try:
        return hashlib.sha256(png_bytes(image)).hexdigest()
    except OSError as exc:  # an unreadable file: its request fails with an image_error, never cached
        return f"unreadable:{type(exc).__name__}:{image.get('path') if isinstance(image, dict) else ''}"


def pil(image, *, max_pixels: int | None = None):
    """An RGB PIL image, decoded in full (a truncated or corrupt file raises here, not inside a model).

    ``max_pixels``: larger images raise ``ValueError`` before their pixels are decoded
    (PIL's own decompression-bomb guard applies as well).
    """
    from PIL import Image

    if isinstance(image, (bytes, bytearray, dict)):
        image = Image.open(io.BytesIO(png_bytes(image)))
    if max_pixels is not None and image.width * image.height > max_pixels:
        raise ValueError(f"{image.width}x{image.height} pixels, over max_pixels={max_pixels}")
    return image.convert("RGB")


def image_mime(data: bytes) -> str:
    """The media type of encoded image bytes, from their first bytes (``image/png`` when unknown:
    :func:`png_bytes` encodes only decoded images, as PNG; stored bytes are sent as they are)."""
    from ..images import image_type

    found = image_type(data)
    return found[2] if found else "image/png"


def estimate_tokens(text: str) -> int:
    """About 4 characters a token: used only when a server reports no usage."""
    return max(1, round(len(text) / 4)) if text else 0


__all__ = ["Backend", "Request", "Response", "estimate_tokens", "image_mime", "pil", "png_bytes"]
