"""The HTTP backend: an OpenAI-compatible chat-completions server (a hosted GPT-4V/GPT-3.5-class model, vLLM, TGI).

Standard library only (``urllib`` + a thread pool): at most ``max_concurrency`` requests in
flight, a timeout per request, retries with exponential backoff (and ``Retry-After``) on
429/5xx/timeouts/connection errors. The API key is read from the environment at request
time and kept only in the request header: it is never stored on the backend, in the cache,
the ledger, outputs or log messages.

What the client trusts:

- **Credentials never go to another origin.** Redirects are not followed by ``urllib`` here:
  a 307/308 to the same origin (scheme, host, port) is re-sent with its body; any redirect
  to another origin is an error response ``redirected_elsewhere`` (not retried, not cached),
  so neither the key nor the prompt leaves for a host the user did not name, and no other
  host's reply is taken as the answer. (Following without the header would still send the
  prompts and images elsewhere and cache a stranger's reply: refusing is the safer choice.)
- **Any body is handled.** At most ``max_response_bytes`` are read; a 200 that is not JSON,
  has no ``choices`` or no text is a ``bad_response`` (paid, so cached); a ``usage`` that
  is not an object, or tokens that are not counts, mean tokens unknown: estimated, marked
  ``estimated``, logged. Nothing a server sends raises out of a batch.
- **Each answer is cached as it arrives** (:class:`~.cache.CachedBackend`): a kill
  mid-batch pays again only for the requests that were in flight.

Why ``urllib`` and not ``httpx``: ``benchmarks/bench_http.py`` (docs/robustness.md,
"HTTP backend (engine)") sends 16 requests in flight to one loopback server. ``httpx``'s
pool opens 16 connections where ``urllib`` opens one per request: over TLS with answers of
0-50 ms it moves 2.1x the requests, over plain HTTP 0.4-0.7x (more client work); with
answers of 1 s, still shorter than a caption or question call, both are within 3 % of the
ideal. Over a real network a new connection costs about two round trips (TCP + TLS 1.3),
e.g. 0.1 s at 50 ms, against completions of seconds, and the provider's rate limit bounds
throughput. The redirect policy and timeouts are a few lines either way, and ``urllib``
honours the proxy variables like ``httpx``. ``httpx`` would add six packages (httpx,
httpcore, h11, anyio, certifi, idna; about 4 MB) that this environment does not have: the
gain does not pay for the dependency.

Example:
    >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", "gpt-3.5-turbo-1106", cache_dir="cache/")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import email.utils
import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError
from .cache import CachedBackend, RequestCache
from .request import Request, Response, estimate_tokens, image_mime

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib follows no redirect itself (it would send the key along): a 3xx comes back as an HTTPError."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, the default port filled in: what "the same server" means for credentials."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme, 0)


class OpenAIBackend(CachedBackend):
    """Chat completions over HTTP with bounded concurrency, timeouts, retries and a request cache.

    Args:
        base_url: server root, e.g. ``"https://api.openai.com/v1"`` or ``"http://127.0.0.1:8000/v1"``;
            requests go to ``{base_url}/chat/completions``.
        model: the model name sent to the server (and the ledger's price key). The request
            cache keys on it and on ``base_url``: another server's answers are never reused.
        api_key_env: name of the environment variable holding the key (read per request;
            no key: no ``Authorization`` header, as a local vLLM server expects).
        max_concurrency: requests in flight at most.
        timeout_s: seconds per attempt (connect + each read; a body read in full within 2x).
        max_retries: retries after the first try on 429/5xx/timeouts/connection errors.
        backoff_s, backoff_max_s: first wait and cap; the wait doubles per retry, with jitter,
            and a server's ``Retry-After`` is honoured up to the cap.
        image_detail: ``"low"`` (85 tokens an image at OpenAI, the paper's caption cost) or ``"high"``/``"auto"``.
        cache_dir: the request cache folder (resumability); ``None`` disables it.
        max_response_bytes: a longer body is not read (``bad_response``).

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
        max_response_bytes: int = 8 * 2**20,
    ):
        if max_concurrency < 1:
            raise ConfigError("max_concurrency must be at least 1 (--max-concurrency)")
        if origin(base_url)[0] not in ("http", "https"):
            raise ConfigError(f"base_url must start with http:// or https://, got {base_url!r} (--base-url)")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.image_detail = image_detail
        self.extra_body = dict(extra_body or {})
        self.max_response_bytes = max_response_bytes
        self.cache = RequestCache(cache_dir)
        self.sent = 0  # HTTP requests sent (retries and redirects included), for reports and tests
        self._lock = threading.Lock()
        self._warned_usage = False

    def __repr__(self) -> str:  # never shows the key (it is not even stored)
        return f"OpenAIBackend(url={self.url!r}, model={self.model!r}, max_concurrency={self.max_concurrency})"

    @property
    def identity(self) -> str:
        """The model name at this server: the same name served elsewhere may be another model."""
        return f"{self.model}@{self.base_url}"

    def body(self, r: Request) -> dict[str, Any]:
        """The JSON body of a request (images as base64 data URLs)."""
        content: list[dict[str, Any]] = [{"type": "text", "text": r.prompt}]
        for b in r.image_bytes():
            url = f"data:{image_mime(b)};base64," + base64.b64encode(b).decode()
            content.append({"type": "image_url", "image_url": {"url": url, "detail": self.image_detail}})
        messages = ([{"role": "system", "content": r.system}] if r.system else []) + [
            {"role": "user", "content": content if r.images else r.prompt}
        ]
        return {"model": self.model, "messages": messages, "max_tokens": r.max_tokens, "temperature": r.temperature, **self.extra_body}

    def _generate(self, requests: Sequence[Request], *, finished: Callable[[int, Response], None]) -> list[Response]:
        def one(i: int) -> Response:
            resp = self._safe_one(requests[i])
            finished(i, resp)  # on disk now, whatever happens to the rest of the batch
            return resp

        if len(requests) == 1 or self.max_concurrency == 1:
            return [one(i) for i in range(len(requests))]
        with cf.ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests)), thread_name_prefix="vitcurate-http") as pool:
            return list(pool.map(one, range(len(requests))))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = "Bearer " + key
        return headers

    def _wait(self, retry: int, retry_after: str | None) -> None:
        wait = min(self.backoff_max_s, self.backoff_s * (2**retry))
        wait *= 0.5 + random.random() / 2  # jitter: concurrent retries do not hit the server in step
        seconds = retry_after_s(retry_after)
        if seconds is not None:
            wait = max(wait, min(self.backoff_max_s, seconds))
        time.sleep(wait)

    def _safe_one(self, r: Request) -> Response:
        """:meth:`_one`, and any client-side failure as an error response: one request never sinks the batch."""
        t0 = time.perf_counter()
        try:
            return self._one(r)
        except Exception as exc:  # noqa: BLE001 - the batch's other answers must survive (they are paid)
            logger.warning("request failed in the client: %s", type(exc).__name__)
            return Response(error="request_failed", error_detail=f"client error {type(exc).__name__}: {str(exc)[:120]}",
                            latency_s=time.perf_counter() - t0)

    def _one(self, r: Request) -> Response:
        """One request: bounded tries, bounded same-origin redirects per try."""
        t0 = time.perf_counter()
        try:
            data = json.dumps(self.body(r)).encode()
        except OSError as exc:  # an image file that cannot be read: this request's error, nothing sent
            return Response(error="image_error", error_detail=f"image_error: {type(exc).__name__}: {str(exc)[:160]}",
                            images=len(r.images), tries=0)
        last = ("request_failed", "")
        for attempt in range(self.max_retries + 1):
            url, retry_after = self.url, None
            for _ in range(MAX_REDIRECTS + 1):
                with self._lock:
                    self.sent += 1
                req = urllib.request.Request(url, data=data, headers=self._headers(), method="POST")
                try:
                    with _OPENER.open(req, timeout=self.timeout_s) as resp:
                        raw = self._read(resp)
                    return self._parse(raw, r, t0, attempt + 1)
                except urllib.error.HTTPError as exc:
                    headers = exc.headers or {}
                    exc.close()
                    if exc.code in REDIRECT_STATUS:
                        url, refused = self._redirect(url, exc.code, headers.get("Location"))
                        if refused is not None:
                            return Response(error=refused[0], error_detail=refused[1], latency_s=time.perf_counter() - t0,
                                            tries=attempt + 1)
                        continue
                    retry_after = headers.get("Retry-After")
                    last = (f"http_{exc.code}", f"HTTP {exc.code} from {self.url}")
                    if exc.code not in RETRY_STATUS:
                        return Response(error=last[0], error_detail=last[1], latency_s=time.perf_counter() - t0, tries=attempt + 1)
                except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, TLS errors
                    reason = getattr(exc, "reason", exc)
                    last = ("request_failed", f"{type(reason).__name__} talking to {self.url}")
                break
            else:  # a redirect loop on the server: trying again would loop again
                return Response(error="request_failed", error_detail=f"more than {MAX_REDIRECTS} redirects from {self.url}",
                                latency_s=time.perf_counter() - t0, tries=attempt + 1)
            if attempt < self.max_retries:
                logger.debug("retry %d/%d after %s", attempt + 1, self.max_retries, last[1])
                self._wait(attempt, retry_after)
        return Response(error=last[0], error_detail=last[1], latency_s=time.perf_counter() - t0, tries=self.max_retries + 1)

    def _redirect(self, url: str, code: int, location: str | None) -> tuple[str, tuple[str, str] | None]:
        """Where a redirect leads, or why it is refused: (next url, None) or (url, (error, detail))."""
        if not location:
            return url, (f"http_{code}", f"HTTP {code} from {self.url} without a Location")
        target = urllib.parse.urljoin(url, location)
        if origin(target) != origin(self.url):
            scheme, host, port = origin(target)
            logger.warning("HTTP %d from %s to another origin (%s://%s:%s): not followed, the key is not sent there",
                           code, self.url, scheme, host, port)
            return url, ("redirected_elsewhere", f"HTTP {code} from {self.url} redirected to another origin "
                                                 f"({scheme}://{host}:{port}); not followed: set --base-url to the server meant")
        if code not in (307, 308):  # 301/302/303 would turn the POST into a GET: no completion can come back
            return url, (f"http_{code}", f"HTTP {code} from {self.url} redirects a POST to {target}; set --base-url to it")
        return target, None

    def _read(self, resp) -> bytes:
        """The body, at most ``max_response_bytes + 1`` bytes, within twice the timeout."""
        deadline = time.monotonic() + 2 * self.timeout_s
        chunks, n = [], 0
        while n <= self.max_response_bytes:
            # read1: one socket read at most (read(n) would wait for all n bytes, past the deadline).
            chunk = resp.read1(min(1 << 16, self.max_response_bytes + 1 - n))
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError("body not read within twice the timeout")
        if n <= self.max_response_bytes and (getattr(resp, "length", None) or 0) > 0:
            raise http.client.IncompleteRead(b"".join(chunks), resp.length)  # cut before its Content-Length
        return b"".join(chunks)

    def _parse(self, raw: bytes, r: Request, t0: float, tries: int) -> Response:
        latency = time.perf_counter() - t0
        try:
            if len(raw) > self.max_response_bytes:
                raise ValueError(f"body over {self.max_response_bytes} bytes")
            payload = json.loads(raw)
            text = completion_text(payload)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
            return Response(error="bad_response", error_detail=f"unreadable completion ({type(exc).__name__}: {str(exc)[:80]})",
                            prompt_tokens=estimate_tokens(r.prompt), images=len(r.images), latency_s=latency, tries=tries,
                            estimated=True)
        prompt_tokens, completion_tokens = usage_tokens(payload.get("usage"))
        if prompt_tokens is None or completion_tokens is None:
            self._unknown_usage(payload.get("usage"))
        return Response(
            text=text,
            prompt_tokens=estimate_tokens(r.prompt) if prompt_tokens is None else prompt_tokens,
            completion_tokens=estimate_tokens(text) if completion_tokens is None else completion_tokens,
            images=len(r.images),
            model=self.model,  # the name prices are keyed by, whatever the server calls itself
            latency_s=latency,
            tries=tries,
            estimated=prompt_tokens is None or completion_tokens is None,
        )

    def _unknown_usage(self, usage: Any) -> None:
        # Once a backend at WARNING (a server that never reports usage would flood the log), then at DEBUG.
        with self._lock:
            level = logging.DEBUG if self._warned_usage else logging.WARNING
            self._warned_usage = True
        logger.log(level, "%s sent no token counts (usage is %s): tokens unknown, estimated from the text",
                   self.url, type(usage).__name__ if not isinstance(usage, dict) else "incomplete")


def completion_text(payload: Any) -> str:
    """The answer's text in a chat-completions body (``choices[0].message.content``, a string or text parts)."""
    content = payload["choices"][0]["message"]["content"]
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        content = "".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(content, str):
        raise TypeError(f"content is {type(content).__name__}")
    return content


def usage_tokens(usage: Any) -> tuple[int | None, int | None]:
    """(prompt, completion) tokens of a ``usage`` object; ``None`` for what is missing or not a count."""
    if not isinstance(usage, dict):
        return None, None

    def count(v: Any) -> int | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or not 0 <= v < 2**53 or v != int(v):
            return None
        return int(v)

    return count(usage.get("prompt_tokens")), count(usage.get("completion_tokens"))


def retry_after_s(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date); ``None`` if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo else None


__all__ = ["MAX_REDIRECTS", "OpenAIBackend", "REDIRECT_STATUS", "RETRY_STATUS", "completion_text", "origin", "retry_after_s",
           "usage_tokens"]
