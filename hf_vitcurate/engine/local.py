"""The local backend: a checkpoint loaded with ``transformers``, generating on this machine.

Example:
    >>> backend = LocalBackend("ckpt/tiny", max_new_tokens=64)       # doctest: +SKIP
    >>> backend.generate([Request("Describe the image.", images=[img])])[0].text  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace

from ..errors import ConfigError
from .cache import CachedBackend, RequestCache
from .request import Request, Response, pil

logger = logging.getLogger(__name__)


class LocalBackend(CachedBackend):
    """A checkpoint (``model``: a folder or Hub id; image-text or text-only), generating on this machine.

    Requests at temperature 0 are decoded greedily; regenerations (temperature > 0) are
    sampled with a seed taken from the request, so a rerun reproduces them.

    Image-text checkpoints go through :func:`hf_vitcurate.models.loading.load` and
    :func:`hf_vitcurate.models.generate.generate_with` (the package's one generation path);
    a checkpoint without an image-text class loads as ``AutoModelForCausalLM`` and then
    takes text-only requests. The model is loaded on first use.

    Args:
        model: the checkpoint, a folder or Hub id.
        max_new_tokens: generation cap per request (a request's ``max_tokens`` may lower it).
        batch_size: rows per model forward pass.
        cache_dir: the request cache folder (:class:`~.cache.RequestCache`); ``None`` disables it.
        model_name: the name in the ledger (default the checkpoint folder's name).
        max_pixels: an image with more pixels is not decoded: its request gets an ``image_error``.

    A request whose image does not decode (truncated, corrupt, over ``max_pixels``) gets an
    error response ``image_error`` (not cached; the engine rejects its rows as for any
    failed call) and the batch goes on; a batch that fails inside the model is retried one
    request at a time, and a request that still fails gets a ``model_error``.

    Example:
        >>> backend = LocalBackend("ckpt/tiny", max_new_tokens=64)       # doctest: +SKIP
        >>> backend.generate([Request("Describe the image.", images=[img])])[0].text  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        max_new_tokens: int = 256,
        batch_size: int = 8,
        dtype: str | None = "auto",
        device: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        model_name: str | None = None,
        max_pixels: int | None = None,
    ):
        self.path = os.fspath(model)
        # ``model`` is the name the ledger prices by (the Backend protocol); the folder stays in ``path``.
        self.model = model_name or os.path.basename(os.path.normpath(self.path))
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.dtype = dtype
        self.device = device
        self.cache = RequestCache(cache_dir)
        self.max_pixels = max_pixels
        self._loaded = None
        self._identity: str | None = None
        self.calls = 0

    @property
    def identity(self) -> str:
        """The checkpoint's content fingerprint: a changed model at the same path never answers from the old one's cache."""
        if self._identity is None:
            from ..identity import model_fingerprint

            self._identity = f"{self.model}@{model_fingerprint(self.path)}"
        return self._identity

    def _load(self):
        if self._loaded is None:
            try:
                from ..models.loading import load

                model, processor = load(self.path, dtype=self.dtype, device=self.device)
                self._loaded = ("image-text", model, processor)
            except ConfigError:
                raise  # an image-text checkpoint this package cannot use (no chat template): its own error
            except (ValueError, KeyError, OSError) as exc:
                # No image-text class for this config: a text-only LM (any AutoModelForCausalLM).
                from transformers import AutoModelForCausalLM, AutoTokenizer

                logger.info("%s is not an image-text checkpoint (%s); loading it as a text LM", self.path, exc)
                model = AutoModelForCausalLM.from_pretrained(self.path)
                if self.device:
                    model = model.to(self.device)
                self._loaded = ("text", model, AutoTokenizer.from_pretrained(self.path))
        return self._loaded

    @property
    def accepts_images(self) -> bool:
        return self._load()[0] == "image-text"

    def _generate(self, requests: Sequence[Request], *, finished=None) -> list[Response]:
        """Long because it screens the batch first: unreadable images and failures inside the model
        become error responses of their own requests, and the rest of the batch goes on."""
        kind, model, proc = self._load()
        if kind == "text" and any(r.images for r in requests):
            raise ConfigError(f"{self.path} is a text-only checkpoint; the caption step needs an image-text model (--model)")
        self.calls += len(requests)
        tokenizer = proc.tokenizer if kind == "image-text" else proc
        out: list[Response | None] = [None] * len(requests)
        decoded: dict[int, list] = {}
        for i, r in enumerate(requests):
            try:
                decoded[i] = [pil(im, max_pixels=self.max_pixels) for im in r.images]
            except Exception as exc:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
                out[i] = Response(error="image_error", error_detail=f"image_error: {type(exc).__name__}: {str(exc)[:160]}",
                                  images=len(r.images))
        good = [i for i in range(len(requests)) if out[i] is None]
        limit = getattr(getattr(model.config, "text_config", model.config), "max_position_embeddings", None)
        lengths = {i: len(tokenizer(requests[i].prompt)["input_ids"]) for i in good}
        for i in good:
            new = min(requests[i].max_tokens, self.max_new_tokens)
            if limit and lengths[i] + new > limit:
                raise ConfigError(
                    f"prompt of {lengths[i]} tokens + {new} new tokens exceeds the {limit} positions of "
                    f"{self.path}; use a larger model (--model) or shorter prompts"
                )
        t0 = time.perf_counter()
        texts = self._texts(kind, model, proc, [replace(requests[i], images=decoded[i]) for i in good])
        per = (time.perf_counter() - t0) / max(1, len(good))
        for i, text in zip(good, texts):
            r = requests[i]
            if isinstance(text, Exception):
                out[i] = Response(error="model_error", error_detail=f"model_error: {type(text).__name__}: {str(text)[:160]}",
                                  prompt_tokens=lengths[i], images=len(r.images), latency_s=per)
            else:
                out[i] = Response(text=text, prompt_tokens=lengths[i], images=len(r.images), latency_s=per,
                                  completion_tokens=len(tokenizer(text)["input_ids"]) if text else 0)
        return out  # type: ignore[return-value]

    def _texts(self, kind: str, model, proc, requests: list[Request]) -> list[str | Exception]:
        """Answers of a batch; if the batch fails in the model, each request alone (its own failure as its answer)."""
        run = self._generate_image_text if kind == "image-text" else self._generate_text
        if not requests:
            return []
        try:
            return list(run(model, proc, requests))
        except Exception as exc:  # noqa: BLE001 - one bad request (or a batch too big) must not sink the others
            if len(requests) == 1:
                logger.warning("a request failed in %s: %s: %s", self.path, type(exc).__name__, exc)
                return [exc]
            logger.warning("a batch of %d failed in %s (%s: %s); each request is retried alone", len(requests), self.path,
                           type(exc).__name__, exc)
        return [self._texts(kind, model, proc, [r])[0] for r in requests]

    def _generate_image_text(self, model, processor, requests: Sequence[Request]) -> list[str]:
        from datasets import Dataset, Features, Image, List, Value

        from ..models.generate import generate_with
        from ..schema import IMAGE_TOKEN

        rows = {
            "images": [[pil(im) for im in r.images] for r in requests],
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


__all__ = ["LocalBackend"]
