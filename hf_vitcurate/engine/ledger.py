"""Tokens and money per call and per row, and the paper's cost comparison (MMInstruct, arXiv:2407.15838, Table 2, §3.6).

Prices are USD per 1,000 tokens per model (:class:`Price`), configurable with a YAML/JSON
file ``{model: {input_per_1k, output_per_1k, image_tokens}}``. The defaults are the list
prices of the two models the paper names, at the time it was written: with them a
200-word caption (about 267 tokens) of a 512×512 image sent at low detail (85 tokens)
costs 85 × 0.01/1000 + 267 × 0.03/1000 = $0.00885 with ``gpt-4-1106-vision-preview``,
Table 2's per-image figure; ``gpt-3.5-turbo-1106`` gives Table 2's $0.0004 per
instruction for a call of about 600 prompt and 300 answer tokens (3 instructions).
A model without a price costs 0 and is reported as unpriced (a local checkpoint).

:class:`Ledger` keeps one record per call (JSON lines when given a path). A response
served from the request cache is recorded with ``cached=True``: its ``cost_usd`` is
what it cost when made, its ``paid_usd`` is 0.
The summary and :func:`cost_report` count what was paid: every request made, identical
ones in one batch included (see :func:`summarize`).

Example:
    >>> ledger = Ledger()
    >>> from hf_vitcurate.engine.backends import Response
    >>> round(ledger.add("caption", "img-1", Response(prompt_tokens=85, completion_tokens=267, model="gpt-4-1106-vision-preview")), 5)
    0.00886
    >>> report = cost_report(ledger.records, n_images=1, n_instructions=0)
    >>> report["paper"]["engine_total_usd"], report["paper"]["manual_total_usd"]
    (128304.05, 817320.0)
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Price:
    """USD per 1,000 input and output tokens; ``image_tokens`` are billed per image only when
    the server did not report usage (OpenAI counts them inside ``prompt_tokens``)."""

    input_per_1k: float = 0.0
    output_per_1k: float = 0.0
    image_tokens: int = 0


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4-1106-vision-preview": Price(input_per_1k=0.01, output_per_1k=0.03, image_tokens=85),
    "gpt-3.5-turbo-1106": Price(input_per_1k=0.001, output_per_1k=0.002),
}

# MMInstruct Table 2 and §3.6: the cost model of the engine and of manual construction.
PAPER_TABLE2 = {
    "images": 161_000,
    "instructions": 973_000,
    "engine_per_image_usd": 0.00885,  # GPT-4V caption
    "engine_per_instruction_usd": 0.0004,  # GPT-3.5 generation
    "correction_per_instruction_usd": 0.13,  # manual correction of generated data
    "manual_per_instruction_usd": 0.84,  # manual construction
    "engine_total_usd": 128_304,
    "manual_total_usd": 817_320,
}


def load_prices(path: str | os.PathLike | None = None, **overrides: dict | Price) -> dict[str, Price]:
    """:data:`DEFAULT_PRICES` updated from a YAML/JSON file and keyword overrides."""
    prices = dict(DEFAULT_PRICES)
    if path is not None:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        prices.update({str(k): Price(**v) for k, v in data.items()})
    prices.update({k: v if isinstance(v, Price) else Price(**v) for k, v in overrides.items()})
    return prices


def call_cost(price: Price | None, prompt_tokens: int, completion_tokens: int, images: int = 0, estimated: bool = False) -> float:
    """USD of one call; ``estimated``: the token counts did not come from the server (add image tokens)."""
    if price is None:
        return 0.0
    prompt = prompt_tokens + (images * price.image_tokens if estimated else 0)
    return prompt * price.input_per_1k / 1000 + completion_tokens * price.output_per_1k / 1000


class Ledger:
    """Records of calls: step, call id, attempt, tokens, cost, cache hit, error (thread-safe)."""

    def __init__(self, prices: dict[str, Price] | None = None, *, path: str | os.PathLike | None = None):
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)
        self.path = os.fspath(path) if path is not None else None
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        if self.path:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)

    def add(self, step: str, call_id: str, response, attempt: int = 0) -> float:
        """Record one response (a :class:`~hf_vitcurate.engine.backends.Response`); return its cost."""
        price = self.prices.get(response.model)
        cost = call_cost(price, response.prompt_tokens, response.completion_tokens, response.images,
                         estimated=getattr(response, "estimated", False))
        rec = {
            "step": step,
            "call_id": call_id,
            "attempt": attempt,
            "key": response.key,
            "model": response.model,
            "prompt_tokens": response.prompt_tokens,
            "completion_tokens": response.completion_tokens,
            "images": response.images,
            "cost_usd": cost,
            "paid_usd": 0.0 if response.cached else cost,
            "priced": price is not None,
            "cached": response.cached,
            "error": response.error,
            "estimated": bool(getattr(response, "estimated", False)),  # tokens guessed: the server sent no counts
            "latency_s": round(response.latency_s, 4),
            "tries": response.tries,
        }
        with self._lock:
            self.records.append(rec)
            if self.path:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
        return cost

    @classmethod
    def read(cls, path: str | os.PathLike, *, prices: dict[str, Price] | None = None) -> Ledger:
        """A ledger with the records of a JSON-lines file written by one or more runs."""
        ledger = cls(prices)
        with open(path, encoding="utf-8") as f:
            ledger.records = [json.loads(line) for line in f if line.strip()]
        return ledger

    def summary(self) -> dict[str, Any]:
        """Totals per step: calls, tokens, cost (every request made; see :func:`summarize`), paid this time, cache hits, errors."""
        return summarize(self.records)


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per-step and overall totals; ``cost_usd`` is what making the data cost.

    Every request that was made (not a cache hit) counts, each time: two identical requests
    in one batch are both generated and both paid. A cache hit adds nothing when its request
    was paid in these records (a rerun), and counts once, at its cost when made, when it was
    paid by an earlier run whose records are not here.
    """
    records = list(records)
    paid_keys = {_ident(r) for r in records if not r.get("cached")}
    steps: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    for r in records:
        s = steps.setdefault(r["step"], {"calls": 0, "cached": 0, "errors": 0, "prompt_tokens": 0,
                                         "completion_tokens": 0, "cost_usd": 0.0, "paid_usd": 0.0, "unpriced_calls": 0})
        s["calls"] += 1
        s["cached"] += bool(r.get("cached"))
        s["errors"] += bool(r.get("error"))
        s["paid_usd"] += r.get("paid_usd", 0.0)
        s["unpriced_calls"] += not r.get("priced", True)
        ident = _ident(r)
        if r.get("cached") and (ident in paid_keys or ident in seen):
            continue
        seen.add(ident)
        s["prompt_tokens"] += r["prompt_tokens"]
        s["completion_tokens"] += r["completion_tokens"]
        s["cost_usd"] += r["cost_usd"]
    total = {k: sum(s[k] for s in steps.values()) for k in
             ("calls", "cached", "errors", "prompt_tokens", "completion_tokens", "cost_usd", "paid_usd", "unpriced_calls")}
    return {"steps": steps, "total": total}


