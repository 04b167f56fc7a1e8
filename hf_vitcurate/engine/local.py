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
    ):
        self.path = os.fspath(model)
        # ``model`` is the name the ledger prices by (the Backend protocol); the folder stays in ``path``.
        self.model = model_name or os.path.basename(os.path.normpath(self.path))
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

                model, processor = load(self.path, dtype=self.dtype, device=self.device)
                self._loaded = ("image-text", model, processor)
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

    def _generate(self, requests: Sequence[Request]) -> list[Response]:
        kind, model, proc = self._load()
        if kind == "text" and any(r.images for r in requests):
            raise ValueError(f"{self.path} is a text-only checkpoint; the caption step needs an image-text model")
        self.calls += len(requests)
        tokenizer = proc.tokenizer if kind == "image-text" else proc
        limit = getattr(getattr(model.config, "text_config", model.config), "max_position_embeddings", None)
        lengths = [len(tokenizer(r.prompt)["input_ids"]) for r in requests]
        for r, n in zip(requests, lengths):
            new = min(r.max_tokens, self.max_new_tokens)
            if limit and n + new > limit:
                raise ValueError(
                    f"prompt of {n} tokens + {new} new tokens exceeds the {limit} positions of "
                    f"{self.path}; use a larger model or shorter prompts"
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
