"""MMInstruct data engine: seeds, prompts, parser, ledger, review, the HTTP and local backends.

The HTTP backend is tested against a real server on 127.0.0.1 (``http.server`` in a
thread) that answers like an OpenAI-compatible chat-completions endpoint and injects
faults on cue: the engine's own captions carry a marker (from the test images'
``image_tag``) that the server reads in the question prompts, so each fault hits the
same calls in every run. Every request loop in the client is bounded (retries,
attempts), and the server only ever answers.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import datasets
import pytest
from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage

from hf_vitcurate import FormatError, provenance, validate
from hf_vitcurate.engine import parser as engine_parser
from hf_vitcurate.engine.backends import (
    EchoBackend,
    LocalBackend,
    OpenAIBackend,
    Request,
    RequestCache,
)
from hf_vitcurate.engine.engine import Engine
from hf_vitcurate.engine.ledger import (
    Ledger,
    Price,
    call_cost,
    cost_report,
    load_prices,
    report_markdown,
)
from hf_vitcurate.engine.output import mminstruct_configs
from hf_vitcurate.engine.prompts import instruction, load_prompts, suffix_for
from hf_vitcurate.engine.review import export_review, import_review
from hf_vitcurate.engine.seeds import SeedBank, load_end_prompts, load_seeds, seeds_dir
from hf_vitcurate.engine.taxonomy import TYPE_SUFFIX
from hf_vitcurate.results import Split

SENTINEL = "sk-SENTINEL-7f3a9c-do-not-leak"
GPT35 = "gpt-3.5-turbo-1106"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.getbasetemp() / "hf_cache"))


# ---------------------------------------------------------------- a scripted "LLM"


def _asked(prompt: str) -> tuple[str, int]:
    """(kind, n) a prompt asks for."""
    m = re.search(r"(?:design|ask) (\d+) (\S+) questions", prompt)
    if m:
        kind = {"judgement": "judgement", "multiple-choice": "multiple_choice", "short-answer": "short_vqa"}.get(m.group(2), "long_vqa")
        return kind, int(m.group(1))
    m = re.search(r"Create (\d+) Questions", prompt)
    return "multi", int(m.group(1)) if m else 3


def scripted(prompt: str, has_image: bool) -> str:
    """A well-behaved generator, with faults on markers found in the prompt."""
    if has_image:
        tag = re.search(r"Image related information: (\S+)", prompt)
        return f"A small red circle at the top left of a light background. Marker {tag.group(1) if tag else 'none'}."
    kind, n = _asked(prompt)
    json_out = "a JSON list of" in prompt
    if "MarkerGARBAGE" in prompt.replace(" ", ""):
        return "I am sorry, I cannot help with that."
    items = []
    for k in range(1, n + 1):
        q, opts, a = f"Question {k} about the circle?", [], "a red circle"
        if kind == "judgement":
            a = "Maybe" if "MAYBE" in prompt and k == 1 else "Yes"
        elif kind == "multiple_choice":
            opts, a = ["A. red", "B. blue", "C. green", "D. pink"], ("A and B" if "MAYBE" in prompt and k == 1 else "A")
        elif kind == "short_vqa" and "LEAK" in prompt and k == 2:
            a = "the caption says red"
        elif kind in ("long_vqa", "multi"):
            a = f"The circle is red, which matters for step {k} of the reasoning about the picture."
        if "EMPTY" in prompt and k == n:
            a = ""
        items.append((q, opts, a))
    if "SHORT" in prompt:
        items = items[:-1]
    if json_out:
        return json.dumps([{"question": q, **({"options": o} if o else {}), "answer": a} for q, o, a in items])
    return " ".join(f"<Q{k}> {q} </Q{k}>" + (f" <C{k}> {' '.join(o)} </C{k}>" if o else "") + f" <A{k}> {a} </A{k}>"
                    for k, (q, o, a) in enumerate(items, start=1))


class FakeOpenAI:
    """OpenAI-style chat completions on 127.0.0.1 with faults keyed on markers in the prompt."""

    def __init__(self, slow_s: float = 4.0):
        self.seen: Counter = Counter()  # request body hash -> times seen
        self.requests = 0
        self.auth: set[str] = set()
        self.slow_s = slow_s
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with fake.lock:
                    fake.requests += 1
                    key = hashlib.sha256(raw).hexdigest()
                    fake.seen[key] += 1
                    hits = fake.seen[key]
                    fake.auth.add(self.headers.get("Authorization", ""))
                body = json.loads(raw)
                content = body["messages"][-1]["content"]
                has_image = isinstance(content, list) and any(c.get("type") == "image_url" for c in content)
                prompt = content if isinstance(content, str) else next(c["text"] for c in content if c["type"] == "text")
                q = prompt if not has_image else ""
                if "SLOW" in q and hits == 1:
                    time.sleep(fake.slow_s)
                if "FAIL429" in q and hits <= 2:
                    return self._send(429, b'{"error": "rate limited"}', {"Retry-After": "0"})
                if "FAIL500" in q and hits == 1:
                    return self._send(500, b'{"error": "boom"}')
                if "BADJSON" in q:
                    return self._send(200, b'{"choices": [ {"message": ')
                text = scripted(prompt, has_image)
                usage = {"prompt_tokens": len(prompt) // 4 + (85 if has_image else 0), "completion_tokens": len(text) // 4}
                out = {"id": "x", "model": body["model"], "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                       "usage": usage}
                return self._send(200, json.dumps(out).encode())

            def _send(self, code, payload, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to do

        # The default listen backlog (5) is below the client's 8 concurrent calls: on a busy machine a
        # dropped SYN is resent after 1 s, past a short timeout, and the call counts a try the server
        # never saw. A deep backlog keeps each call's tries equal to the faults scripted here.
        server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128})
        self.server = server_class(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def make_images(tags: list[str]) -> Dataset:
    ims = [[PILImage.new("RGB", (16, 16), (20 * i, 100, 50))] for i in range(len(tags))]
    feats = Features({"id": Value("string"), "images": List(Image()), "domain": Value("string"), "image_tag": Value("string")})
    domains = ["landmark", "complex_reasoning", "ocr", "attribute_recognition", "posters", "writing"]
    return Dataset.from_dict({"id": [f"img{i}" for i in range(len(tags))], "images": ims,
                              "domain": [domains[i % len(domains)] for i in range(len(tags))], "image_tag": tags}, features=feats)


def http_backend(url: str, cache: Path | None, model: str = GPT35, **kw) -> OpenAIBackend:
    # A timeout far above a local call's time and far below FakeOpenAI's slow_s: on a loaded machine
    # a plain call never times out, and a SLOW call always does (once).
    opts = dict(max_concurrency=8, timeout_s=2.0, max_retries=3, backoff_s=0.01, backoff_max_s=0.05)
    opts.update(kw)
    return OpenAIBackend(url, model, cache_dir=str(cache) if cache else None, **opts)


# ---------------------------------------------------------------- seeds, prompts, suffixes


def test_packaged_seeds_equal_published(real_data):
    folder = real_data / "mminstruct_seeds"
    ours, theirs = load_seeds(), load_seeds(folder)
    assert ours.to_list() == theirs.to_list() and len(ours) == 408
    assert load_end_prompts() == load_end_prompts(folder)
    assert (Path(seeds_dir()) / "LICENSE").read_text() == (folder / "LICENSE").read_text()
    assert "Apache License" in (Path(seeds_dir()) / "LICENSE").read_text()
    # Same file names, the empty ones still empty.
    assert sorted(p.name for p in Path(seeds_dir()).glob("*.json")) == sorted(p.name for p in folder.glob("*.json"))
    empty = provenance.steps(ours)[-1]["params"]["empty_files"]
    assert len(empty) == 4 and "00007_attribute_recognition.json" in empty


def test_seed_bank_spellings_and_draws(tmp_path):
    (tmp_path / "00001_image_style.json").write_text(json.dumps(
        {"Judgment": {"english": ["Is it a sketch?"]}, "select": {"EN": ["Which style?", "What style?"]},
         "shortsentence": {"English": ["Name the style."]}, "longsentence": {"English": ["Explain the style."]},
         "sentence": {"Chinese": ["风格？"]}}))
    (tmp_path / "00002_Socli_Relation.json").write_text("")  # published empty; paper typo in the name
    (tmp_path / "end_prompt.json").write_text(json.dumps({"judge": {"English": [" Answer yes or no."]}, "Select": {"English": [" Pick one."]}}))
    bank = SeedBank.load(tmp_path)
    assert bank.questions("image_style", "judgement") == ["Is it a sketch?"]
    assert bank.questions("image_style", "multiple_choice") == ["Which style?", "What style?"]
    assert bank.questions("image_style", "short_vqa") == ["Name the style."] and bank.questions("image_style", "long_vqa") == ["Explain the style."]
    assert bank.questions("social_relation", "judgement") == []
    assert load_end_prompts(tmp_path) == {"judgement": ["Answer yes or no."], "multiple_choice": ["Pick one."]}
    real = SeedBank.load()
    a = real.pick("artwork", "judgement", 3, seed=0, key="img1")
    assert len(a) == 3 and a == real.pick("artwork", "judgement", 3, seed=0, key="img1")  # stable: reruns hit the cache
    assert "celebrity_recognition" in real.unknown_domains


def test_prompts_follow_tables_and_override(tmp_path):
    p = load_prompts()
    cap = p.caption_prompt("posters", image_tag="a film poster", ocr_text="STAR WARS")
    assert cap.startswith("I will provide you an image and related information about the image")
    assert "Describe the image in as much detail as possible." in cap and "Image related information: a film poster" in cap
    assert "Text information in the image: STAR WARS" in cap and "Try to identify which film/TV show the image comes from." in cap
    assert "Special" not in p.caption_prompt("writing") and "Text information" not in p.caption_prompt("writing")
    ws = p.questions("landmark", "multiple_choice", caption="A tower.", seeds=["Which landmark is it?"], n=3)
    assert "design 3 multiple-choice questions and corresponding answers related to the topic of landmark" in ws
    assert "Question template:\n- Which landmark is it?" in ws and "<C3> A. option B. option C. option D. option </C3>" in ws
    ns = p.questions("complex_reasoning", "judgement", caption="A tower.", n=3, output_format="json")
    assert ns.startswith("Given a description of the image, you need to ask 3 judgement questions") and "a JSON list of 3 objects" in ns
    mr = p.multi_round_prompt(caption="A tower.")
    assert 'Pretend that you have "seen" an image' in mr and "Create 5 Questions using English" in mr and "<Q5> question </Q5>" in mr
    (tmp_path / "caption.j2").write_text("Caption this. {{ requirement }}")
    assert load_prompts(tmp_path).caption_prompt("landmark") == "Caption this. Try to identify the landmark building or place in the image."
    assert load_prompts(no_seed="Ask {{ n }}.").questions("complex_reasoning", "judgement", caption="x") == "Ask 3."
    with pytest.raises(ValueError, match="unknown prompt"):
        load_prompts(captions="x")


def test_indicator_suffixes():
    assert TYPE_SUFFIX == {"multiple_choice": "Please choose the most appropriate option.", "judgement": "Please answer yes or no.",
                           "short_vqa": "Answer the question using a single word or phrase.", "long_vqa": ""}
    assert instruction("Is it red?", "judgement") == "Is it red?\nPlease answer yes or no."
    assert instruction("Is it red? Please answer yes or no.", "judgement") == "Is it red?\nPlease answer yes or no."  # not twice
    assert instruction("Which?", "multiple_choice", ["A. x", "B. y"]) == "Which?\nA. x\nB. y\nPlease choose the most appropriate option."
    assert instruction("Why?", "long_vqa") == "Why?"
    ends = load_end_prompts()
    assert suffix_for("long_vqa", "end_prompt", ends, "row1") in ends["long_vqa"]
    assert suffix_for("short_vqa", "fixed") == "Answer the question using a single word or phrase."
    with pytest.raises(ValueError, match="suffix style"):
        suffix_for("short_vqa", "spec")


# ---------------------------------------------------------------- parser


@pytest.mark.parametrize("fmt", ["tags", "json"])
def test_parser_reasons_both_formats(fmt):
    def out(items):
        if fmt == "json":
            return json.dumps([{"question": q, **({"options": o} if o else {}), "answer": a} for q, o, a in items])
        return " ".join(f"<Q{k}> {q} </Q{k}>" + (f" <C{k}> {' '.join(o)} </C{k}>" if o else "") + f" <A{k}> {a} </A{k}>"
                        for k, (q, o, a) in enumerate(items, start=1))

    opts = ["A. red", "B. blue", "C. green", "D. pink"]
    got = engine_parser.parse(out([("Which?", opts, "B"), ("Which?", opts, "B or C"), ("Which?", opts[:3], "A")]), "multiple_choice", n=3)
    assert [i.reject_reason for i in got.items] == ["", "not_one_right_option", "not_one_right_option"]
    twice = ["A. red", "B. cross", "C. Cross", "D. pink"]  # two options say the same: not one right option
    assert engine_parser.parse(out([("Which?", twice, "B")]), "multiple_choice", n=1).items[0].reject_reason == "not_one_right_option"
    got = engine_parser.parse(out([("Is it?", [], "Yes, it is."), ("Is it?", [], "Perhaps")]), "judgement", n=3)
    assert [i.reject_reason for i in got.items] == ["", "judgement_not_yes_no", "too_few_questions"]
    got = engine_parser.parse(out([("What?", [], "")]), "short_vqa", n=1)
    assert got.items[0].reject_reason == "empty_answer"
    got = engine_parser.parse(out([("", [], "red")]), "short_vqa", n=1)
    assert got.items[0].reject_reason == "empty_question"
    got = engine_parser.parse(out([("A?", [], "x"), ("B?", [], "y"), ("C?", [], "z"), ("D?", [], "w")]), "short_vqa", n=3)
    assert got.ok and got.extra == 1 and len(got.items) == 3


def test_parser_no_parse_and_oddities():
    for text in ["", None, "I cannot help.", "[1, 2", '{"note": "nothing"}']:
        got = engine_parser.parse(text, "judgement", n=3)
        assert [i.reject_reason for i in got.items] == ["no_parse"] * 3
    got = engine_parser.parse("<Q1> Is it red? </Q1> <A1> Yes </A1> <Q2> Is it big?", "judgement", n=2)
    assert [i.reject_reason for i in got.items] == ["", "no_parse"]  # an unclosed tag is never kept
    # Unlettered JSON options are lettered; an answer may name the option's text; fences are fine.
    got = engine_parser.parse('```json\n[{"question": "Which?", "options": ["red", "blue", "green", "pink"], "answer": "blue"}]\n```',
                              "multiple_choice", n=1)
    assert got.ok and got.items[0].options[1] == "B. blue"
    got = engine_parser.parse('[{"question": "What is <Q1>?", "answer": "a tag"}]', "short_vqa", n=1)
    assert got.ok and got.items[0].question == "What is <Q1>?"


# ---------------------------------------------------------------- ledger


def test_ledger_prices_reproduce_table2():
    prices = load_prices()
    # 200 words ≈ 267 tokens of caption, a 512px image at low detail = 85 tokens.
    assert call_cost(prices["gpt-4-1106-vision-preview"], 85, 266.67) == pytest.approx(0.00885, abs=1e-6)
    assert call_cost(prices[GPT35], 600, 300) / 3 == pytest.approx(0.0004)
    assert call_cost(prices["gpt-4-1106-vision-preview"], 0, 0, images=2, estimated=True) == pytest.approx(2 * 85 * 0.01 / 1000)
    report = cost_report([], n_images=10, n_instructions=60)
    assert report["paper"]["engine_total_usd"] == pytest.approx(128_304.05) and report["paper"]["manual_total_usd"] == 817_320
    assert report["paper"]["engine_over_manual"] == pytest.approx(128_304.05 / 817_320, abs=1e-4)
    assert report["this_run"]["manual_usd"] == pytest.approx(60 * 0.84)
    assert "paper, Table 2" in report_markdown(report)
    assert load_prices(mine={"input_per_1k": 1, "output_per_1k": 2})["mine"] == Price(1, 2)


# ---------------------------------------------------------------- engine end to end over HTTP

TAGS = ["plain", "SLOW", "FAIL429", "FAIL500", "BADJSON", "GARBAGE", "MAYBE", "LEAK", "SHORT", "EMPTY"]


def test_http_engine_end_to_end_faults_resume_and_key(tmp_path, monkeypatch, caplog):
    caplog.set_level("DEBUG")
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    images = make_images(TAGS)
    cache = tmp_path / "cache"
    prices = {**load_prices(), "vision-test": Price(0.01, 0.03, 85)}
    with FakeOpenAI() as server:
        def run(ledger_path):
            engine = Engine(http_backend(server.url, cache), caption_backend=http_backend(server.url, cache, model="vision-test"),
                            ledger=Ledger(prices, path=ledger_path), batch_size=16, max_attempts=2)
            return engine.run(images), engine

        result, engine = run(tmp_path / "ledger1.jsonl")
        first = server.requests
        assert server.auth == {f"Bearer {SENTINEL}"}  # the key reached the server
        c = result.counts()
        # Rows in = kept + rejected: 10 captions + 10 images x 4 types x 3 questions + 10 multi-round rows.
        assert c["rows_in"] == 10 + 10 * 4 * 3 + 10 == c["kept"] + c["rejected"]
        rej = c["rejected_by_reason"]
        # BADJSON: every question call unreadable; GARBAGE: nothing parses; per image 4 x 3 + 1 rows.
        assert rej["bad_response"] == 13 and rej["no_parse"] == 13
        assert rej["judgement_not_yes_no"] == 1 and rej["not_one_right_option"] == 1  # MAYBE: first item of two calls
        assert rej["leakage"] == 1  # LEAK: short VQA item 2 says "the caption"
        assert rej["too_few_questions"] == 4 + 1  # SHORT: one missing item per call, and the multi-round row
        assert rej["empty_answer"] == 4 + 1  # EMPTY: last item of each call, and the multi-round row
        assert sum(rej.values()) == c["rejected"]
        # Slow, 429 and 500 calls were retried to success: all their rows kept.
        kept_ids = set(result.kept["id"][:])
        for tag in ("SLOW", "FAIL429", "FAIL500", "plain"):
            i = TAGS.index(tag)
            assert {f"img{i}-caption", f"img{i}-judgement-q3", f"img{i}-multi_round"} <= kept_ids
        tries = {r["call_id"]: r["tries"] for r in result.ledger.records if r["attempt"] == 0}
        assert tries["img2-judgement"] == 3 and tries["img3-judgement"] == 2  # 429 twice / 500 once, then OK
        assert tries["img1-judgement"] == 2 and tries["img0-judgement"] == 1  # slow: timed out once, then OK
        # Regeneration: broken calls were asked again (attempt 2), good ones once.
        attempts = {r["engine_call"]: r["engine_attempts"] for r in result.kept.select_columns(["engine_call", "engine_attempts"])}
        assert attempts["img0-judgement"] == 1 and attempts["img6-judgement"] == 2
        rejected = result.rejected
        assert all(r for r in rejected["reject_reason"][:]) and all(rejected["reject_detail"][:])
        garbage = rejected.filter(lambda r: r["engine_call"] == "img5-judgement")
        assert garbage[0]["raw_output"].startswith("I am sorry")
        # Kept rows are valid canonical rows with the indicator suffixes and their images.
        kept, bad = validate(result.kept)
        assert len(bad) == 0 and len(kept) == c["kept"]
        row = result.kept.filter(lambda r: r["id"] == "img0-multiple_choice-q1")[0]
        assert row["conversations"][0]["value"].startswith("<image>\n") and row["conversations"][0]["value"].endswith(TYPE_SUFFIX["multiple_choice"])
        assert row["images"][0].size == (16, 16) and row["domain"] == "landmark" and row["instruction_type"] == "multiple_choice"
        multi = result.kept.filter(lambda r: r["id"] == "img0-multi_round")[0]
        assert multi["domain"] == "multi_round_long_vqa" and len(multi["conversations"]) == 10
        # Costs: rows share their calls' cost, so rows add up to the ledger (unique requests).
        total = result.ledger.summary()["total"]["cost_usd"]
        rows_cost = sum(result.kept["cost_usd"][:]) + sum(rejected["cost_usd"][:])
        assert total > 0 and rows_cost == pytest.approx(total)
        assert sum(r["paid_usd"] for r in result.ledger.records) == pytest.approx(total)

        # Resume: the same run again pays for nothing and sends nothing.
        again, _ = run(tmp_path / "ledger2.jsonl")
        assert server.requests == first
        assert again.counts()["rejected_by_reason"] == rej and again.kept["id"][:] == result.kept["id"][:]
        assert all(r["cached"] for r in again.ledger.records) and sum(r["paid_usd"] for r in again.ledger.records) == 0
        assert again.ledger.summary()["total"]["cost_usd"] == pytest.approx(total)

    # Outputs written to disk: nothing anywhere holds the key (nor does the log).
    result.kept.save_to_disk(str(tmp_path / "kept"))
    result.rejected.remove_columns(["images"]).to_json(str(tmp_path / "rejected.jsonl"))
    export_review(result.kept, tmp_path / "review.csv")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 20 and any(p.suffix == ".json" for p in (tmp_path / "cache").rglob("*"))
    for p in written:
        assert SENTINEL.encode() not in p.read_bytes(), p
    assert SENTINEL not in caplog.text and SENTINEL not in repr(engine.backend)


def test_http_backend_gives_up_bounded(tmp_path):
    # Nothing listens on this port: connection refused, retried a bounded number of times.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    backend = http_backend(f"http://127.0.0.1:{port}/v1", tmp_path / "c", max_retries=2)
    out = backend.generate([Request("hello"), Request("again")])
    assert [r.error for r in out] == ["request_failed"] * 2 and backend.sent == 6
    assert len(RequestCache(tmp_path / "c")) == 0  # failures are not cached: a rerun tries again


def test_json_output_format_and_end_prompt_suffixes():
    engine = Engine(EchoBackend(lambda r: scripted(r.prompt, bool(r.images))), output_format="json", suffixes="end_prompt", max_attempts=1)
    result = engine.run(make_images(["plain", "plain"]), types=["judgement", "long_vqa"], n_questions=2, captions=False)
    assert result.counts()["rejected"] == 0 and result.counts()["kept"] == 2 * 2 * 2 + 2
    ends = load_end_prompts()
    row = result.kept.filter(lambda r: r["instruction_type"] == "long_vqa" and r["domain"] != "multi_round_long_vqa")[0]
    assert row["conversations"][0]["value"].split("\n")[-1] in ends["long_vqa"]


def test_sharded_rounds_resume_from_chunks(tmp_path):
    def engine():
        return Engine(EchoBackend(lambda r: scripted(r.prompt, bool(r.images))), work_dir=str(tmp_path / "shards"), batch_size=4)

    first = engine()
    result = first.run(make_images(["plain", "MAYBE", "plain"]), types=["judgement", "short_vqa"])
    plain = Engine(EchoBackend(lambda r: scripted(r.prompt, bool(r.images))), batch_size=4)
    reference = plain.run(make_images(["plain", "MAYBE", "plain"]), types=["judgement", "short_vqa"])
    assert result.kept["id"][:] == reference.kept["id"][:] and result.counts() == reference.counts()
    assert list((tmp_path / "shards").glob("questions-attempt1/rank-00000/chunk-*.done"))
    again = engine()
    assert again.run(make_images(["plain", "MAYBE", "plain"]), types=["judgement", "short_vqa"]).counts() == result.counts()
    assert again.backend.calls == 0 and again.caption_backend.calls == 0  # every chunk was already done


def test_failed_caption_rejects_its_rows():
    engine = Engine(EchoBackend(lambda r: "" if r.images else scripted(r.prompt, False)), max_attempts=2)
    result = engine.run(make_images(["plain"]), types=["short_vqa"], n_questions=3)
    assert result.counts()["kept"] == 0
    assert result.counts()["rejected_by_reason"] == {"caption_failed": 1 + 3 + 1}
    assert engine.caption_backend.calls == 2  # the caption was tried twice, the questions never sent


def test_engine_results_are_splits_of_every_item_made():
    engine = Engine(EchoBackend(lambda r: scripted(r.prompt, bool(r.images))), max_attempts=1)
    result = engine.run(make_images(["plain", "MAYBE", "SHORT"]), types=["judgement", "short_vqa"], n_questions=3)
    # The result is the package's kept/rejected pair, and still carries the captions and the ledger.
    assert isinstance(result, Split) and isinstance(result.split, Split) and type(result.split) is Split
    kept, rejected = result
    assert kept is result.kept and rejected is result.rejected and result.ledger is engine.ledger
    # Items made: 3 captions, 3 images x 2 types x 3 questions, 3 multi-round rows; each kept or rejected, once.
    made = 3 + 3 * 2 * 3 + 3
    assert len(kept) + len(rejected) == made and len(rejected) > 0 and len(kept) > 0
    assert len(set(kept["id"][:]) | set(rejected["id"][:])) == made
    assert all(rejected["reject_reason"][:])
    # The steps return Splits too.
    captioned = result.captioned
    for part in (engine.instructions(captioned, types=["judgement"]), engine.questions(captioned, types=["judgement"]),
                 engine.long_vqa(captioned), engine.generate(engine.plan(captioned, types=["short_vqa"])),
                 engine.caption_rows(captioned)):
        assert isinstance(part, Split)
    assert sum(map(len, engine.questions(captioned, types=["judgement"], n_questions=2))) == 3 * 2


def test_cli_engine_caption_and_questions_over_http(tmp_path, capsys):
    from hf_vitcurate.cli import main

    with FakeOpenAI() as server:
        common = ["--backend", "openai", "--base-url", server.url, "--model", GPT35, "--max-retries", "0",
                  "--cache-dir", str(tmp_path / "cache")]
        assert main(["engine", "caption", "shapesworld:2", *common, "--output", str(tmp_path / "captioned")]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["images"] == 2 and summary["captions_failed"] == 0
        assert main(["engine", "questions", str(tmp_path / "captioned"), *common, "--types", "judgement", "--n-questions", "2",
                     "--no-long-vqa", "--output", str(tmp_path / "rows"), "--rejected", str(tmp_path / "rejected")]) == 0
        summary = json.loads(capsys.readouterr().out)
    # Defaults come from Engine.instructions: caption rows are made unless --no-captions.
    assert summary["rows_in"] == 2 + 2 * 2 == summary["kept"] + summary["rejected"]
    kept = datasets.load_from_disk(str(tmp_path / "rows"))
    assert len(kept) == summary["kept"] and set(kept["instruction_type"][:]) <= {"caption", "judgement"}


# ---------------------------------------------------------------- review round trip


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_review_round_trip(tmp_path, suffix):
    result = Engine(EchoBackend(lambda r: scripted(r.prompt, bool(r.images)))).run(make_images(["plain"]), types=["judgement"], n_questions=3)
    rows = result.kept
    path = export_review(rows, tmp_path / f"review{suffix}", image_dir=tmp_path / "imgs")
    if suffix == ".csv":
        recs = list(csv.DictReader(Path(path).read_text(encoding="utf-8").splitlines()))
    else:
        recs = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    assert len(recs) == len(rows) and recs[0]["caption"] and (tmp_path / recs[0]["image_file"]).exists()
    by_id = {r["id"]: r for r in recs}
    by_id["img0-judgement-q1"].update(decision="accept", reviewer="ann", reason="fine")
    by_id["img0-judgement-q2"].update(decision="reject", reviewer="bob", reason="hallucinated circle")
    by_id["img0-judgement-q3"].update(decision="edit", reviewer="ann", reason="wrong answer", answer="No")
    multi = by_id["img0-multi_round"]
    turns = json.loads(multi["conversation"])
    turns[1]["value"] = "Edited long answer."
    multi.update(decision="edit", reviewer="cy", conversation=json.dumps(turns))

    def write(records, name):
        out = tmp_path / name
        if suffix == ".csv":
            with open(out, "w", encoding="utf-8", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(records[0]))
                w.writeheader()
                w.writerows(records)
        else:
            out.write_text("".join(json.dumps(r) + "\n" for r in records))
        return out

    reviewed = import_review(rows, write(list(by_id.values()), f"done{suffix}"))
    assert isinstance(reviewed, Split)
    kept, rejected = reviewed
    assert len(kept) + len(rejected) == len(rows) and len(rejected) == 1
    assert rejected[0]["reject_reason"] == "review_rejected" and rejected[0]["reject_detail"] == "bob: hallucinated circle"
    k = {r["id"]: r for r in kept.select_columns(["id", "conversations", "review_decision", "review_reviewer", "review_reason"])}
    assert k["img0-judgement-q3"]["conversations"][1]["value"] == "No" and k["img0-judgement-q3"]["review_reason"] == "wrong answer"
    assert k["img0-judgement-q3"]["conversations"][0]["value"].startswith("<image>\n")
    assert k["img0-multi_round"]["conversations"][1]["value"] == "Edited long answer."
    assert k["img0-judgement-q1"]["review_decision"] == "accept" and k["img0-caption"]["review_decision"] == "pending"
    assert len(validate(kept)[1]) == 0
    _, rej2 = import_review(rows, write(list(by_id.values()), f"done2{suffix}"), undecided="reject")
    assert Counter(rej2["reject_reason"][:]) == {"review_rejected": 1, "review_pending": len(rows) - 4}
    by_id["img0-judgement-q3"]["answer"] = "Maybe"
    with pytest.raises(FormatError, match="judgement_not_yes_no"):
        import_review(rows, write(list(by_id.values()), f"bad{suffix}"))
    with pytest.raises(FormatError, match="'nope'"):
        import_review(rows, write([{**recs[0], "id": "nope", "decision": "accept"}], f"bad2{suffix}"))
    with pytest.raises(FormatError, match="decision"):
        import_review(rows, write([{**recs[0], "decision": "maybe"}], f"bad3{suffix}"))


# ---------------------------------------------------------------- MMInstruct-style output


def test_configs_per_domain_and_type_splits():
    result = Engine(EchoBackend(lambda r: scripted(r.prompt, bool(r.images)))).run(make_images(["plain"] * 3))
    configs = mminstruct_configs(result.kept)
    assert set(configs) == {"landmark", "complex_reasoning", "ocr", "multi_round_long_vqa"}
    assert sum(dd["train"].num_rows for dd in configs.values()) == len(result.kept)
    by_type = mminstruct_configs(result.kept, split_by_type=True, drop_columns=["caption"])
    assert list(by_type["ocr"]) == ["judgement", "multiple_choice", "short_vqa", "long_vqa", "caption"]
    assert set(by_type["ocr"]["judgement"]["instruction_type"][:]) == {"judgement"}
    assert "caption" not in by_type["ocr"]["judgement"].column_names


# ---------------------------------------------------------------- local transformers backend


@pytest.fixture(scope="module")
def engine_checkpoint(tmp_path_factory):
    """A tiny LLaVA checkpoint whose tokenizer knows the engine's prompts (so they fit its positions)."""
    from hf_vitcurate.testing import TOY_ARCHITECTURE, tiny_checkpoint

    p = load_prompts()
    corpus = [p.caption_prompt("landmark", "tag"), p.questions("landmark", "judgement", caption="A red circle.", seeds=["Is it?"]),
              p.questions("complex_reasoning", "short_vqa", caption="A red circle."), p.multi_round_prompt(caption="A red circle."),
              scripted(p.questions("ocr", "multiple_choice", caption="x", seeds=["Which?"]), False)] * 3
    return tiny_checkpoint(corpus, output_dir=tmp_path_factory.mktemp("engine_ckpt") / "tiny", architecture=TOY_ARCHITECTURE,
                           max_positions=1024, vocab_size=1024)