def _ident(record: dict[str, Any]) -> tuple[str, str]:
    return record["step"], record.get("key") or f"{record['call_id']}#{record.get('attempt', 0)}"


def cost_report(
    records: Iterable[dict[str, Any]],
    *,
    n_images: int,
    n_instructions: int,
    correction_per_instruction: float = PAPER_TABLE2["correction_per_instruction_usd"],
    manual_per_instruction: float = PAPER_TABLE2["manual_per_instruction_usd"],
    scale_images: int = PAPER_TABLE2["images"],
    scale_instructions: int = PAPER_TABLE2["instructions"],
) -> dict[str, Any]:
    """Measured engine cost against the paper's manual-annotation cost model.

    ``n_images``/``n_instructions``: what the run produced (kept QA pairs). Unit costs
    (per captioned image, per kept instruction) are measured from the records and then
    put in Table 2's formula ``images × per_image + instructions × (per_instruction +
    correction)`` against ``instructions × manual``, for this run and at MMInstruct's
    scale (161K images, 973K instructions).
    """
    summary = summarize(records)
    steps = summary["steps"]
    caption_usd = steps.get("caption", {}).get("cost_usd", 0.0)
    question_usd = sum(v["cost_usd"] for k, v in steps.items() if k != "caption")
    per_image = caption_usd / n_images if n_images else 0.0
    per_instruction = question_usd / n_instructions if n_instructions else 0.0

    def model(images: int, instructions: int) -> dict[str, float]:
        engine = images * per_image + instructions * (per_instruction + correction_per_instruction)
        manual = instructions * manual_per_instruction
        return {"images": images, "instructions": instructions, "engine_usd": round(engine, 4),
                "engine_without_correction_usd": round(images * per_image + instructions * per_instruction, 6),
                "manual_usd": round(manual, 4), "engine_over_manual": round(engine / manual, 4) if manual else None}

    p = PAPER_TABLE2
    paper_engine = p["images"] * p["engine_per_image_usd"] + p["instructions"] * (p["engine_per_instruction_usd"] + p["correction_per_instruction_usd"])
    paper_manual = p["instructions"] * p["manual_per_instruction_usd"]
    return {
        "measured": {
            "caption_usd": caption_usd,
            "generation_usd": question_usd,
            "per_image_usd": per_image,
            "per_instruction_usd": per_instruction,
            "unpriced_calls": summary["total"]["unpriced_calls"],
            **{k: summary["total"][k] for k in ("calls", "cached", "errors", "prompt_tokens", "completion_tokens", "paid_usd")},
        },
        "this_run": model(n_images, n_instructions),
        "at_mminstruct_scale": model(scale_images, scale_instructions),
        "paper": {**p, "engine_total_usd": round(paper_engine, 2), "manual_total_usd": round(paper_manual, 2),
                  "engine_over_manual": round(paper_engine / paper_manual, 4)},
        "assumptions": {"correction_per_instruction_usd": correction_per_instruction,
                        "manual_per_instruction_usd": manual_per_instruction},
    }


