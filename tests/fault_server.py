"""A scripted OpenAI-style chat-completions server on 127.0.0.1 for fault tests (loopback only, bounded).

Each request's user prompt picks its script: ``server.script[prompt]`` is a list of replies,
one per time the prompt is received (the last one repeats). Replies:

- ``("ok",)`` or ``("ok", usage)``: 200 with a completion ``"answer <n> from <name> to <prompt>"``
  (``n`` counts completions served) and ``usage`` (any JSON value, ``NO_USAGE`` for none;
  default real counts);
- ``("raw", status, body, headers)``: exactly that (``body`` bytes);
- ``("redirect", code, location)``;
- ``("hang", seconds)``: no answer; the connection is closed after ``seconds``;
- ``("trickle", seconds)``: headers, then one byte of the body every 0.1 s for ``seconds``;
- ``("short",)``: a 200 whose body is cut before its ``Content-Length``;
- ``("hold",)``: wait for :meth:`release` (30 s at most), then answer ``ok``, or nothing
  when released with ``abort=True``.

What a provider would bill is counted in ``paid`` (completions served per prompt); every
``Authorization`` header seen, on any method, is in ``auth``. The server only answers, and
every wait in it is bounded.

Example:
    >>> with FaultServer() as server:                                    # doctest: +SKIP
    ...     server.script["hi"] = [("raw", 429, b"{}", {"Retry-After": "1"}), ("ok",)]
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_WAIT_S = 30.0  # no handler waits longer than this, whatever the test does
NO_USAGE = object()  # ("ok", NO_USAGE): a completion without a "usage" key


class FaultServer:
    """A chat-completions server on 127.0.0.1 that answers each prompt by its script (module docstring)."""

    def __init__(self, name: str = "server"):
        self.name = name
        self.script: dict[str, list[tuple]] = {}
        self.hits: Counter = Counter()  # prompt -> requests received
        self.paid: Counter = Counter()  # prompt -> completions served (200 with an answer)
        self.served: dict[str, list[str]] = {}  # prompt -> answers served, in order
        self.auth: list[str] = []  # every Authorization header received
        self.requests = 0
        self.lock = threading.Lock()
        self._release = threading.Event()
        self._abort = False
        self._held = 0
        self.server = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128, "daemon_threads": True})(
            ("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.url = self.origin + "/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def held(self) -> int:
        """Requests waiting for :meth:`release` now."""
        with self.lock:
            return self._held

    def release(self, *, abort: bool = False) -> None:
        """Let held requests go: answered, or (``abort``) dropped unanswered and unpaid."""
        self._abort = abort
        self._release.set()

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release(abort=True)
        self.server.shutdown()
        self.server.server_close()

    def _reply(self, prompt: str) -> tuple:
        with self.lock:
            self.hits[prompt] += 1
            replies = self.script.get(prompt) or [("ok",)]
            return replies[min(self.hits[prompt], len(replies)) - 1]

    def _answer(self, prompt: str) -> str:
        with self.lock:
            self.paid[prompt] += 1
            text = f"answer {sum(self.paid.values())} from {self.name} to {prompt}"
            self.served.setdefault(prompt, []).append(text)
            return text

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _common(self) -> None:
                with fake.lock:
                    fake.requests += 1
                    if self.headers.get("Authorization") is not None:
                        fake.auth.append(self.headers["Authorization"])

            def do_GET(self):  # a client that turned a redirected POST into a GET lands here
                self._common()
                self._send(200, json.dumps(_completion(fake._answer("GET " + self.path))).encode())

            def do_POST(self):
                self._common()
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                content = json.loads(raw)["messages"][-1]["content"]
                prompt = content if isinstance(content, str) else next(c["text"] for c in content if c["type"] == "text")
                self._play(prompt, fake._reply(prompt))

            def _play(self, prompt: str, reply: tuple) -> None:
                kind = reply[0]
                if kind == "ok":
                    text = fake._answer(prompt)
                    usage = reply[1] if len(reply) > 1 else {"prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": len(text) // 4}
                    return self._send(200, json.dumps(_completion(text, usage)).encode())
                if kind == "raw":
                    if reply[1] == 200:
                        fake._answer(prompt)
                    return self._send(reply[1], reply[2], reply[3] if len(reply) > 3 else None)
                if kind == "redirect":
                    return self._send(reply[1], b"", {"Location": reply[2]})
                if kind == "hang":
                    time.sleep(min(reply[1], MAX_WAIT_S))
                    self.close_connection = True
                    return None
                if kind == "trickle":
                    return self._trickle(prompt, reply[1])
                if kind == "short":
                    body = json.dumps(_completion(fake._answer(prompt))).encode()
                    return self._send(200, body[: len(body) // 2], {"Content-Length": str(len(body))})
                if kind == "hold":
                    with fake.lock:
                        fake._held += 1
                    fake._release.wait(MAX_WAIT_S)
                    with fake.lock:
                        fake._held -= 1
                    if fake._abort:
                        self.close_connection = True
                        return None
                    return self._play(prompt, ("ok",))
                raise AssertionError(f"unknown reply {reply!r}")

            def _trickle(self, prompt: str, seconds: float) -> None:
                body = json.dumps(_completion(fake._answer(prompt))).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                t_end = time.monotonic() + min(seconds, MAX_WAIT_S)
                try:
                    for b in body:
                        if time.monotonic() > t_end:
                            break
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        time.sleep(0.1)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def _send(self, code: int, payload: bytes, headers: dict | None = None) -> None:
                headers = dict(headers or {})
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", headers.pop("Content-Length", str(len(payload))))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)
                self.close_connection = True

        return Handler


def _completion(text: str, usage=NO_USAGE) -> dict:
    body = {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    if usage is not NO_USAGE:
        body["usage"] = usage
    return body
