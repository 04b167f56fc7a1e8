"""The HTTP backend: an OpenAI-compatible chat-completions server (a hosted GPT-4V/GPT-3.5-class model, vLLM, TGI).

Standard library only (``urllib`` + a thread pool): at most ``max_concurrency`` requests in
flight, a timeout per request, retries with exponential backoff (and ``Retry-After``) on
429/5xx/timeouts/connection errors. The API key is read from the environment at request
time and kept only in the request header: it is never stored on the backend, in the cache,
the ledger, outputs or log messages.

Example:
    >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", "gpt-3.5-turbo-1106", cache_dir="cache/")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from .cache import CachedBackend, RequestCache
from .request import Request, Response, estimate_tokens

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIBackend(CachedBackend):
    """Chat completions over HTTP with bounded concurrency, timeouts, retries and a request cache.

    Args:
        base_url: server root, e.g. ``"https://api.openai.com/v1"`` or ``"http://127.0.0.1:8000/v1"``;
            requests go to ``{base_url}/chat/completions``.
        model: the model name sent to the server (and the ledger's price key).
        api_key_env: name of the environment variable holding the key (read per request;
            no key: no ``Authorization`` header, as a local vLLM server expects).
        max_concurrency: requests in flight at most.
        timeout_s: seconds per attempt (connect + each read).
        max_retries: retries after the first try on 429/5xx/timeouts/connection errors.
        backoff_s, backoff_max_s: first wait and cap; the wait doubles per retry, with jitter,
            and a server's ``Retry-After`` is honoured up to the cap.
        image_detail: ``"low"`` (85 tokens an image at OpenAI, the paper's caption cost) or ``"high"``/``"auto"``.
        cache_dir: the request cache folder (resumability); ``None`` disables it.

    Example:
        >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", "gpt-3.5-turbo-1106", cache_dir="cache/")  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 16,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        image_detail: str = "low",
        cache_dir: str | os.PathLike | None = None,
        extra_body: dict[str, Any] | None = None,
    ):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.image_detail = image_detail
        self.extra_body = dict(extra_body or {})
        self.cache = RequestCache(cache_dir)
        self.sent = 0  # HTTP requests sent (retries included), for reports and tests
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key (it is not even stored)
        return f"OpenAIBackend(url={self.url!r}, model={self.model!r}, max_concurrency={self.max_concurrency})"

    def body(self, r: Request) -> dict[str, Any]:
        """The JSON body of a request (images as base64 data URLs)."""
        content: list[dict[str, Any]] = [{"type": "text", "text": r.prompt}]
        for b in r.image_bytes():
            url = "data:image/png;base64," + base64.b64encode(b).decode()
            content.append({"type": "image_url", "image_url": {"url": url, "detail": self.image_detail}})
        messages = ([{"role": "system", "content": r.system}] if r.system else []) + [
            {"role": "user", "content": content if r.images else r.prompt}
        ]
        return {"model": self.model, "messages": messages, "max_tokens": r.max_tokens, "temperature": r.temperature, **self.extra_body}

    def _generate(self, requests: Sequence[Request]) -> list[Response]:
        if len(requests) == 1 or self.max_concurrency == 1:
            return [self._one(r) for r in requests]
        with cf.ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests)), thread_name_prefix="vitcurate-http") as pool:
            return list(pool.map(self._one, requests))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = "Bearer " + key
        return headers

    def _wait(self, retry: int, retry_after: str | None) -> None:
        wait = min(self.backoff_max_s, self.backoff_s * (2**retry))
        wait *= 0.5 + random.random() / 2  # jitter: concurrent retries do not hit the server in step
        if retry_after:
            try:
                wait = max(wait, min(self.backoff_max_s, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: the exponential wait stands
        time.sleep(wait)

    def _one(self, r: Request) -> Response:
        data = json.dumps(self.body(r)).encode()
        t0 = time.perf_counter()
        last = ("request_failed", "")
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.sent += 1
            req = urllib.request.Request(self.url, data=data, headers=self._headers(), method="POST")
            retry_after = None
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    raw = resp.read()
                return self._parse(raw, r, t0, attempt + 1)
            except urllib.error.HTTPError as exc:
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                last = (f"http_{exc.code}", f"HTTP {exc.code} from {self.url}")
                exc.close()
                if exc.code not in RETRY_STATUS:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                last = ("request_failed", f"{type(reason).__name__} talking to {self.url}")
            if attempt < self.max_retries:
                logger.debug("retry %d/%d after %s", attempt + 1, self.max_retries, last[1])
                self._wait(attempt, retry_after)
        return Response(error=last[0], error_detail=last[1], latency_s=time.perf_counter() - t0, tries=self.max_retries + 1)

    def _parse(self, raw: bytes, r: Request, t0: float, tries: int) -> Response:
        latency = time.perf_counter() - t0
        try:
            payload = json.loads(raw)
            text = payload["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return Response(error="bad_response", error_detail=f"unreadable completion ({type(exc).__name__}: {str(exc)[:80]})",
                            prompt_tokens=estimate_tokens(r.prompt), images=len(r.images), latency_s=latency, tries=tries,
                            estimated=True)
        usage = payload.get("usage") or {}
        return Response(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or estimate_tokens(r.prompt)),
            completion_tokens=int(usage.get("completion_tokens") or estimate_tokens(text)),
            images=len(r.images),
            model=self.model,  # the name prices are keyed by, whatever the server calls itself
            latency_s=latency,
            tries=tries,
            estimated=not usage,
        )


__all__ = ["OpenAIBackend", "RETRY_STATUS"]
