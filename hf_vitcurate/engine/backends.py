"""LLM backends of the data engine behind one small interface: ``generate(requests) -> responses``.

- :class:`~.local.LocalBackend`: any checkpoint loaded with ``transformers`` (an image-text
  model through :func:`hf_vitcurate.models.loading.load`, or a text-only causal LM),
  batched greedy decoding (module :mod:`.local`);
- :class:`~.http_backend.OpenAIBackend`: an OpenAI-compatible chat-completions server,
  bounded concurrency, timeouts, retries (module :mod:`.http_backend`);
- :class:`EchoBackend`: answers with the prompt (or a function of the request), for tests
  and dry runs.

All are resumable through :class:`~.cache.RequestCache` (module :mod:`.cache`): every
finished request is stored on disk under the hash of what was asked, so a rerun of the
same command pays for nothing twice. :class:`~.request.Request` and
:class:`~.request.Response` are in :mod:`.request`; this module gathers them all.

Example:
    >>> backend = EchoBackend()
    >>> [r.text for r in backend.generate([Request("<Q1> Is it red? </Q1> <A1> Yes </A1>")])]
    ['<Q1> Is it red? </Q1> <A1> Yes </A1>']
"""

from __future__ import annotations

from collections.abc import Sequence

from .cache import CachedBackend, RequestCache
from .http_backend import RETRY_STATUS, OpenAIBackend
from .local import LocalBackend
from .request import Backend, Request, Response, estimate_tokens


class EchoBackend(CachedBackend):
    """Returns each prompt (or ``reply(request)``) as the answer: for tests and dry runs."""

    def __init__(self, reply=None, *, model: str = "echo", cache_dir: str | None = None):
        self.reply = reply
        self.model = model
        self.cache = RequestCache(cache_dir)
        self.calls = 0

    def _generate(self, requests: Sequence[Request], *, finished=None) -> list[Response]:
        out = []
        for r in requests:
            self.calls += 1
            text = self.reply(r) if self.reply else r.prompt
            out.append(Response(text=text, prompt_tokens=estimate_tokens(r.prompt), completion_tokens=estimate_tokens(text),
                                images=len(r.images), estimated=True))
        return out


__all__ = ["RETRY_STATUS", "Backend", "CachedBackend", "EchoBackend", "LocalBackend", "OpenAIBackend", "Request", "RequestCache",
           "Response"]
