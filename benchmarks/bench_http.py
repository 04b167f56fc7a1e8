"""HTTP clients for the engine's OpenAI backend: a new connection per request (urllib) against pooled keep-alive.

A chat-completions-like server on 127.0.0.1, in its own process (HTTP/1.1 keep-alive, TLS with a throwaway
self-signed certificate when ``openssl`` is on the PATH) answers ``--requests`` POSTs sent
by 16 threads, after ``--delay-ms`` (the model's time). Clients, interleaved, ``--repeats`` times:

- ``urllib``: ``urllib.request`` (one TCP + TLS connection per request: what the backend uses);
- ``httpx``: one ``httpx.Client`` (a pool of 16 keep-alive connections), if httpx is installed.

Prints JSON: per client and scheme, the median seconds and requests per second, and the
connections the server accepted. Loopback only; every loop is bounded.

    python benchmarks/bench_http.py --requests 400 --delay-ms 0 --repeats 5
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 2000}]}).encode()


def serve(delay_s: float, context: ssl.SSLContext | None):
    """A keep-alive server that counts the connections it accepts."""
    stats = {"connections": 0}
    lock = threading.Lock()
    answer = json.dumps({"choices": [{"message": {"content": "y" * 800}}], "usage": {"prompt_tokens": 500, "completion_tokens": 200}}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY, as production servers set it: without it the headers and the body go out in
        # two segments and a kept-alive connection stalls on the client's delayed ACK (~40 ms a request).
        disable_nagle_algorithm = True

        def setup(self):
            with lock:
                stats["connections"] += 1
            super().setup()

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = type("S", (ThreadingHTTPServer,), {"request_queue_size": 128, "daemon_threads": True})(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, stats


def serve_in_subprocess(delay_ms: float, tls: tuple | None):
    """The server in its own process (it must not share the clients' interpreter lock); returns (process, port)."""
    argv = [sys.executable, __file__, "--serve", "--delay-ms", str(delay_ms)] + (["--cert", tls[2], "--key", tls[3]] if tls else [])
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def _counter(proc):
    def count() -> int:
        proc.stdin.write("count\n")
        proc.stdin.flush()
        return int(proc.stdout.readline())

    return count


def tls_contexts(folder: str):
    if not shutil.which("openssl"):
        return None
    key, cert = os.path.join(folder, "k.pem"), os.path.join(folder, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    return server, client, cert, key


def run_urllib(url: str, n: int, client_ctx) -> None:
    def one(_):
        req = urllib.request.Request(url, data=BODY, headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=30, context=client_ctx) as r:
            return len(r.read())

    with cf.ThreadPoolExecutor(16) as pool:
        assert all(pool.map(one, range(n)))


def run_httpx(url: str, n: int, cert) -> None:
    import httpx

    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    with httpx.Client(limits=limits, timeout=30, verify=ssl.create_default_context(cafile=cert) if cert else True) as client:
        def one(_):
            return len(client.post(url, content=BODY, headers={"Content-Type": "application/json"}).content)

        with cf.ThreadPoolExecutor(16) as pool:
            assert all(pool.map(one, range(n)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server process
    ap.add_argument("--cert", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        ctx = None
        if args.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
        server, stats = serve(args.delay_ms / 1000, ctx)
        print(server.server_address[1], flush=True)
        for line in sys.stdin:  # "count": connections so far; end of input: stop
            print(stats["connections"], flush=True)
        return 0
    try:
        import httpx  # noqa: F401

        clients = ["urllib", "httpx"]
    except ImportError:
        clients = ["urllib"]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tls = tls_contexts(tmp)
        schemes = [("http", None, None)] + ([("https", tls[1], tls[2])] if tls else [])
        for scheme, client_ctx, cert in schemes:
            proc, port = serve_in_subprocess(args.delay_ms, tls if scheme == "https" else None)
            url = f"{scheme}://127.0.0.1:{port}/v1/chat/completions"
            times: dict[str, list[float]] = {c: [] for c in clients}
            conns: dict[str, list[int]] = {c: [] for c in clients}
            count = _counter(proc)
            for _ in range(args.repeats):
                for c in clients:  # interleaved: drift hits every client alike
                    before = count()
                    t0 = time.perf_counter()
                    run_urllib(url, args.requests, client_ctx) if c == "urllib" else run_httpx(url, args.requests, cert)
                    times[c].append(time.perf_counter() - t0)
                    conns[c].append(count() - before)
            proc.stdin.close()
            proc.wait(10)
            for c in clients:
                med = statistics.median(times[c])
                results[f"{c}/{scheme}"] = {"median_s": round(med, 3), "min_s": round(min(times[c]), 3), "max_s": round(max(times[c]), 3),
                                            "requests_per_s": round(args.requests / med, 1), "connections": statistics.median(conns[c])}
    print(json.dumps({"requests": args.requests, "in_flight": 16, "delay_ms": args.delay_ms, "repeats": args.repeats,
                      "python": sys.version.split()[0], "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
