"""The MMInstruct data engine (papers/004 §3.2-3.5, SPEC §4), each step a ``datasets.map``.

(b) :meth:`Engine.caption`: one call per image with Table 5's prompt (the universal
    prompt + the domain's special requirement), on an image-text backend;
(c) :meth:`Engine.plan`: one call per image and instruction type, N = 3 seed questions of
    the domain drawn per call (keyed by image, so reruns build identical prompts), the
    Table 7 "with seed" prompt, or "no seed" where the domain has none;
(d) :meth:`Engine.generate`: 3 questions of one type per call, answers generated with the
    questions, on a text backend; every item parsed and checked (:mod:`.parser`), answers
    checked for leaking the caption (``stages.cleanup.leakage``); a call with a broken or
    missing item is regenerated (``attempt`` + 1, sampled at ``retry_temperature``) up to
    ``max_attempts``, then its broken items are dropped with their reason;
(e) :meth:`Engine.plan_long_vqa`: 5 linked questions per call (one multi-turn row, domain
    ``multi_round_long_vqa``); the linked questions stand or fall together: fewer than 5
    good pairs or a leak anywhere regenerates, then rejects, the whole conversation.

Output rows follow the canonical schema plus ``domain``, ``instruction_type``,
``caption``, ``engine_call``, ``engine_attempts``, ``prompt_tokens``,
``completion_tokens`` and ``cost_usd`` (a row's share of its call's tokens and cost, all
attempts included, so the rows' costs add up to the ledger's). Rejected rows have
``reject_reason``, ``reject_detail`` and ``raw_output``. For every step *rows requested
= rows kept + rows rejected*: a call for 3 questions is 3 rows, one way or the other.

Input: a ``Dataset`` of images with ``id``, ``images`` (a list of images; ``image`` is
accepted) and ``domain`` (or ``domain=`` for all rows); optional ``image_tag`` (related
information, Table 5's <Image Tag>) and ``ocr_text``.

Example:
    >>> from hf_vitcurate.engine import Engine, EchoBackend          # doctest: +SKIP
    >>> result = Engine(text_backend, caption_backend=vision_backend).run(images, domain="landmark")  # doctest: +SKIP
    >>> result.kept, result.rejected, result.ledger.summary()["total"]["cost_usd"]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, Features, List, Value, concatenate_datasets

from .. import provenance
from ..columns import list_column
from ..formats.common import add_placeholders
from ..schema import FEATURES
from .backends import Backend, Request, Response
from .ledger import Ledger
from .parser import Item, Parsed, failed, parse
from .prompts import Prompts, instruction, load_prompts, suffix_for
from .seeds import SeedBank, load_end_prompts
from .taxonomy import CAPTION, MULTI_ROUND, TYPES, Taxonomy, as_taxonomy

logger = logging.getLogger(__name__)

MULTI = "multi_round"  # the call kind of step (e); its rows are long_vqa rows of domain MULTI_ROUND
ENGINE_FEATURES = {
    "domain": Value("string"),
    "instruction_type": Value("string"),
    "caption": Value("string"),
    "engine_call": Value("string"),
    "engine_attempts": Value("int32"),
    "prompt_tokens": Value("float64"),
    "completion_tokens": Value("float64"),
    "cost_usd": Value("float64"),
}
REJECT_FEATURES = {"reject_reason": Value("string"), "reject_detail": Value("string"), "raw_output": Value("string")}
ROW_FEATURES = Features({**FEATURES, **ENGINE_FEATURES})
REJECTED_FEATURES = Features({**FEATURES, **ENGINE_FEATURES, **REJECT_FEATURES})
_TEXT_COLUMNS = ["id", "domain", "image_tag", "ocr_text", "caption", "caption_ok", "n_images"]


@dataclass
class _CallState:
    """Book-keeping of one call across attempts: the best parse so far and what all attempts cost."""

    attempts: int = 0
    cost: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    best: Parsed | None = None
    raw: str = ""

    def update(self, parsed: Parsed, raw: str) -> None:
        # Keep the attempt with most good items; on a tie, the later one.
        if self.best is None or parsed.n_ok >= self.best.n_ok:
            self.best, self.raw = parsed, raw


@dataclass
class EngineResult:
    """Kept rows, rejected rows (with reasons), captioned images and the call ledger of a run."""

    kept: Dataset
    rejected: Dataset
    captioned: Dataset
    ledger: Ledger

    def instructions(self) -> int:
        """QA pairs kept, captions excluded (what Table 2 calls instructions)."""
        if not len(self.kept):
            return 0
        types = list_column(self.kept, "instruction_type")
        convs = list_column(self.kept, "conversations")
        return sum(sum(t["from"] == "gpt" for t in c) for c, k in zip(convs, types) if k != CAPTION)

    def counts(self) -> dict[str, Any]:
        """Rows kept/rejected, by reason, by type and by domain."""
        rej = Counter(list_column(self.rejected, "reject_reason")) if len(self.rejected) else Counter()
        kept_types = Counter(list_column(self.kept, "instruction_type")) if len(self.kept) else Counter()
        kept_domains = Counter(list_column(self.kept, "domain")) if len(self.kept) else Counter()
        return {"rows_in": len(self.kept) + len(self.rejected), "kept": len(self.kept), "rejected": len(self.rejected),
                "rejected_by_reason": dict(rej), "kept_by_type": dict(kept_types), "kept_by_domain": dict(kept_domains),
                "images": len(self.captioned), "instructions": self.instructions()}


class Engine:
    """The data engine: backends, prompts, seeds and settings shared by the steps.

    Args:
        backend: text backend for steps (d) and (e) (GPT-3.5 in the paper).
        caption_backend: image-text backend for step (b) (GPT-4V); default ``backend``.
        prompts: :class:`~.prompts.Prompts` (default the packaged templates).
        seeds: :class:`~.seeds.SeedBank` (default the packaged English seeds).
        taxonomy: a :class:`~.taxonomy.Taxonomy` or YAML path (default packaged).
        ledger: where calls are recorded (default a new in-memory :class:`~.ledger.Ledger`).
        output: ``"tags"`` or ``"json"``, the format the prompts ask for (both are parsed).
        suffixes: ``"spec"`` (SPEC §4 indicator sentences) or ``"end_prompt"`` (the published ones).
        max_attempts: calls per request at most (first try + regenerations).
        retry_temperature: sampling temperature of regenerations (the first try is greedy).
        batch_size: calls handed to the backend at once (the HTTP backend runs them concurrently).
        seed: seed of the seed-question draws.
        leak_phrases: phrases that reject an answer (``stages.cleanup.leakage``); ``()`` disables.
        caption_max_tokens, max_tokens: generation limits per call.
        shard_dir: run each round of calls with :func:`hf_vitcurate.distributed.run_sharded`
            (chunks of ``batch_size`` calls split across the processes of ``accelerate
            launch``, finished chunks kept in ``shard_dir`` and skipped by a rerun); for a
            local model on several GPUs. Default: one process, ``Dataset.map``.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        caption_backend: Backend | None = None,
        prompts: Prompts | None = None,
        seeds: SeedBank | None = None,
        taxonomy: Taxonomy | str | None = None,
        ledger: Ledger | None = None,
        output: str = "tags",
        suffixes: str = "spec",
        max_attempts: int = 3,
        retry_temperature: float = 0.7,
        batch_size: int = 32,
        seed: int = 0,
        leak_phrases: Sequence[str] | None = None,
        caption_max_tokens: int = 512,
        max_tokens: int = 1024,
        shard_dir: str | None = None,
    ):
        from ..stages.cleanup import DEFAULT_LEAK_PHRASES

        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.backend = backend
        self.caption_backend = caption_backend or backend
        self.taxonomy = as_taxonomy(taxonomy)
        self.prompts = prompts or load_prompts(taxonomy=self.taxonomy)
        self.seeds = seeds or SeedBank.load(taxonomy=self.taxonomy)
        self.ledger = ledger if ledger is not None else Ledger()
        self.output = output
        self.suffixes = suffixes
        self.end_prompts = load_end_prompts() if suffixes == "end_prompt" else {}
        suffix_for("judgement", suffixes, self.end_prompts)  # fail early on a bad style
        self.max_attempts = max_attempts
        self.retry_temperature = retry_temperature
        self.batch_size = batch_size
        self.seed = seed
        self.leak_phrases = tuple(DEFAULT_LEAK_PHRASES if leak_phrases is None else leak_phrases)
        self.caption_max_tokens = caption_max_tokens
        self.max_tokens = max_tokens
        self.shard_dir = shard_dir

    # ------------------------------------------------------------------ inputs

    def prepare(self, images: Dataset, domain: str | None = None) -> Dataset:
        """Images with ``id``, ``images``, ``domain`` (canonical keys), ``image_tag``, ``ocr_text``."""
        if "id" not in images.column_names:
            raise ValueError(f"images need an 'id' column; have {images.column_names}")
        if "images" not in images.column_names:
            if "image" not in images.column_names:
                raise ValueError(f"images need an 'images' (list) or 'image' column; have {images.column_names}")
            from datasets import Image

            images = images.map(lambda r: {"images": [r["image"]]}, remove_columns=["image"])
            images = images.cast_column("images", List(Image()))
        if domain is not None:
            key = self.taxonomy.key(domain)
            images = images.remove_columns([c for c in ("domain",) if c in images.column_names])
            images = images.add_column("domain", [key] * len(images))
        elif "domain" not in images.column_names:
            raise ValueError("images have no 'domain' column: pass domain=")
        else:
            keys = {d: self.taxonomy.key(d) for d in set(list_column(images, "domain"))}
            if any(k != v for k, v in keys.items()):
                images = images.map(lambda b: {"domain": [keys[d] for d in b]}, input_columns="domain", batched=True)
        for col in ("image_tag", "ocr_text"):
            if col not in images.column_names:
                images = images.add_column(col, [""] * len(images))
        return images

    # ------------------------------------------------------------------ (b) captions

    def caption(self, images: Dataset, domain: str | None = None) -> Dataset:
        """Step (b): add ``caption`` (``""`` when it failed), ``caption_ok``, ``caption_reject_reason``,
        ``caption_attempts``, ``caption_prompt_tokens``, ``caption_completion_tokens``, ``caption_cost_usd``."""
        images = self.prepare(images, domain)
        prompts = [self.prompts.caption_prompt(d, t, o) for d, t, o in
                   zip(list_column(images, "domain"), list_column(images, "image_tag"), list_column(images, "ocr_text"))]
        calls = images.add_column("prompt", prompts)
        ids = list_column(images, "id")
        states = {i: _CallState() for i in ids}
        texts = {i: "" for i in ids}
        reasons = {i: ("caption_failed", "not generated") for i in ids}
        todo = list(range(len(images)))
        for attempt in range(self.max_attempts):
            if not todo:
                break
            responses = self._call(calls.select(todo), "caption", attempt, self.caption_backend,
                                   lambda row: Request(row["prompt"], images=list(row["images"][:1]),
                                                       max_tokens=self.caption_max_tokens))
            nxt = []
            for idx, resp in zip(todo, responses):
                cid = ids[idx]
                st = states[cid]
                st.attempts += 1
                st.cost += resp["cost_usd"]
                st.prompt_tokens += resp["prompt_tokens"]
                st.completion_tokens += resp["completion_tokens"]
                text = (resp["text"] or "").strip()
                if not resp["error"] and text:
                    texts[cid], reasons[cid] = text, ("", "")
                else:
                    reasons[cid] = ("caption_failed", resp["error_detail"] or resp["error"] or "empty caption")
                    nxt.append(idx)
            todo = nxt
        out = images
        for name, values, feature in (
            ("caption", [texts[i] for i in ids], Value("string")),
            ("caption_ok", [not reasons[i][0] for i in ids], Value("bool")),
            ("caption_reject_reason", [reasons[i][0] for i in ids], Value("string")),
            ("caption_reject_detail", [reasons[i][1] for i in ids], Value("string")),
            ("caption_attempts", [states[i].attempts for i in ids], Value("int32")),
            ("caption_prompt_tokens", [states[i].prompt_tokens for i in ids], Value("int64")),
            ("caption_completion_tokens", [states[i].completion_tokens for i in ids], Value("int64")),
            ("caption_cost_usd", [states[i].cost for i in ids], Value("float64")),
        ):
            out = out.remove_columns([name]) if name in out.column_names else out
            out = out.add_column(name, values, feature=feature)
        failed_n = sum(1 for i in ids if reasons[i][0])
        return provenance.record(
            out, "mminstruct_caption", kind="engine", rows_in=len(images), rows_out=len(images),
            rejected={"caption_failed": failed_n} if failed_n else {}, model=self.caption_backend.model,
            params={"max_attempts": self.max_attempts, "max_tokens": self.caption_max_tokens, "prompt": "caption"},
            parent=images,
        )

    def caption_rows(self, captioned: Dataset) -> tuple[Dataset, Dataset]:
        """Captions as canonical rows (``instruction_type == "caption"``): ``(kept, rejected)``."""
        n = len(captioned)
        cols = {c: list_column(captioned, c) for c in ("id", "domain", "caption", "caption_ok", "caption_reject_reason",
                                                       "caption_reject_detail", "caption_attempts", "caption_prompt_tokens",
                                                       "caption_completion_tokens", "caption_cost_usd")}
        n_img = [len(x) for x in list_column(captioned, "images")] if n else []
        rows = []
        for k in range(n):
            human = add_placeholders([{"from": "human", "value": self.taxonomy.caption_instruction},
                                      {"from": "gpt", "value": cols["caption"][k]}], n_img[k])
            rows.append({
                "_image": k, "id": f"{cols['id'][k]}-caption", "conversations": human if cols["caption_ok"][k] else [],
                "source": "mminstruct_engine", "task": CAPTION, "domain": cols["domain"][k], "instruction_type": CAPTION,
                "caption": cols["caption"][k], "engine_call": f"{cols['id'][k]}-caption", "engine_attempts": cols["caption_attempts"][k],
                "prompt_tokens": float(cols["caption_prompt_tokens"][k]), "completion_tokens": float(cols["caption_completion_tokens"][k]),
                "cost_usd": cols["caption_cost_usd"][k], "reject_reason": cols["caption_reject_reason"][k],
                "reject_detail": cols["caption_reject_detail"][k], "raw_output": "",
            })
        return self._finish(rows, captioned, "mminstruct_caption_rows", {"rows": "caption"}, self.caption_backend.model)

    # ------------------------------------------------------------------ (c) plan: seeds and prompts

    def plan(self, captioned: Dataset, types: Sequence[str] = TYPES, n_questions: int = 3, n_seeds: int = 3) -> Dataset:
        """Step (c): one call per image and type, with its seed questions and prompt (a ``datasets.map``)."""
        kinds = [t for t in types]
        bad = [t for t in kinds if t not in TYPES]
        if bad:
            raise ValueError(f"unknown instruction type(s) {bad}; known: {list(TYPES)}")

        def explode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            out: dict[str, list] = {k: [] for k in _CALL_COLUMNS}
            for j, idx in enumerate(indices):
                image_id, dom = batch["id"][j], batch["domain"][j]
                for kind in kinds:
                    no_seed = dom in self.taxonomy.no_seed_domains
                    seeds = [] if no_seed else self.seeds.pick(dom, kind, n_seeds, seed=self.seed, key=image_id)
                    prompt = self.prompts.questions(dom, kind, caption=batch["caption"][j], seeds=seeds, n=n_questions,
                                                    ocr_text=batch["ocr_text"][j], output=self.output)
                    _add_call(out, f"{image_id}-{kind}", image_id, idx, dom, kind, n_questions, prompt, seeds,
                              "with_seed" if seeds else "no_seed", batch, j)
            return out

        return self._plan_map(captioned, explode, "plan questions")

    def plan_long_vqa(self, captioned: Dataset, n_questions: int = 5) -> Dataset:
        """Step (e)'s calls: one per image, ``n_questions`` linked questions (Table 7 "Multi-Round")."""

        def explode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            out: dict[str, list] = {k: [] for k in _CALL_COLUMNS}
            for j, idx in enumerate(indices):
                prompt = self.prompts.multi_round_prompt(caption=batch["caption"][j], n=n_questions,
                                                         ocr_text=batch["ocr_text"][j], output=self.output)
                _add_call(out, f"{batch['id'][j]}-{MULTI}", batch["id"][j], idx, MULTI_ROUND, MULTI, n_questions,
                          prompt, [], "multi_round", batch, j)
            return out

        return self._plan_map(captioned, explode, "plan long VQA")

    def _plan_map(self, captioned: Dataset, explode, desc: str) -> Dataset:
        if "caption" not in captioned.column_names:
            raise ValueError("plan needs captioned images: run Engine.caption first")
        text = captioned.select_columns([c for c in _TEXT_COLUMNS if c in captioned.column_names and c != "n_images"])
        captions = list_column(captioned, "caption")
        defaults = {"image_tag": [""] * len(text), "ocr_text": [""] * len(text),
                    "caption_ok": [bool(c and c.strip()) for c in captions]}  # a caption from elsewhere
        for name, values in defaults.items():
            if name not in text.column_names:
                text = text.add_column(name, values)
        text = text.add_column("n_images", [len(x) for x in list_column(captioned, "images")])
        features = Features({**{k: Value("string") for k in _CALL_COLUMNS}, "_image": Value("int64"), "n": Value("int32"),
                             "seed_questions": List(Value("string")), "caption_ok": Value("bool"), "n_images": Value("int32")})
        return text.map(explode, batched=True, with_indices=True, remove_columns=text.column_names, features=features,
                        desc=desc, new_fingerprint=_fingerprint(captioned, desc, self._params()), load_from_cache_file=False)

    # ------------------------------------------------------------------ (d)/(e) generate, check, regenerate

    def generate(self, calls: Dataset) -> tuple[Dataset, Dataset]:
        """Steps (d)/(e): run the planned calls, parse, check, regenerate; return ``(kept, rejected)`` rows."""
        cols = {c: list_column(calls, c) for c in ("id", "instruction_type", "n", "caption_ok", "caption")}
        states = [_CallState() for _ in range(len(calls))]
        todo = []
        for k in range(len(calls)):
            if cols["caption_ok"][k]:
                todo.append(k)
            else:  # nothing to generate from: every requested row is rejected, nothing is paid
                states[k].best = failed("caption_failed", "the image has no caption", _rows_of(cols, k))
        for attempt in range(self.max_attempts):
            if not todo:
                break
            step = "long_vqa" if cols["instruction_type"][todo[0]] == MULTI else "questions"
            responses = self._call(calls.select(todo), step, attempt, self.backend,
                                   lambda row: Request(row["prompt"], max_tokens=self.max_tokens))
            parsed = {}
            for k, resp in zip(todo, responses):
                st = states[k]
                st.attempts += 1
                st.cost += resp["cost_usd"]
                st.prompt_tokens += resp["prompt_tokens"]
                st.completion_tokens += resp["completion_tokens"]
                kind, n = cols["instruction_type"][k], cols["n"][k]
                if resp["error"] == "bad_response":
                    p = failed("bad_response", resp["error_detail"], n)
                elif resp["error"]:
                    p = failed("request_failed", resp["error_detail"] or resp["error"], n)
                else:
                    p = parse(resp["text"], "long_vqa" if kind == MULTI else kind, n)
                parsed[k] = (p, resp["text"] or "")
            self._check_answers(parsed, cols)
            nxt = []
            for k, (p, raw) in parsed.items():
                states[k].update(p, raw)
                if not states[k].best.ok:
                    nxt.append(k)
            todo = nxt
        rows = self._rows(calls, cols, states)
        kinds = sorted(set(cols["instruction_type"]))
        params = {**self._params(), "types": kinds}
        return self._finish(rows, calls, "mminstruct_generate", params, self.backend.model)

    def questions(self, captioned: Dataset, types: Sequence[str] = TYPES, n_questions: int = 3, n_seeds: int = 3) -> tuple[Dataset, Dataset]:
        """Steps (c)+(d): plan and generate ``n_questions`` questions per type per image."""
        return self.attach_images(self.generate(self.plan(captioned, types, n_questions, n_seeds)), captioned)

    def long_vqa(self, captioned: Dataset, n_questions: int = 5) -> tuple[Dataset, Dataset]:
        """Step (e): one multi-round long VQA row of ``n_questions`` linked QA pairs per image."""
        return self.attach_images(self.generate(self.plan_long_vqa(captioned, n_questions)), captioned)

    def instructions(
        self,
        captioned: Dataset,
        *,
        types: Sequence[str] = TYPES,
        n_questions: int = 3,
        n_seeds: int = 3,
        long_vqa: bool = True,
        n_long: int = 5,
        captions: bool = True,
    ) -> tuple[Dataset, Dataset]:
        """Steps (c)-(e) on captioned images, plus caption rows: ``(kept, rejected)`` with images."""
        parts = [self.caption_rows(captioned)] if captions else []
        parts.append(self.generate(self.plan(captioned, types, n_questions, n_seeds)))
        if long_vqa:
            parts.append(self.generate(self.plan_long_vqa(captioned, n_long)))
        kept = _concat([p[0] for p in parts], ROW_FEATURES)
        rejected = _concat([p[1] for p in parts], REJECTED_FEATURES)
        kept, rejected = self.attach_images((kept, rejected), captioned)
        counts = Counter(list_column(rejected, "reject_reason")) if len(rejected) else Counter()
        params = {**self._params(), "types": list(types), "n_questions": n_questions, "n_seeds": n_seeds,
                  "long_vqa": long_vqa, "n_long": n_long, "captions": captions}
        model = f"caption: {self.caption_backend.model}; questions: {self.backend.model}"
        rows_in = len(kept) + len(rejected)
        kept = provenance.record(kept, "mminstruct_engine", kind="engine", rows_in=rows_in, rejected=dict(counts),
                                 params=params, model=model, seed=self.seed, parent=captioned)
        rejected = provenance.record(rejected, "mminstruct_engine", kind="engine", rows_in=rows_in, rejected=dict(counts),
                                     params=params, model=model, seed=self.seed, parent=captioned)
        return kept, rejected

    def run(self, images: Dataset, *, domain: str | None = None, **options: Any) -> EngineResult:
        """All steps: caption, then :meth:`instructions` (same keyword options)."""
        captioned = self.caption(images, domain)
        kept, rejected = self.instructions(captioned, **options)
        return EngineResult(kept, rejected, captioned, self.ledger)

    # ------------------------------------------------------------------ internals

    def _params(self) -> dict[str, Any]:
        return {"output": self.output, "suffixes": self.suffixes, "max_attempts": self.max_attempts,
                "retry_temperature": self.retry_temperature, "seed": self.seed, "leak_phrases": list(self.leak_phrases),
                "caption_backend": self.caption_backend.model, "backend": self.backend.model,
                "prompts": hashlib.sha256(json.dumps([getattr(self.prompts, n) for n in
                                                      ("caption", "with_seed", "no_seed", "multi_round", "format_tags", "format_json")]).encode()).hexdigest()[:12]}

    def _call(self, ds: Dataset, step: str, attempt: int, backend: Backend, make_request) -> list[dict[str, Any]]:
        """One round of calls as a ``datasets.map``: responses (and ledger records) in row order."""
        temperature = 0.0 if attempt == 0 else self.retry_temperature

        def run(batch: dict[str, list]) -> dict[str, list]:
            n = len(batch["id"])
            rows = [{k: batch[k][j] for k in batch} for j in range(n)]
            reqs = []
            for row in rows:
                r = make_request(row)
                r.attempt, r.temperature, r.meta = attempt, temperature, {"call": row["id"], "step": step}
                reqs.append(r)
            resps: list[Response] = backend.generate(reqs)
            costs = [self.ledger.add(step, row["id"], resp, attempt) for row, resp in zip(rows, resps)]
            return {"_text": [r.text for r in resps], "_error": [r.error for r in resps],
                    "_error_detail": [r.error_detail for r in resps], "_prompt_tokens": [r.prompt_tokens for r in resps],
                    "_completion_tokens": [r.completion_tokens for r in resps], "_cost_usd": costs}

        desc = f"{step} (attempt {attempt + 1})"
        if self.shard_dir:
            import os

            from ..distributed import run_sharded

            out = run_sharded(ds, run, os.path.join(self.shard_dir, f"{step}-attempt{attempt + 1}"), chunk_size=self.batch_size,
                              features=_RESPONSE_FEATURES, params={**self._params(), "step": step, "attempt": attempt},
                              desc=desc, overwrite=True)
        else:
            out = ds.map(run, batched=True, batch_size=self.batch_size, desc=desc,
                         new_fingerprint=_fingerprint(ds, f"{step}:{attempt}", self._params()), load_from_cache_file=False)
        cols = {k: list_column(out, "_" + k) for k in ("text", "error", "error_detail", "prompt_tokens", "completion_tokens", "cost_usd")}
        return [{k: cols[k][i] for k in cols} for i in range(len(out))]

    def _check_answers(self, parsed: dict[int, tuple[Parsed, str]], cols: dict[str, list]) -> None:
        """Reject items whose answers leak the caption (``stages.cleanup.leakage``, one pass per round).

        A linked conversation is checked as one row: a leak anywhere rejects all of it.
        """
        if not self.leak_phrases:
            return
        from ..stages.cleanup import leakage

        convs, where = [], []
        for k, (p, _) in parsed.items():
            groups = [p.items] if cols["instruction_type"][k] == MULTI else [[i] for i in p.items]
            for g in groups:
                good = [i for i in g if i.ok]
                if good:
                    convs.append([t for i in good for t in ({"from": "human", "value": i.question}, {"from": "gpt", "value": i.answer})])
                    where.append(good)
        if not convs:
            return
        ds = Dataset.from_dict({"id": [str(j) for j in range(len(convs))], "conversations": convs})
        for good, phrases in zip(where, list_column(leakage(ds, phrases=self.leak_phrases), "leakage_phrases")):
            if phrases:
                for i in good:
                    i.reject_reason, i.reject_detail = "leakage", f"answer mentions {phrases}"

    def _rows(self, calls: Dataset, cols: dict[str, list], states: list[_CallState]) -> list[dict[str, Any]]:
        """Final rows of every call: kept items and rejected items, the call's cost shared among them."""
        extra = {c: list_column(calls, c) for c in ("image_id", "_image", "domain", "n_images")}
        rows = []
        for k, st in enumerate(states):
            kind, cid = cols["instruction_type"][k], cols["id"][k]
            p = st.best
            base = {"_image": extra["_image"][k], "source": "mminstruct_engine", "domain": extra["domain"][k],
                    "caption": cols["caption"][k], "engine_call": cid, "engine_attempts": st.attempts, "raw_output": ""}
            if kind == MULTI:
                row = {**base, "id": f"{extra['image_id'][k]}-{MULTI}", "task": "long_vqa", "instruction_type": "long_vqa"}
                if p.ok:
                    turns = [t for i in p.items for t in self._pair(i, "long_vqa", f"{cid}-q{i.number}")]
                    row.update(conversations=add_placeholders(turns, extra["n_images"][k]), reject_reason="", reject_detail="")
                else:
                    bad = next(i for i in p.items if not i.ok)
                    row.update(conversations=[], reject_reason=bad.reject_reason, reject_detail=f"item {bad.number}: {bad.reject_detail}", raw_output=st.raw)
                group = [row]
            else:
                group = []
                for i in p.items:
                    row = {**base, "id": f"{cid}-q{i.number}", "task": kind, "instruction_type": kind}
                    if i.ok:
                        row.update(conversations=add_placeholders(self._pair(i, kind, row["id"]), extra["n_images"][k]),
                                   reject_reason="", reject_detail="")
                    else:
                        row.update(conversations=[], reject_reason=i.reject_reason, reject_detail=i.reject_detail, raw_output=st.raw)
                    group.append(row)
            # Each row carries its share of the call (all attempts): kept rows share it, or, when
            # none was kept, the rejected ones do; the rows' costs then add up to the ledger's.
            payers = [r for r in group if not r["reject_reason"]] or group
            for r in group:
                share = 1 / len(payers) if r in payers else 0.0
                r.update(cost_usd=st.cost * share, prompt_tokens=st.prompt_tokens * share,
                         completion_tokens=st.completion_tokens * share)
            rows += group
        return rows

    def _pair(self, item: Item, kind: str, key: str) -> list[dict[str, str]]:
        suffix = suffix_for(kind, self.suffixes, self.end_prompts, key)
        return [{"from": "human", "value": instruction(item.question, kind, item.options, suffix)},
                {"from": "gpt", "value": item.answer}]

    def _finish(self, rows: list[dict[str, Any]], parent: Dataset, name: str, params: dict, model: str) -> tuple[Dataset, Dataset]:
        """Split rows into kept and rejected datasets (without images yet: ``_image`` points at them)."""
        kept_rows = [r for r in rows if not r["reject_reason"]]
        rej_rows = [r for r in rows if r["reject_reason"]]
        text_feats = {k: v for k, v in ROW_FEATURES.items() if k != "images"}
        kept = _rows_dataset(kept_rows, Features({"_image": Value("int64"), **text_feats}))
        rejected = _rows_dataset(rej_rows, Features({"_image": Value("int64"), **text_feats, **REJECT_FEATURES}))
        counts = dict(Counter(r["reject_reason"] for r in rej_rows))
        kept = provenance.record(kept, name, kind="engine", rows_in=len(rows), rejected=counts, params=params, model=model, parent=parent)
        rejected = provenance.record(rejected, name, kind="engine", rows_in=len(rows), rejected=counts, params=params, model=model, parent=parent)
        return kept, rejected

    def attach_images(self, pair: tuple[Dataset, Dataset], captioned: Dataset) -> tuple[Dataset, Dataset]:
        """Attach each row's images (from ``captioned`` by ``_image``) and order columns canonically."""
        out = []
        for ds, feats in zip(pair, (ROW_FEATURES, REJECTED_FEATURES)):
            if "_image" not in ds.column_names:
                out.append(ds)
                continue
            idx = list_column(ds, "_image")
            if idx:
                imgs = captioned.select_columns(["images"]).select(idx)
                merged = concatenate_datasets([ds.remove_columns(["_image"]), imgs], axis=1)
                merged = merged.select_columns(list(feats)).cast(feats)
            else:
                merged = _empty(feats)
            out.append(provenance.with_steps(merged, provenance.steps(ds)))
        return out[0], out[1]


