"""The request cache: every finished response on disk under its request's key, so a rerun pays for nothing twice.

:class:`RequestCache` is a content-addressed cache, not a run's resumable state: any run,
step or command asking the same thing (the model's identity, prompt, images, sampling,
attempt) reads the same entry, so one ``cache_dir`` can be shared freely. :class:`CachedBackend`
is the base of every backend: look each request up, generate the misses, store each answer
the moment it arrives (a kill mid-batch pays again only for what was in flight).

Example:
    >>> import tempfile
    >>> cache = RequestCache(tempfile.mkdtemp())
    >>> cache.put("ab" * 32, Response(text="hi", model="m"))
    >>> cache.get("ab" * 32).text
    'hi'
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from .request import Request, Response


class RequestCache:
    """Finished responses on disk, one JSON file per request key (atomic writes, thread-safe; example above)."""

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
            # A torn or edited file (killed mid-write is impossible: writes are atomic) means "not done".
            return Response(**{k: v for k, v in data.items() if k in Response.__dataclass_fields__})
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def put(self, key: str, response: Response) -> None:
        if not self.folder:
            return
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Unique per process and thread: processes of one launch may share a cache_dir.
        tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({**response.to_dict(), "cached": False}, f)
        os.replace(tmp, path)

    def __len__(self) -> int:
        if not self.folder:
            return 0
        return sum(len([n for n in names if n.endswith(".json")]) for _, _, names in os.walk(self.folder))


class CachedBackend(ABC):
    """Shared cache handling: look each request up, compute the misses, store each answer the moment it arrives.

    A backend's ``_generate`` calls ``finished(i, response)`` as soon as request ``i`` is
    answered (from any thread): the answer is on disk before the rest of the batch is
    done, so a process killed mid-batch pays again only for what was in flight. Answers
    not reported that way are stored when ``_generate`` returns.
    """

    model: str = ""
    cache: RequestCache

    @property
    def identity(self) -> str:
        """What tells this backend's answers apart besides the request: the cache keys on it.

        The model name here; a local checkpoint adds its content, a server its address, so a
        changed model never answers from an old model's cache entries.
        """
        return self.model

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Responses in request order; cache hits come back with ``cached=True``."""
        identity = self.identity
        keys = [r.key(identity) for r in requests]
        out: list[Response | None] = []
        for k in keys:
            hit = self.cache.get(k)
            if hit is not None:
                hit.cached = True
            out.append(hit)
        todo = [i for i, r in enumerate(out) if r is None]
        if not todo:
            return out  # type: ignore[return-value]
        stored: set[int] = set()
        lock = threading.Lock()

        def finished(j: int, resp: Response) -> None:
            i = todo[j]
            with lock:
                if i in stored:
                    return
                stored.add(i)
            resp.key = keys[i]
            resp.model = resp.model or self.model
            # Transport failures and unreadable images are not stored: a rerun must try them
            # again. A malformed 200 answer was paid for, so it is stored like a success.
            if resp.error in ("", "bad_response"):
                self.cache.put(keys[i], resp)

        fresh = self._generate([requests[i] for i in todo], finished=finished)
        for j, resp in enumerate(fresh):
            finished(j, resp)
            out[todo[j]] = resp
        return out  # type: ignore[return-value]

    @abstractmethod
    def _generate(self, requests: Sequence[Request], *, finished: Callable[[int, Response], None]) -> list[Response]:
        """Answer the requests that were not in the cache (each backend's transport).

        Call ``finished(i, response)`` when request ``i`` is answered, if answers come one by one.
        """


__all__ = ["CachedBackend", "RequestCache"]