def test_local_backend_engine_end_to_end(engine_checkpoint, tmp_path):
    backend = LocalBackend(engine_checkpoint, max_new_tokens=12, batch_size=8, cache_dir=tmp_path / "cache")
    # The checkpoint answers an image request (a random tiny model may well answer nothing).
    img = backend.generate([Request(load_prompts().caption_prompt("landmark"), images=[PILImage.new("RGB", (16, 16))], max_tokens=8)])
    assert img[0].error == "" and img[0].prompt_tokens > 20 and img[0].images == 1 and backend.accepts_images
    # Questions on the local model, captions from a scripted "vision model": rows in = kept + rejected.
    captioner = EchoBackend(lambda r: scripted(r.prompt, True))
    engine = Engine(backend, caption_backend=captioner, max_attempts=2, batch_size=8)
    result = engine.run(make_images(["plain", "plain"]), types=["judgement", "short_vqa"], n_questions=3, n_long=5)
    c = result.counts()
    assert c["rows_in"] == 2 + 2 * 2 * 3 + 2 == c["kept"] + c["rejected"] and c["kept_by_type"]["caption"] == 2
    assert set(c["rejected_by_reason"]) <= set(engine_parser.REASONS)
    local = [r for r in result.ledger.records if r["model"] == backend.model]
    assert len(local) >= 2 * 2 + 2 and all(r["prompt_tokens"] > 50 and not r["priced"] for r in local)
    calls = backend.calls
    engine.run(make_images(["plain", "plain"]), types=["judgement", "short_vqa"], n_questions=3, n_long=5)
    assert backend.calls == calls  # resumed from the request cache: no generation at all


