"""LLM backends of the data engine behind one small interface: ``generate(requests) -> responses``.

- :class:`LocalBackend`: any checkpoint loaded from a path with ``transformers`` (an
  image-text model through :func:`hf_vitcurate.models.loading.load`, or a text-only
  causal LM), batched greedy decoding.
- :class:`OpenAIBackend`: an OpenAI-compatible chat-completions server (a hosted
  GPT-4V/GPT-3.5-class model, vLLM, TGI). Standard library only (``urllib`` + a thread
  pool): at most ``max_concurrency`` requests in flight, a timeout per request, retries
  with exponential backoff (and ``Retry-After``) on 429/5xx/timeouts/connection errors.

Both are resumable through :class:`RequestCache`: every finished request is stored on
disk under the hash of what was asked (model, messages, image bytes, sampling settings,
attempt), so a rerun of the same command pays for nothing twice. The API key is read
from the environment at request time and kept only in the request header: it is never
stored on the backend, in the cache, the ledger, outputs or log messages.

Example:
    >>> backend = EchoBackend()
    >>> [r.text for r in backend.generate([Request("<Q1> Is it red? </Q1> <A1> Yes </A1>")])]
    ['<Q1> Is it red? </Q1> <A1> Yes </A1>']
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import hashlib
import http.client
import io
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass
class Request:
    """One generation call: a user prompt, optional images, sampling settings.

    ``attempt`` enters the cache key so that a regeneration is a new request (and is
    sampled with ``retry_temperature`` by the engine); ``meta`` (row ids, step) does not.
    """

    prompt: str
    images: list = field(default_factory=list)  # PIL images or PNG/JPEG bytes
    max_tokens: int = 512
    temperature: float = 0.0
    system: str | None = None
    attempt: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def image_bytes(self) -> list[bytes]:
        return [_png_bytes(im) for im in self.images]

    def key(self, model: str) -> str:
        """Hash of everything that determines the answer (never the key or the meta)."""
        blob = json.dumps(
            {
                "model": model,
                "system": self.system,
                "prompt": self.prompt,
                "images": [hashlib.sha256(b).hexdigest() for b in self.image_bytes()],
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
    error: str = ""  # "" | "bad_response" | "request_failed" | "http_<status>"
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


def _png_bytes(image) -> bytes:
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


def _pil(image):
    from PIL import Image

    if isinstance(image, (bytes, bytearray)):
        return Image.open(io.BytesIO(image)).convert("RGB")
    if isinstance(image, dict):
        return _pil(_png_bytes(image))
    return image.convert("RGB")


class RequestCache:
    """Finished responses on disk, one JSON file per request key (atomic writes, thread-safe).

    Example:
        >>> import tempfile
        >>> cache = RequestCache(tempfile.mkdtemp())
        >>> cache.put("ab" * 32, Response(text="hi", model="m"))
        >>> cache.get("ab" * 32).text
        'hi'
    """

    def __init__(self, folder: str | os.PathLike | None):
        self.folder = os.fspath(folder) if folder is not None else None
        if self.folder:
            os.makedirs(self.folder, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.folder, key[:2], key + ".json")

    def get(self, key: str) -> Response | None:
        if not self.folder:
            return None
        try:
            with open(self._path(key), encoding="utf-8") as f:
                data = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None  # a torn file (killed mid-write is impossible, but a hand edit) means "not done"
        return Response(**{k: v for k, v in data.items() if k in Response.__dataclass_fields__})

    def put(self, key: str, response: Response) -> None:
        if not self.folder:
            return
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{threading.get_ident()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({**response.to_dict(), "cached": False}, f)
        os.replace(tmp, path)

    def __len__(self) -> int:
        if not self.folder:
            return 0
        return sum(len([n for n in names if n.endswith(".json")]) for _, _, names in os.walk(self.folder))


def _estimate_tokens(text: str) -> int:
    """About 4 characters a token: used only when a server reports no usage."""
    return max(1, round(len(text) / 4)) if text else 0


class _CachedBackend(ABC):
    """Shared cache handling: look each request up, compute the misses, store the successes."""

    model: str = ""
    cache: RequestCache

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Responses in request order; cache hits come back with ``cached=True``."""
        keys = [r.key(self.model) for r in requests]
        out: list[Response | None] = []
        for k in keys:
            hit = self.cache.get(k)
            if hit is not None:
                hit.cached = True
            out.append(hit)
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            fresh = self._generate([requests[i] for i in todo])
            for i, resp in zip(todo, fresh):
                resp.key = keys[i]
                resp.model = resp.model or self.model
                # Transport failures are not stored: a rerun must try them again. A
                # malformed 200 answer was paid for, so it is stored like a success.
                if resp.error in ("", "bad_response"):
                    self.cache.put(keys[i], resp)
                out[i] = resp
        return out  # type: ignore[return-value]

    @abstractmethod
    def _generate(self, requests: Sequence[Request]) -> list[Response]:
        """Answer the requests that were not in the cache (each backend's transport)."""