def report_markdown(report: dict[str, Any]) -> str:
    """The cost report as a small Markdown table."""
    m, run, scale, paper = report["measured"], report["this_run"], report["at_mminstruct_scale"], report["paper"]
    lines = [
        "| | per image | per instruction | engine total | manual total | engine / manual |",
        "|---|---|---|---|---|---|",
        (f"| this run ({run['images']} images, {run['instructions']} instructions) | ${m['per_image_usd']:.6f} | "
         f"${m['per_instruction_usd']:.6f} | ${run['engine_usd']:,.2f} | ${run['manual_usd']:,.2f} | {run['engine_over_manual']} |"),
        (f"| measured unit costs at MMInstruct scale | ${m['per_image_usd']:.6f} | ${m['per_instruction_usd']:.6f} | "
         f"${scale['engine_usd']:,.0f} | ${scale['manual_usd']:,.0f} | {scale['engine_over_manual']} |"),
        (f"| paper, Table 2 | ${paper['engine_per_image_usd']} | ${paper['engine_per_instruction_usd']} | "
         f"${paper['engine_total_usd']:,.0f} | ${paper['manual_total_usd']:,.0f} | {paper['engine_over_manual']} |"),
        "",
        (f"Engine totals include manual correction at ${report['assumptions']['correction_per_instruction_usd']} per "
         f"instruction; manual construction at ${report['assumptions']['manual_per_instruction_usd']}. "
         f"Calls: {m['calls']} ({m['cached']} from the cache, {m['errors']} failed, {m['unpriced_calls']} unpriced)."),
    ]
    return "\n".join(lines)


def price_dict(prices: dict[str, Price]) -> dict[str, dict[str, float]]:
    """Prices as plain dicts (for provenance and cards)."""
    return {k: asdict(v) for k, v in prices.items()}


__all__ = ["DEFAULT_PRICES", "PAPER_TABLE2", "Ledger", "Price", "call_cost", "cost_report", "load_prices", "report_markdown", "summarize"]
