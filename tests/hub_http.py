"""The HTTP side of tests/hub_server.py: routes, the request handler, error answers (loopback only, bounded).

:func:`handler_for` binds a ``BaseHTTPRequestHandler`` to a hub object (``HubServer``): each
request is routed by :data:`ROUTES` to the hub's method of the endpoint's name, after the
hub's faults (:meth:`HubServer.fail`) and delays (``delay_s``) are applied; a :class:`HubError`
becomes the JSON error answer the Hub gives (``X-Error-Code``, ``Retry-After`` on 429/503).

Example:
    >>> route("GET", "/api/datasets/me/x/refs")
    ('refs', {'type': 'datasets', 'repo': 'me/x'})
    >>> route("HEAD", "/me/m/resolve/main/config.json")[1]["type"]
    'models'
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

MAX_BODY = 64 * 2**20  # bytes: a larger request is refused with 413
REQUEST_TIMEOUT_S = 30.0  # a connection that sends nothing for this long is closed
_REPO = r"(?P<type>datasets|models|spaces)/(?P<repo>[^/]+/[^/]+)"
ROUTES = [  # (method, endpoint name, pattern on the raw path)
    ("POST", "create", r"/api/repos/create"),
    ("POST", "validate-yaml", r"/api/validate-yaml"),
    ("GET", "whoami", r"/api/whoami-v2"),
    ("GET", "info", rf"/api/{_REPO}(?:/revision/(?P<rev>[^/]+))?"),
    ("GET", "refs", rf"/api/{_REPO}/refs"),
    ("GET", "tree", rf"/api/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?"),
    ("POST", "paths-info", rf"/api/{_REPO}/paths-info/(?P<rev>[^/]+)"),
    ("POST", "preupload", rf"/api/{_REPO}/preupload/(?P<rev>[^/]+)"),
    ("POST", "commit", rf"/api/{_REPO}/commit/(?P<rev>[^/]+)"),
    ("POST", "tag", rf"/api/{_REPO}/tag/(?P<rev>[^/]+)"),
    ("GET", "resolve", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
    ("HEAD", "resolve", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
    # A model's files have no type in their URL (checked after the typed routes above).
    ("GET", "resolve", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
    ("HEAD", "resolve", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
]


class HubError(Exception):
    """An HTTP error answer, with the ``X-Error-Code`` the client maps to its exceptions."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict  # names in Title-Case, whatever case the client sent
    body: bytes

    def json(self):
        try:
            return json.loads(self.body or b"{}")
        except ValueError as err:
            raise HubError(400, f"invalid JSON body: {err}") from err


def handler_for(hub):
    """The request handler class bound to ``hub``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = REQUEST_TIMEOUT_S

        def log_message(self, *args) -> None:  # quiet: pytest shows failures, not access logs
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            try:
                endpoint, groups = route(method, split.path)
                with hub.lock:  # the two lists stay in step
                    hub.requests.append((method, endpoint))
                    hub.times.append(time.monotonic())
                request = self._read(method, split)
                time.sleep(hub.delay_s.get(endpoint, 0.0))  # an upload that takes time
                fault = hub._take_fault(endpoint)
                if fault == "drop":
                    return self._drop()
                if fault == "malformed":
                    return self._malformed()
                if fault == "echo":  # a broken proxy echoing the request, credentials and all, instead of HTTP
                    return self._malformed(f"NOT HTTP: Authorization: {self.headers.get('Authorization', '')}")
                if fault == "quote_token":  # an error answer whose message quotes what the client sent
                    raise HubError(400, f"bad request; it sent Authorization: {self.headers.get('Authorization', '')}")
                if isinstance(fault, int):
                    raise HubError(fault, f"injected {fault}")
                status, body, headers = getattr(hub, endpoint.replace("-", "_"))(groups, request)
                if fault == "drop_after":
                    return self._drop()
            except HubError as err:
                code = {"X-Error-Code": err.code} if err.code else {}
                status, body, headers = err.status, {"error": str(err), **err.extra}, {"X-Error-Message": str(err), **code}
                if err.status in (429, 503):
                    headers["Retry-After"] = hub.retry_after
            self._answer(method, status, body, headers)

        def _read(self, method: str, split) -> Request:
            if self.headers.get("Transfer-Encoding"):
                raise HubError(411, "send a Content-Length")
            size = int(self.headers.get("Content-Length") or 0)
            if size > MAX_BODY:
                self.close_connection = True
                raise HubError(413, f"request body over {MAX_BODY} bytes")
            body = self.rfile.read(size) if size else b""
            auth = self.headers.get("Authorization", "")
            if hub.token is not None and auth != f"Bearer {hub.token}":
                raise HubError(401, "Invalid credentials in Authorization header")
            # Header names are case-insensitive (httpx sends "range"): a plain dict of them would miss a Range.
            headers = {k.title(): v for k, v in self.headers.items()}
            return Request(method, split.path, parse_qs(split.query), headers, body)

        def _drop(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _malformed(self, line: str = "NOT HTTP AT ALL") -> None:
            self.close_connection = True
            self.wfile.write(line.encode() + b"\r\n\r\n")  # not a status line: a protocol violation, every time
            self.wfile.flush()

        def _answer(self, method: str, status: int, body, headers: dict) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)

    return Handler


def route(method: str, raw_path: str) -> tuple[str, dict]:
    for verb, endpoint, pattern in ROUTES:
        m = re.fullmatch(pattern, raw_path)
        if verb == method and m:
            groups = m.groupdict()
            if "repo" in groups and "type" not in groups:
                groups["type"] = "models"
            if "repo" in groups:
                groups["repo"] = unquote(groups["repo"])
            return endpoint, groups
    raise HubError(404, f"no such endpoint: {method} {raw_path}")
