"""MMInstruct engine benchmarks: HTTP concurrency, engine throughput and cost, domain-tagging accuracy.

    python benchmarks/bench_mminstruct.py                 # all three, results as JSON on stdout
    python benchmarks/bench_mminstruct.py --only http --requests 256 --latency 0.1

- ``http``: the OpenAI-compatible backend against a local server (127.0.0.1, a thread)
  that answers every chat completion after ``--latency`` seconds: ``--requests``
  distinct requests sent one at a time (``max_concurrency=1``) and 16 in flight.
- ``engine``: the whole engine (captions, 4 types x 3 questions, multi-round long VQA)
  on ShapesWorld images against the same server; the server reports usage from the
  real prompt lengths (characters / 4) and scripted answers, priced as the paper's
  models (``gpt-4-1106-vision-preview`` captions, ``gpt-3.5-turbo-1106`` questions).
- ``tagging``: ``stages.taxonomy`` domain/type accuracy on the published English seed
  questions (domain from the file name) and on ShapesWorld labelled rows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def reply(prompt: str, has_image: bool) -> str:
    """Well-formed answers to the engine's prompts (the content is not the point here)."""
    if has_image:
        return " ".join(["A small red circle at the top left of a light background, next to a large blue square."] * 12)
    m = re.search(r"(?:design|ask) (\d+) (\S+) questions", prompt) or re.search(r"Create (\d+) Questions", prompt)
    n = int(m.group(1)) if m else 3
    kind = m.group(2) if m and m.lastindex and m.lastindex > 1 else "long"
    out = []
    for k in range(1, n + 1):
        if kind == "multiple-choice":
            out.append(f"<Q{k}> Which color is the circle? </Q{k}> <C{k}> A. red B. blue C. green D. pink </C{k}> <A{k}> A </A{k}>")
        elif kind == "judgement":
            out.append(f"<Q{k}> Is the circle red? </Q{k}> <A{k}> Yes </A{k}>")
        elif kind == "short-answer":
            out.append(f"<Q{k}> What color is the circle? </Q{k}> <A{k}> red </A{k}>")
        else:
            out.append(f"<Q{k}> Why is the circle at the top left? </Q{k}> <A{k}> It sits in the top left cell, away from the "
                       f"square, so the two shapes do not overlap and both stay fully visible. </A{k}>")
    return " ".join(out)


class LatencyServer:
    """Chat completions on 127.0.0.1 answered after ``latency`` seconds each (threaded)."""

    def __init__(self, latency: float):
        self.requests = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.requests += 1
                time.sleep(latency)
                content = body["messages"][-1]["content"]
                has_image = isinstance(content, list)
                prompt = content if isinstance(content, str) else next(c["text"] for c in content if c["type"] == "text")
                text = reply(prompt, has_image)
                usage = {"prompt_tokens": len(prompt) // 4 + (85 if has_image else 0), "completion_tokens": len(text) // 4}
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}], "usage": usage}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 64
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def bench_http(n_requests: int, latency: float, concurrency: int) -> dict:
    from hf_vitcurate.engine.backends import OpenAIBackend, Request

    server = LatencyServer(latency)
    try:
        out = {"requests": n_requests, "latency_s": latency}
        for name, conc in (("sequential", 1), (f"concurrent_{concurrency}", concurrency)):
            backend = OpenAIBackend(server.url, "gpt-3.5-turbo-1106", max_concurrency=conc, timeout_s=30, cache_dir=None)
            reqs = [Request(f"Question {name} {i}: is the circle red?") for i in range(n_requests)]
            t0 = time.perf_counter()
            resps = backend.generate(reqs)
            dt = time.perf_counter() - t0
            assert all(not r.error for r in resps)
            out[name] = {"seconds": round(dt, 3), "requests_per_s": round(n_requests / dt, 1)}
        out["speedup"] = round(out["sequential"]["seconds"] / out[f"concurrent_{concurrency}"]["seconds"], 2)
        return out
    finally:
        server.close()