def test_local_backend_text_only_checkpoint(engine_checkpoint, tmp_path):
    from transformers import AutoProcessor, LlamaForCausalLM, LlavaConfig

    config = LlavaConfig.from_pretrained(engine_checkpoint)
    text_dir = tmp_path / "text_lm"
    LlamaForCausalLM(config.text_config).save_pretrained(text_dir)
    AutoProcessor.from_pretrained(engine_checkpoint).tokenizer.save_pretrained(text_dir)
    backend = LocalBackend(text_dir, max_new_tokens=8)
    out = backend.generate([Request("Given a description of the image", max_tokens=8)])
    assert out[0].error == "" and out[0].prompt_tokens > 0 and not backend.accepts_images
    with pytest.raises(ValueError, match="text-only"):
        backend.generate([Request("Describe", images=[PILImage.new("RGB", (8, 8))])])


def _text_lm(engine_checkpoint, folder: Path, seed: int) -> Path:
    """A random text-only LM (the engine checkpoint's tokenizer) saved to ``folder``: another seed, another model."""
    import torch
    from transformers import AutoProcessor, LlamaForCausalLM, LlavaConfig

    torch.manual_seed(seed)
    LlamaForCausalLM(LlavaConfig.from_pretrained(engine_checkpoint).text_config).save_pretrained(folder)
    AutoProcessor.from_pretrained(engine_checkpoint).tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_engine_cache_keys_on_the_models_content(engine_checkpoint, tmp_path):
    folder, cache = tmp_path / "lm", tmp_path / "cache"
    asks = [Request("Given a description of the image", max_tokens=6), Request("Is it red?", max_tokens=6)]
    first = LocalBackend(_text_lm(engine_checkpoint, folder, 0), max_new_tokens=6, cache_dir=cache)
    old = first.generate(asks)
    same = LocalBackend(folder, max_new_tokens=6, cache_dir=cache)
    assert [r.text for r in same.generate(asks)] == [r.text for r in old] and same.calls == 0  # same model: the cache answers
    changed = LocalBackend(_text_lm(engine_checkpoint, folder, 1), max_new_tokens=6, cache_dir=cache)  # new weights, same path
    new = changed.generate(asks)
    assert changed.calls == 2 and not any(r.cached for r in new) and new[0].key != old[0].key  # never the old model's answers