class EchoBackend(_CachedBackend):
    """Returns each prompt (or ``reply(request)``) as the answer: for tests and dry runs."""

    def __init__(self, reply=None, model: str = "echo", cache_dir: str | None = None):
        self.reply = reply
        self.model = model
        self.cache = RequestCache(cache_dir)
        self.calls = 0

    def _generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for r in requests:
            self.calls += 1
            text = self.reply(r) if self.reply else r.prompt
            out.append(Response(text=text, prompt_tokens=_estimate_tokens(r.prompt), completion_tokens=_estimate_tokens(text),
                                images=len(r.images), estimated=True))
        return out


# ---------------------------------------------------------------- local transformers backend


class LocalBackend(_CachedBackend):
    """A checkpoint loaded from ``model_path`` (image-text or text-only), generating on this machine.

    Requests at temperature 0 are decoded greedily; regenerations (temperature > 0) are
    sampled with a seed taken from the request, so a rerun reproduces them.

    Image-text checkpoints go through :func:`hf_vitcurate.models.loading.load` and
    :func:`hf_vitcurate.models.generate.generate_with` (the package's one generation path);
    a checkpoint without an image-text class loads as ``AutoModelForCausalLM`` and then
    takes text-only requests. The model is loaded on first use.

    Example:
        >>> backend = LocalBackend("ckpt/tiny", max_new_tokens=64)       # doctest: +SKIP
        >>> backend.generate([Request("Describe the image.", images=[img])])[0].text  # doctest: +SKIP
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        max_new_tokens: int = 256,
        batch_size: int = 8,
        dtype: str | None = "auto",
        device: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        model_name: str | None = None,
    ):
        self.model_path = os.fspath(model_path)
        self.model = model_name or os.path.basename(os.path.normpath(self.model_path))
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.dtype = dtype
        self.device = device
        self.cache = RequestCache(cache_dir)
        self._loaded = None
        self.calls = 0

    def _load(self):
        if self._loaded is None:
            try:
                from ..models.loading import load

                model, processor = load(self.model_path, dtype=self.dtype, device=self.device)
                self._loaded = ("image-text", model, processor)
            except (ValueError, KeyError, OSError) as exc:
                # No image-text class for this config: a text-only LM (any AutoModelForCausalLM).
                from transformers import AutoModelForCausalLM, AutoTokenizer

                logger.info("%s is not an image-text checkpoint (%s); loading it as a text LM", self.model_path, exc)
                model = AutoModelForCausalLM.from_pretrained(self.model_path)
                if self.device:
                    model = model.to(self.device)
                self._loaded = ("text", model, AutoTokenizer.from_pretrained(self.model_path))
        return self._loaded

    @property
    def accepts_images(self) -> bool:
        return self._load()[0] == "image-text"

    def _generate(self, requests: Sequence[Request]) -> list[Response]:
        kind, model, proc = self._load()
        if kind == "text" and any(r.images for r in requests):
            raise ValueError(f"{self.model_path} is a text-only checkpoint; the caption step needs an image-text model")
        self.calls += len(requests)
        tokenizer = proc.tokenizer if kind == "image-text" else proc
        limit = getattr(getattr(model.config, "text_config", model.config), "max_position_embeddings", None)
        lengths = [len(tokenizer(r.prompt)["input_ids"]) for r in requests]
        for r, n in zip(requests, lengths):
            new = min(r.max_tokens, self.max_new_tokens)
            if limit and n + new > limit:
                raise ValueError(
                    f"prompt of {n} tokens + {new} new tokens exceeds the {limit} positions of "
                    f"{self.model_path}; use a larger model or shorter prompts"
                )
        t0 = time.perf_counter()
        if kind == "image-text":
            texts = self._generate_image_text(model, proc, requests)
        else:
            texts = self._generate_text(model, proc, requests)
        per = (time.perf_counter() - t0) / max(1, len(requests))
        return [
            Response(text=t, prompt_tokens=n, completion_tokens=len(tokenizer(t)["input_ids"]) if t else 0,
                     images=len(r.images), latency_s=per)
            for r, t, n in zip(requests, texts, lengths)
        ]

    def _generate_image_text(self, model, processor, requests: Sequence[Request]) -> list[str]:
        from datasets import Dataset, Features, Image, List, Value

        from ..models.generate import generate_with
        from ..schema import IMAGE_TOKEN

        rows = {
            "images": [[_pil(im) for im in r.images] for r in requests],
            "conversations": [
                [{"from": "human", "value": (IMAGE_TOKEN + "\n") * len(r.images) + r.prompt}] for r in requests
            ],
        }
        features = Features({"images": List(Image()), "conversations": List({"from": Value("string"), "value": Value("string")})})
        ds = Dataset.from_dict(rows, features=features)
        out: dict[int, str] = {}
        # Greedy requests go through the package's one generation path, grouped by their token
        # limit; sampled ones (regenerations) are drawn here, seeded by the request, so that a
        # retry differs from the first try and a rerun repeats it.
        for limit in sorted({r.max_tokens for r in requests}):
            idx = [i for i, r in enumerate(requests) if r.max_tokens == limit and r.temperature <= 0]
            if idx:
                texts = generate_with(model, processor, ds.select(idx), max_new_tokens=min(limit, self.max_new_tokens),
                                      batch_size=self.batch_size, progress=False)
                out.update(zip(idx, texts))
        for i, r in enumerate(requests):
            if r.temperature > 0:
                out[i] = self._sample(model, processor, ds.select([i]), r)
        return [out[i] for i in range(len(requests))]

    def _sample(self, model, processor, row, r: Request) -> str:
        import torch

        from ..models.chat import encode, model_inputs

        torch.manual_seed(int(r.key(self.model)[:8], 16))
        with torch.inference_mode():
            inputs = model_inputs(encode(processor, row[:1], generation=True), model)
            gen = model.generate(**inputs, max_new_tokens=min(r.max_tokens, self.max_new_tokens), do_sample=True,
                                 temperature=r.temperature, top_p=0.95, pad_token_id=processor.tokenizer.pad_token_id)
        return processor.tokenizer.decode(gen[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    def _generate_text(self, model, tokenizer, requests: Sequence[Request]) -> list[str]:
        import torch

        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        texts = []
        for lo in range(0, len(requests), self.batch_size):
            chunk = requests[lo : lo + self.batch_size]
            prompts = [self._chat(tokenizer, r) for r in chunk]
            enc = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
            temperature = max(r.temperature for r in chunk)
            sampling = {"do_sample": True, "temperature": temperature, "top_p": 0.95} if temperature > 0 else {"do_sample": False}
            if temperature > 0:
                torch.manual_seed(int(chunk[0].key(self.model)[:8], 16))
            with torch.inference_mode():
                gen = model.generate(**enc, max_new_tokens=min(max(r.max_tokens for r in chunk), self.max_new_tokens),
                                     pad_token_id=tokenizer.pad_token_id, **sampling)
            texts += [t.strip() for t in tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]
        return texts

    @staticmethod
    def _chat(tokenizer, r: Request) -> str:
        if getattr(tokenizer, "chat_template", None):
            messages = ([{"role": "system", "content": r.system}] if r.system else []) + [{"role": "user", "content": r.prompt}]
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return r.prompt


# ---------------------------------------------------------------- OpenAI-compatible HTTP backend


class OpenAIBackend(_CachedBackend):
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
                            prompt_tokens=_estimate_tokens(r.prompt), images=len(r.images), latency_s=latency, tries=tries,
                            estimated=True)
        usage = payload.get("usage") or {}
        return Response(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or _estimate_tokens(r.prompt)),
            completion_tokens=int(usage.get("completion_tokens") or _estimate_tokens(text)),
            images=len(r.images),
            model=self.model,  # the name prices are keyed by, whatever the server calls itself
            latency_s=latency,
            tries=tries,
            estimated=not usage,
        )


__all__ = ["Backend", "EchoBackend", "LocalBackend", "OpenAIBackend", "Request", "RequestCache", "Response"]