def bench_engine(n_images: int, latency: float, concurrency: int) -> dict:
    from hf_vitcurate.engine.backends import OpenAIBackend
    from hf_vitcurate.engine.engine import Engine
    from hf_vitcurate.engine.ledger import Ledger, cost_report
    from hf_vitcurate.engine.shapes import shapes_images

    server = LatencyServer(latency)
    cache = tempfile.mkdtemp(prefix="bench-engine-cache-")
    try:
        def engine():
            kw = dict(max_concurrency=concurrency, timeout_s=30, cache_dir=cache)
            return Engine(OpenAIBackend(server.url, "gpt-3.5-turbo-1106", **kw), batch_size=64, ledger=Ledger(),
                          caption_backend=OpenAIBackend(server.url, "gpt-4-1106-vision-preview", **kw))

        images = shapes_images(n_images, seed=0)
        t0 = time.perf_counter()
        result = engine().run(images)
        dt = time.perf_counter() - t0
        sent = server.requests
        t1 = time.perf_counter()
        engine().run(images)  # resume: everything from the request cache
        dt_resume = time.perf_counter() - t1
        counts = result.counts()
        report = cost_report(result.ledger.records, n_images=n_images, n_instructions=result.instructions())
        return {"images": n_images, "latency_s": latency, "concurrency": concurrency, "seconds": round(dt, 2),
                "calls": sent, "calls_per_s": round(sent / dt, 1), "rows_kept": counts["kept"], "rows_rejected": counts["rejected"],
                "rows_per_s": round((counts["kept"] + counts["rejected"]) / dt, 1), "instructions": result.instructions(),
                "resume_seconds": round(dt_resume, 2), "resume_new_requests": server.requests - sent,
                "tokens": {k: report["measured"][k] for k in ("prompt_tokens", "completion_tokens")},
                "cost": {k: report["measured"][k] for k in ("caption_usd", "generation_usd", "per_image_usd", "per_instruction_usd")},
                "this_run": report["this_run"], "at_mminstruct_scale": report["at_mminstruct_scale"], "paper": report["paper"]}
    finally:
        server.close()


def bench_tagging(n_images: int) -> dict:
    from datasets import Dataset

    from hf_vitcurate.engine.seeds import load_seeds
    from hf_vitcurate.engine.shapes import labelled_questions
    from hf_vitcurate.engine.taxonomy import load_taxonomy
    from hf_vitcurate.stages.taxonomy import tagging_accuracy, taxonomy

    tax = load_taxonomy()
    seeds = load_seeds()
    keep = [i for i, d in enumerate(seeds["domain"][:]) if d in tax.domains]
    seeds = seeds.select(keep)
    rows = Dataset.from_dict({"id": seeds["id"][:], "_domain": seeds["domain"][:],
                              "conversations": [[{"from": "human", "value": q}, {"from": "gpt", "value": "x"}] for q in seeds["question"][:]]})
    seed_acc = tagging_accuracy(taxonomy(rows), truth_type=None)
    truth = labelled_questions(n_images, seed=7)
    t0 = time.perf_counter()
    tagged = taxonomy(truth, use_task=False)
    dt = time.perf_counter() - t0
    shapes_acc = tagging_accuracy(tagged)
    return {"seeds": {k: seed_acc[k] for k in ("rows", "domain_accuracy", "per_domain", "confusions")} | {"domains": len(seed_acc["per_domain"])},
            "shapesworld": {k: shapes_acc[k] for k in ("rows", "domain_accuracy", "type_accuracy", "per_domain", "per_type")}
            | {"rows_per_s": round(len(truth) / dt)}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["http", "engine", "tagging"], default=None)
    p.add_argument("--requests", type=int, default=128)
    p.add_argument("--latency", type=float, default=0.1)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--images", type=int, default=64, help="ShapesWorld images for the engine run")
    p.add_argument("--tag-images", type=int, default=500, help="ShapesWorld images for labelled rows")
    args = p.parse_args(argv)
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    out = {}
    if args.only in (None, "http"):
        out["http"] = bench_http(args.requests, args.latency, args.concurrency)
    if args.only in (None, "engine"):
        out["engine"] = bench_engine(args.images, args.latency, args.concurrency)
    if args.only in (None, "tagging"):
        out["tagging"] = bench_tagging(args.tag_images)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
