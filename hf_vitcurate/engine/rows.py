"""Result assembly of the data engine: the row schema, kept/rejected datasets, images attached, :class:`EngineResult`.

Output rows follow the canonical schema plus ``domain``, ``instruction_type``,
``caption``, ``engine_call``, ``engine_attempts``, ``prompt_tokens``,
``completion_tokens`` and ``cost_usd`` (a row's share of its call's tokens and cost, all
attempts included, so the rows' costs add up to the ledger's). Rejected rows have
``reject_reason``, ``reject_detail`` and ``raw_output``.

While the steps run, rows point at their image by ``_image`` (its index in the captioned
images) and :func:`attach_images` joins the images at the end, so no image is copied per
question.

Example:
    >>> from hf_vitcurate.results import Split
    >>> kept, rejected = finish([], empty(ROW_FEATURES), "demo", {}, "m")
    >>> isinstance(finish([], empty(ROW_FEATURES), "demo", {}, "m"), Split), len(kept) + len(rejected)
    (True, 0)
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, Features, Value, concatenate_datasets

from .. import provenance
from ..columns import list_column
from ..results import Split
from ..schema import FEATURES
from .ledger import Ledger
from .parser import Parsed
from .taxonomy import CAPTION

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


@dataclass
class CallState:
    """Book-keeping of one call across attempts: the best parse so far and what all attempts cost."""

    attempts: int = 0
    cost: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    best: Parsed | None = None
    raw: str = ""

    def pay(self, response: dict[str, Any]) -> None:
        """Count one attempt and what it cost."""
        self.attempts += 1
        self.cost += response["cost_usd"]
        self.prompt_tokens += response["prompt_tokens"]
        self.completion_tokens += response["completion_tokens"]

    def update(self, parsed: Parsed, raw: str) -> None:
        # Keep the attempt with most good items; on a tie, the later one.
        if self.best is None or parsed.n_ok >= self.best.n_ok:
            self.best, self.raw = parsed, raw


class EngineResult(Split):
    """What :meth:`Engine.run` made: a :class:`~hf_vitcurate.results.Split` with the captioned images and the ledger.

    Unpacks as ``(kept, rejected)`` like every kept/rejected split; ``result.captioned``
    and ``result.ledger`` carry the rest, ``result.split`` is the plain pair.

    Example:
        >>> r = EngineResult.of(empty(ROW_FEATURES), empty(REJECTED_FEATURES), captioned=Dataset.from_dict({"id": []}), ledger=Ledger())
        >>> kept, rejected = r
        >>> r.counts()["rows_in"], r.instructions()
        (0, 0)
    """

    captioned: Dataset
    ledger: Ledger

    @classmethod
    def of(cls, kept: Dataset, rejected: Dataset, *, captioned: Dataset, ledger: Ledger) -> "EngineResult":
        result = cls(kept, rejected)
        object.__setattr__(result, "captioned", captioned)
        object.__setattr__(result, "ledger", ledger)
        return result

    @property
    def split(self) -> Split:
        """The rows as a plain :class:`~hf_vitcurate.results.Split`."""
        return Split(self.kept, self.rejected)

    def instructions(self) -> int:
        """QA pairs kept, captions excluded (what MMInstruct's Table 2 calls instructions)."""
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


def finish(rows: list[dict[str, Any]], parent: Dataset, name: str, params: dict, model: str) -> Split:
    """Split rows into kept and rejected datasets (without images yet: ``_image`` points at them)."""
    kept_rows = [r for r in rows if not r["reject_reason"]]
    rej_rows = [r for r in rows if r["reject_reason"]]
    text_feats = {k: v for k, v in ROW_FEATURES.items() if k != "images"}
    kept = rows_dataset(kept_rows, Features({"_image": Value("int64"), **text_feats}))
    rejected = rows_dataset(rej_rows, Features({"_image": Value("int64"), **text_feats, **REJECT_FEATURES}))
    counts = dict(Counter(r["reject_reason"] for r in rej_rows))
    kept = provenance.record(kept, name, kind="engine", rows_in=len(rows), rejected=counts, params=params, model=model, parent=parent)
    rejected = provenance.record(rejected, name, kind="engine", rows_in=len(rows), rejected=counts, params=params, model=model, parent=parent)
    return Split(kept, rejected)


def attach_images(pair: tuple[Dataset, Dataset], captioned: Dataset) -> Split:
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
            merged = empty(feats)
        out.append(provenance.with_steps(merged, provenance.steps(ds)))
    return Split(out[0], out[1])


def fingerprint(ds: Dataset, step: str, params: dict[str, Any]) -> str:
    """New fingerprint for a map from its input and settings (hashing a closure over a model is slow)."""
    return hashlib.sha256(json.dumps([ds._fingerprint, step, params], sort_keys=True, default=str).encode()).hexdigest()[:32]


def rows_dataset(rows: list[dict[str, Any]], features: Features) -> Dataset:
    return Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)


def empty(features: Features) -> Dataset:
    return Dataset.from_dict({k: [] for k in features}, features=features)


def concat(parts: list[Dataset], features: Features) -> Dataset:
    """Concatenate the parts of several steps, their provenance merged."""
    if not parts:
        return empty(features)
    out = concatenate_datasets(parts)
    return provenance.with_steps(out, provenance.merge(parts))


__all__ = ["MULTI", "REJECTED_FEATURES", "ROW_FEATURES", "CallState", "EngineResult", "attach_images", "finish"]
