"""The HTTP backend against a scripted fault server on 127.0.0.1 (tests/fault_server.py).

Rate limits with ``Retry-After``, 5xx, hangs and trickled bodies, malformed bodies, token
counts that are not counts, redirects to another origin, a process killed mid-batch, and
two servers behind one cache. What is checked is what a user pays for and trusts: no
credentials sent to another origin, no request paid twice, every finished answer kept.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_server import NO_USAGE, FaultServer

from hf_vitcurate.engine.backends import OpenAIBackend, Request, RequestCache
from hf_vitcurate.engine.http_backend import retry_after_s, usage_tokens
from hf_vitcurate.engine.ledger import Ledger, Price

SENTINEL = "sk-SENTINEL-http-faults-do-not-leak"
JOB = Path(__file__).resolve().parent / "scripts" / "http_batch_job.py"


def backend(url: str, cache: Path | None, **kw) -> OpenAIBackend:
    opts = dict(max_concurrency=8, timeout_s=2.0, max_retries=0, backoff_s=0.01, backoff_max_s=0.05)
    opts.update(kw)
    return OpenAIBackend(url, "gpt-test", cache_dir=str(cache) if cache else None, **opts)


@pytest.fixture
def server():
    with FaultServer("server") as s:
        yield s


def test_rate_limit_waits_for_retry_after(server, tmp_path):
    server.script["wait"] = [("raw", 429, b'{"error": "slow down"}', {"Retry-After": "1"}), ("ok",)]
    server.script["capped"] = [("raw", 429, b"{}", {"Retry-After": "100"}), ("ok",)]
    t0 = time.perf_counter()
    out = backend(server.url, tmp_path / "c", max_retries=2, backoff_max_s=5).generate([Request("wait")])[0]
    assert out.error == "" and out.tries == 2 and server.hits["wait"] == 2
    assert time.perf_counter() - t0 >= 0.95  # the server's 1 s, not the 10 ms backoff
    t0 = time.perf_counter()
    out = backend(server.url, tmp_path / "c", max_retries=2, backoff_max_s=0.3).generate([Request("capped")])[0]
    assert out.error == "" and time.perf_counter() - t0 < 5  # 100 s asked, capped at backoff_max_s
    assert retry_after_s(email.utils.formatdate(time.time() + 60, usegmt=True)) == pytest.approx(60, abs=2)
    assert retry_after_s("soon") is None and retry_after_s("-3") == 0


def test_server_errors_retried_then_given_up_and_not_cached(server, tmp_path):
    server.script["flaky"] = [("raw", 500, b"{}"), ("raw", 502, b"<html>bad gateway</html>"), ("raw", 503, b""), ("ok",)]
    server.script["down"] = [("raw", 503, b"{}")]
    server.script["refused"] = [("raw", 400, b'{"error": "bad request"}')]
    b = backend(server.url, tmp_path / "c", max_retries=3)
    out = b.generate([Request("flaky"), Request("down"), Request("refused")])
    assert out[0].error == "" and out[0].tries == 4
    assert out[1].error == "http_503" and server.hits["down"] == 4
    assert out[2].error == "http_400" and server.hits["refused"] == 1  # a 400 is not retried
    assert len(RequestCache(tmp_path / "c")) == 1  # failures are not cached: a rerun tries them again
    again = backend(server.url, tmp_path / "c", max_retries=0).generate([Request("flaky"), Request("down")])
    assert again[0].cached and server.hits["flaky"] == 4 and server.hits["down"] == 5


def test_hangs_and_trickled_bodies_time_out_bounded(server, tmp_path):
    server.script["hang"] = [("hang", 5.0)]
    server.script["trickle"] = [("trickle", 5.0)]
    t0 = time.perf_counter()
    out = backend(server.url, tmp_path / "c", timeout_s=0.3, max_retries=1).generate([Request("hang"), Request("trickle")])
    assert time.perf_counter() - t0 < 3.5  # 2 tries each, every byte of the trickle within the timeout
    assert [r.error for r in out] == ["request_failed", "request_failed"] and server.hits["hang"] == 2
    assert "Timeout" in out[0].error_detail and "Timeout" in out[1].error_detail
    assert len(RequestCache(tmp_path / "c")) == 0


def test_malformed_bodies_never_sink_the_batch(server, tmp_path):
    huge = json.dumps({"choices": [{"message": {"content": "x" * 200_000}}]}).encode()
    bodies = {
        "html": b"<html>Service Unavailable</html>", "empty": b"", "list": b"[1, 2]", "no_choices": b'{"object": "x"}',
        "empty_choices": b'{"choices": []}', "null_content": b'{"choices": [{"message": {"content": null}}]}',
        "choice_not_object": b'{"choices": ["hi"]}', "torn": b'{"choices": [{"message": ', "huge": huge,
        "deep": b"[" * 100_000 + b"]" * 100_000, "bad_utf8": b'{"choices": [{"message": {"content": "\xff\xfe"}}]}',
    }
    for name, body in bodies.items():
        server.script[name] = [("raw", 200, body)]
    server.script["parts"] = [("raw", 200, b'{"choices": [{"message": {"content": [{"type": "text", "text": "in parts"}]}}]}')]
    server.script["short"] = [("short",)]
    names = ["good1", *bodies, "parts", "short", "good2"]
    out = backend(server.url, tmp_path / "c", max_response_bytes=64 * 1024).generate([Request(n) for n in names])
    got = dict(zip(names, out))
    assert got["good1"].text.endswith("to good1") and got["good2"].text.endswith("to good2") and got["parts"].text == "in parts"
    assert {n for n in bodies if got[n].error == "bad_response"} == set(bodies)
    assert got["short"].error == "request_failed"  # body cut before its Content-Length: a transport failure
    # Paid answers are kept: the good ones and the unreadable 200s (the engine regenerates those).
    assert len(RequestCache(tmp_path / "c")) == len(names) - 1


@pytest.mark.parametrize("usage", ["lots", [1, 2], None, NO_USAGE, 7, {"prompt_tokens": "12", "completion_tokens": 3},
                                   {"prompt_tokens": -1, "completion_tokens": 3}, {"prompt_tokens": 1e300, "completion_tokens": 3},
                                   {"prompt_tokens": True, "completion_tokens": 3}, {"prompt_tokens": {"n": 1}}])
def test_usage_that_is_not_token_counts_means_tokens_unknown(server, tmp_path, caplog, usage):
    caplog.set_level(logging.WARNING, "hf_vitcurate.engine.http_backend")
    server.script["odd"] = [("ok", usage)]
    server.script["odd2"] = [("ok", usage)]
    server.script["counted"] = [("ok", {"prompt_tokens": 7, "completion_tokens": 5})]
    out = backend(server.url, tmp_path / "c").generate([Request("odd"), Request("counted"), Request("odd2")])
    assert [r.error for r in out] == ["", "", ""] and out[0].text.endswith("to odd")
    assert out[0].estimated and out[0].prompt_tokens >= 1 and out[0].completion_tokens >= 1
    assert not out[1].estimated and (out[1].prompt_tokens, out[1].completion_tokens) == (7, 5)
    assert len(RequestCache(tmp_path / "c")) == 3
    assert len([r for r in caplog.records if "tokens unknown" in r.getMessage()]) == 1  # once per backend, not per call
    ledger = Ledger({"gpt-test": Price(1.0, 2.0)})
    assert all(ledger.add("q", f"c{i}", r) > 0 for i, r in enumerate(out))
    assert usage_tokens({"prompt_tokens": 3.0, "completion_tokens": 4}) == (3, 4)


def test_redirect_to_another_origin_gets_no_credentials(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    with FaultServer("elsewhere") as other:
        elsewhere = other.url + "/chat/completions"
        server.script.update({
            "r302": [("redirect", 302, elsewhere)], "r301": [("redirect", 301, elsewhere)], "r303": [("redirect", 303, elsewhere)],
            "r307": [("redirect", 307, elsewhere)], "r308": [("redirect", 308, elsewhere)],
            "scheme": [("redirect", 307, server.url.replace("http://", "https://") + "/chat/completions")],
            "same": [("redirect", 307, "/v2/chat/completions"), ("ok",)],  # same origin: followed, key kept
            "moved": [("redirect", 301, "/v2/chat/completions")],  # same origin, but a 301 would turn the POST into a GET
            "nowhere": [("redirect", 302, "")],
        })
        prompts = ["r302", "r301", "r303", "r307", "r308", "scheme", "same", "moved", "nowhere"]
        b = backend(server.url, tmp_path / "c", max_retries=2)
        out = dict(zip(prompts, b.generate([Request(p) for p in prompts])))
        assert other.auth == [] and other.requests == 0  # nothing reached the other origin, let alone the key
        assert {p for p, r in out.items() if r.error == "redirected_elsewhere"} == {"r302", "r301", "r303", "r307", "r308", "scheme"}
        assert "another origin" in out["r302"].error_detail and SENTINEL not in out["r302"].error_detail
        assert out["same"].error == "" and out["same"].text.endswith("from server to same") and server.hits["same"] == 2
        assert out["moved"].error == "http_301" and out["nowhere"].error == "http_302"
        assert all(server.hits[p] == 1 for p in prompts if p != "same")  # refused redirects are not retried
        assert set(server.auth) == {f"Bearer {SENTINEL}"}
        assert len(RequestCache(tmp_path / "c")) == 1  # only the answer from the server the user named


def test_kill_mid_batch_pays_nothing_twice(server, tmp_path):
    n, k = 12, 5
    for i in range(n):
        server.script[f"p{i}"] = [("ok",)] if i < k else [("hold",), ("ok",)]
    cache = tmp_path / "cache"
    env = {**os.environ, "OPENAI_API_KEY": "", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    job = subprocess.Popen([sys.executable, str(JOB), server.url, str(cache), str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and job.poll() is None and not (server.held == n - k and len(RequestCache(cache)) == k):
            time.sleep(0.05)
        cached_before_kill = len(RequestCache(cache))
        assert server.held == n - k, job.stderr.read1().decode() if job.poll() is not None else "requests never arrived"
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(10)
        server.release(abort=True)  # the killed requests were never answered: not paid
    assert job.returncode == -signal.SIGKILL and sum(server.paid.values()) == k
    assert cached_before_kill == k  # each answer was on disk as it arrived, before the batch ended
    deadline = time.monotonic() + 10
    while server.held and time.monotonic() < deadline:
        time.sleep(0.02)
    for i in range(k, n):
        server.script[f"p{i}"] = [("ok",)]
    out = backend(server.url, cache, max_concurrency=n).generate([Request(f"p{i}", max_tokens=8) for i in range(n)])
    assert [r.error for r in out] == [""] * n
    assert max(server.paid.values()) == 1 and sum(server.paid.values()) == n  # 0 paid twice
    assert [r.cached for r in out] == [True] * k + [False] * (n - k)
    assert [r.text for r in out[:k]] == [server.served[f"p{i}"][0] for i in range(k)]  # every finished answer kept


def test_cache_keys_on_the_server_as_well_as_the_model_name(server, tmp_path):
    with FaultServer("other") as other:
        first = backend(server.url, tmp_path / "c").generate([Request("same prompt")])[0]
        second = backend(other.url, tmp_path / "c").generate([Request("same prompt")])[0]
        again = backend(server.url, tmp_path / "c").generate([Request("same prompt")])[0]
    assert "from server" in first.text and "from other" in second.text and not second.cached
    assert again.cached and again.text == first.text and other.paid["same prompt"] == server.paid["same prompt"] == 1


def test_nothing_listening_is_bounded(free_port, tmp_path):
    b = backend(f"http://127.0.0.1:{free_port}/v1", tmp_path / "c", max_retries=2)
    out = b.generate([Request("hello"), Request("again")])
    assert [r.error for r in out] == ["request_failed"] * 2 and b.sent == 6 and len(RequestCache(tmp_path / "c")) == 0


def test_engine_chunks_of_another_server_are_not_reused(server, tmp_path):
    from datasets import Dataset

    from hf_vitcurate.engine.calls import call_round
    from hf_vitcurate.engine.engine import Engine

    calls = Dataset.from_dict({"id": ["c1", "c2"], "prompt": ["first", "second"]})
    with FaultServer("other") as other:
        answers = []
        for url in (server.url, other.url, server.url):
            b = backend(url, tmp_path / "cache")
            engine = Engine(b, work_dir=str(tmp_path / "work"), batch_size=2)
            answers.append([r["text"] for r in call_round(engine, calls, "questions", 0, b, lambda row: Request(row["prompt"]))])
    assert all("from server" in t for t in answers[0]) and all("from other" in t for t in answers[1])
    assert answers[2] == answers[0] and sum(server.paid.values()) == 2  # back on the first server: its own answers, cached