def _png(color=(200, 10, 10), size=(16, 16)) -> bytes:
    import io

    buf = io.BytesIO()
    PILImage.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_local_backend_bad_images_are_their_own_errors(engine_checkpoint, tmp_path):
    good = _png()
    truncated = _png((1, 2, 3), (64, 64))
    truncated = truncated[: len(truncated) // 2]
    ask = load_prompts().caption_prompt("landmark")
    backend = LocalBackend(engine_checkpoint, max_new_tokens=4, cache_dir=tmp_path / "cache", max_pixels=64 * 64)
    out = backend.generate([Request(ask, images=[good], max_tokens=4), Request(ask, images=[truncated], max_tokens=4),
                            Request(ask, images=[b"not an image"], max_tokens=4),
                            Request(ask, images=[{"bytes": None, "path": str(tmp_path / "missing.png")}], max_tokens=4),
                            Request(ask, images=[_png(size=(65, 64))], max_tokens=4)])
    assert out[0].error == "" and [r.error for r in out[1:]] == ["image_error"] * 4
    assert all(r.error_detail.startswith("image_error: ") for r in out[1:]) and "max_pixels" in out[4].error_detail
    assert len(RequestCache(tmp_path / "cache")) == 1  # errors are not cached
    # In the engine: the truncated image's rows are rejected, the others go on.
    feats = Features({"id": Value("string"), "images": List(Image()), "domain": Value("string")})
    images = Dataset.from_dict({"id": ["ok", "bad"], "images": [[{"bytes": good, "path": None}], [{"bytes": truncated, "path": None}]],
                                "domain": ["landmark", "landmark"]}, features=feats)
    engine = Engine(EchoBackend(lambda r: scripted(r.prompt, False)), caption_backend=backend, max_attempts=2)
    result = engine.run(images, types=["short_vqa"], n_questions=2, n_long=1)
    rejected = result.rejected.select_columns(["id", "reject_reason", "reject_detail"])
    bad = [r for r in rejected if r["id"].startswith("bad")]
    assert len(bad) == 1 + 2 + 1 and {r["reject_reason"] for r in bad} == {"caption_failed"}
    assert [r["reject_detail"] for r in bad if r["id"] == "bad-caption"] == ["image_error: OSError: image file is truncated"]
    assert not any(r["id"].startswith("ok") and r["reject_reason"] == "caption_failed" for r in rejected)


def test_local_backend_retries_a_failed_batch_one_request_at_a_time(engine_checkpoint, tmp_path):
    folder = _text_lm(engine_checkpoint, tmp_path / "lm", 0)
    asks = [Request(p, max_tokens=4) for p in ("Is it red?", "POISON is here", "Given a description of the image")]
    clean = LocalBackend(folder, max_new_tokens=4, batch_size=4).generate(asks)
    backend = LocalBackend(folder, max_new_tokens=4, batch_size=4)
    _, model, tokenizer = backend._load()
    generate = model.generate

    def faulty(*args, **kw):  # a fault inside the model: any batch (out of memory), and one poisoned request
        ids = kw["input_ids"]
        if ids.shape[0] > 1:
            raise RuntimeError("CUDA out of memory (injected)")
        if "POISON" in tokenizer.decode(ids[0]):
            raise RuntimeError("injected failure")
        return generate(*args, **kw)

    model.generate = faulty
    out = backend.generate(asks)
    assert [r.error for r in out] == ["", "model_error", ""] and "injected failure" in out[1].error_detail
    assert [out[0].text, out[2].text] == [clean[0].text, clean[2].text]  # alone, the same greedy answers


def test_cli_engine_cost_and_tag(tmp_path, capsys):
    from hf_vitcurate.cli import main

    ledger = Ledger(path=tmp_path / "ledger.jsonl")
    from hf_vitcurate.engine.backends import Response

    ledger.add("caption", "a", Response(prompt_tokens=85, completion_tokens=267, model="gpt-4-1106-vision-preview"))
    ledger.add("questions", "a-judgement", Response(prompt_tokens=600, completion_tokens=300, model=GPT35))
    assert main(["engine", "cost", str(tmp_path / "ledger.jsonl"), "--n-images", "1", "--n-instructions", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["measured"]["per_image_usd"] == pytest.approx(0.00886, abs=1e-5)
    assert report["measured"]["per_instruction_usd"] == pytest.approx(0.0004)
    rows = Dataset.from_dict({"id": ["a"], "images": [[]], "source": ["s"], "task": ["vqa"],
                              "conversations": [[{"from": "human", "value": "What brand is the car?"}, {"from": "gpt", "value": "Fiat"}]]})
    rows.save_to_disk(str(tmp_path / "rows"))
    assert main(["engine", "tag", str(tmp_path / "rows"), "--output", str(tmp_path / "tagged")]) == 0
    tagged = datasets.load_from_disk(str(tmp_path / "tagged"))
    assert tagged[0]["domain"] == "brand_recognition" and tagged[0]["instruction_type"] == "short_vqa"


# ---------------------------------------------------------------- parser fidelity (issue 18)


def test_parser_article_is_not_option_a_and_recoverable_answers():
    def mc(answer, options="A. Pear B. Banana C. Plum D. Kiwi"):
        got = engine_parser.parse(f"<Q1> Which fruit? </Q1> <C1> {options} </C1> <A1> {answer} </A1>", "multiple_choice", n=1)
        return got.items[0]

    for article in ["A red apple", "A dog is sleeping on the sofa", "a pear or a plum", "B or C"]:
        assert mc(article).reject_reason == "not_one_right_option", article
    for answer in ["A", "b", "Answer: C", "(C)", "C. Plum", "D) Kiwi", "The answer is B.", "A Pear", "Kiwi"]:
        assert mc(answer).ok, answer
    assert mc("A. Banana").reject_reason == "not_one_right_option"  # the letter and the text name two options
    # (A)-style options, option text with abbreviations or a trailing letter stays one option each.
    item = mc("(B)", "(A) Pear (B) Banana (C) Plum (D) Kiwi")
    assert item.ok and item.options == ["A. Pear", "B. Banana", "C. Plum", "D. Kiwi"]
    item = mc("B", "A. U.S. B. Vitamin C. C. Iron D. Zinc")
    assert item.ok and item.options == ["A. U.S.", "B. Vitamin C.", "C. Iron", "D. Zinc"]
    item = mc("D", "A. Iron B. Zinc C. Copper D. Vitamin C.")
    assert item.ok and item.options[3] == "D. Vitamin C."
    assert mc("A", "A. Pear B. Banana C. Plum D. Kiwi E. Fig").reject_reason == "not_one_right_option"
    assert mc("B", "A. Vitamin B. B. Iron C. Zinc D. Copper").options[0] == "A. Vitamin B."  # "B. B." is one reading
    assert mc("B", "A. Pear B. Fig B. Banana C. Plum D. Kiwi").reject_reason == "not_one_right_option"  # two readings
    item = mc("B", "A. Vitamin B.\nB. Iron\nC. Zinc\nD. Copper")  # one option a line: one reading
    assert mc("B", "A. x " + "B. y C. z " * 200).reject_reason == "not_one_right_option"  # no clear reading
    assert item.ok and item.options[0] == "A. Vitamin B."
    # Lowercase or spaced tags; JSON after a preamble line; lettered JSON options in any style.
    got = engine_parser.parse("<q1> Which fruit? </q1> < C1 > A. Pear B. Banana C. Plum D. Kiwi </ C1 > <a1> c </a1>", "multiple_choice", n=1)
    assert got.ok and got.items[0].options[2] == "C. Plum"
    text = 'Here are the questions:\n[{"question": "Which?", "options": ["(A) red", "(B) blue", "(C) green", "(D) pink"], "answer": "(B)"}]'
    got = engine_parser.parse(text, "multiple_choice", n=1)
    assert got.ok and got.items[0].options[1] == "B. blue"
    got = engine_parser.parse('Sure.\n```json\n[{"question": "Is it red?", "answer": "Yes"}]\n```\nDone.', "judgement", n=1)
    assert got.ok and got.items[0].question == "Is it red?"


def test_ledger_counts_what_was_paid_for_identical_requests_in_one_batch():
    from hf_vitcurate.engine.request import Response

    def resp(cached=False):
        return Response(prompt_tokens=85, completion_tokens=267, model="gpt-4-1106-vision-preview", key="same", cached=cached)

    ledger = Ledger()
    one = ledger.add("caption", "img-1", resp())
    ledger.add("caption", "img-2", resp())  # the same request twice in a batch: generated and paid twice
    total = ledger.summary()["total"]
    assert total["paid_usd"] == pytest.approx(2 * one) and total["cost_usd"] == pytest.approx(2 * one)
    assert total["prompt_tokens"] == 2 * 85
    assert cost_report(ledger.records, n_images=2, n_instructions=0)["measured"]["caption_usd"] == pytest.approx(2 * one)
    ledger.add("caption", "img-1", resp(cached=True))  # a rerun served from the cache adds nothing
    assert ledger.summary()["total"]["cost_usd"] == pytest.approx(2 * one)
    earlier = Ledger()  # a cache filled by an earlier run whose records are not here: its cost counts once
    earlier.add("caption", "img-1", resp(cached=True))
    earlier.add("caption", "img-2", resp(cached=True))
    assert earlier.summary()["total"]["cost_usd"] == pytest.approx(one) and earlier.summary()["total"]["paid_usd"] == 0


def test_empty_seed_file_warns_and_users_give_seeds(tmp_path, caplog, capsys):
    images = make_images(["plain"] * 4).select([0, 3])  # landmark, attribute_recognition (published empty)
    engine = Engine(EchoBackend(lambda r: scripted(r.prompt, bool(r.images))), max_attempts=1)
    captioned = engine.caption(images)
    with caplog.at_level("WARNING", logger="hf_vitcurate.engine.seeds"):
        calls = engine.plan(captioned, types=["judgement", "short_vqa"])
        engine.plan(captioned, types=["judgement", "short_vqa"])
    kinds = dict(zip(calls["id"], calls["prompt_kind"]))
    assert kinds["img3-judgement"] == "no_seed" and kinds["img0-judgement"] == "with_seed"
    warned = [r.getMessage() for r in caplog.records if "no seed questions" in r.getMessage()]
    assert len(warned) == 2 and all("attribute_recognition" in m for m in warned)  # once per (domain, type)
    kept, rejected = engine.instructions(captioned, types=["judgement"], long_vqa=False, captions=False)
    params = provenance.steps(kept)[-1]["params"]
    assert params["no_seed_fallbacks"] == ["attribute_recognition/judgement", "attribute_recognition/short_vqa"]
    # Users' seeds: a mapping, or files in the published layout (a folder, or DOMAIN=FILE on the CLI).
    mine = Engine(EchoBackend(lambda r: scripted(r.prompt, bool(r.images))),
                  seeds={"attribute_recognition": {"judge": ["Is the <object> red?"], "short_vqa": ["What colour is it?"]}})
    calls = mine.plan(captioned, types=["judgement", "short_vqa"])
    assert set(calls["prompt_kind"]) == {"with_seed"} and mine.seeds.fallback_list() == []
    assert calls.filter(lambda c: c["id"] == "img3-judgement")["seed_questions"] == [["Is the <object> red?"]]
    assert mine.seeds.questions("landmark", "judgement") == engine.seeds.questions("landmark", "judgement")
    assert mine.params()["seeds"] != engine.params()["seeds"]
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "00007_attribute_recognition.json").write_text(json.dumps({"judge": {"English": ["Is it round?"]}}))
    folder = Engine(EchoBackend(lambda r: ""), seeds=tmp_path / "seeds")
    assert folder.seeds.questions("attribute_recognition", "judgement") == ["Is it round?"]
    with pytest.raises(ValueError, match=r"seeds\['ocr'\]\['guess'\]"):
        Engine(EchoBackend(lambda r: ""), seeds={"ocr": {"guess": ["?"]}})
    from hf_vitcurate.commands.engine import _seeds_arg

    path = str(tmp_path / "seeds" / "00007_attribute_recognition.json")
    assert _seeds_arg([f"attribute_recognition={path}"]) == {"attribute_recognition": path}
    assert _seeds_arg([str(tmp_path / "seeds")]) == str(tmp_path / "seeds")
    bank = Engine(EchoBackend(lambda r: ""), seeds=_seeds_arg([f"attribute_recognition={path}"])).seeds
    assert bank.questions("attribute_recognition", "judgement") == ["Is it round?"]


# ---------------------------------------------------------------- review import cost


def _review_calls_in_datasets(tmp_path, n: int, fn=import_review) -> int:
    """Python calls inside datasets/pickle/dill (fingerprint hashing, casting) for a review of ``n`` rows."""
    import cProfile
    import pstats

    turn = [{"from": "human", "value": "<image>\nIs it red? Please answer yes or no."}, {"from": "gpt", "value": "Yes"}]
    ds = Dataset.from_dict({"id": [f"r{i}" for i in range(n)], "instruction_type": ["judgement"] * n,
                            "conversations": [turn] * n})
    path = tmp_path / f"review{n}.jsonl"
    decisions = ["accept", "reject", "", "edit"]
    path.write_text("".join(json.dumps({"id": f"r{i}", "decision": decisions[i % 4], "reviewer": "a", "reason": "x",
                                        "answer": "No"}) + "\n" for i in range(n)))
    prof = cProfile.Profile()
    kept, rejected = prof.runcall(fn, ds, path)
    assert (len(kept), len(rejected)) == (n - n // 4, n // 4)
    assert set(kept["review_decision"][:]) == {"accept", "pending", "edit"} and kept[2]["id"] == "r3" and kept[2]["conversations"][1]["value"] == "No"
    stats = pstats.Stats(prof).stats
    library = ("/datasets/", "pickle.py", "/dill/")
    return sum(calls for (file, _, _), (_, calls, *_) in stats.items() if any(part in file for part in library))


def test_review_import_does_no_per_row_work_in_datasets(tmp_path):
    """Import builds its columns in Arrow: the work inside datasets (hashing, casting) does not grow with rows."""
    small, large = _review_calls_in_datasets(tmp_path, 200), _review_calls_in_datasets(tmp_path, 2000)
    assert large <= small + 50, (small, large)