_RESPONSE_FEATURES = Features({"_text": Value("string"), "_error": Value("string"), "_error_detail": Value("string"),
                               "_prompt_tokens": Value("int64"), "_completion_tokens": Value("int64"), "_cost_usd": Value("float64")})
_CALL_COLUMNS = ("id", "image_id", "domain", "image_domain", "instruction_type", "prompt", "prompt_kind", "caption")


def _add_call(out, cid, image_id, idx, dom, kind, n, prompt, seeds, prompt_kind, batch, j) -> None:
    out.setdefault("_image", []).append(idx)
    out.setdefault("n", []).append(n)
    out.setdefault("seed_questions", []).append(list(seeds))
    out.setdefault("caption_ok", []).append(bool(batch["caption_ok"][j]))
    out.setdefault("n_images", []).append(batch["n_images"][j])
    for key, value in (("id", cid), ("image_id", image_id), ("domain", dom), ("image_domain", batch["domain"][j]),
                       ("instruction_type", kind), ("prompt", prompt), ("prompt_kind", prompt_kind), ("caption", batch["caption"][j])):
        out[key].append(value)


def _rows_of(cols: dict[str, list], k: int) -> int:
    return 1 if cols["instruction_type"][k] == MULTI else cols["n"][k]


def _fingerprint(ds: Dataset, step: str, params: dict[str, Any]) -> str:
    """New fingerprint for a map from its input and settings (hashing a closure over a model is slow)."""
    return hashlib.sha256(json.dumps([ds._fingerprint, step, params], sort_keys=True, default=str).encode()).hexdigest()[:32]


def _rows_dataset(rows: list[dict[str, Any]], features: Features) -> Dataset:
    return Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)


def _empty(features: Features) -> Dataset:
    return Dataset.from_dict({k: [] for k in features}, features=features)


def _concat(parts: list[Dataset], features: Features) -> Dataset:
    parts = [p for p in parts]
    if not parts:
        return _empty(features)
    out = concatenate_datasets(parts)
    return provenance.with_steps(out, provenance.merge(parts))


__all__ = ["MULTI", "REJECTED_FEATURES", "ROW_FEATURES", "Engine", "EngineResult"]
