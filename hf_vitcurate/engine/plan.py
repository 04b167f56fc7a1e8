"""Step (c) of the data engine: the calls to make, one per image and instruction type, with seeds and prompt.

MMInstruct (arXiv:2407.15838, §3.3-3.5): per image and type, ``n_seeds`` seed questions of
the domain are drawn (keyed by image, so reruns build identical prompts) into Table 7's
"with seed" prompt, or "no seed" where the domain has none (a domain meant to have seeds
that has none for a type is warned about once and listed in provenance); step (e) plans one call per
image for ``n_questions`` linked questions (Table 7 "Multi-Round"). A plan is a
``Dataset`` of calls (no images: ``_image`` points at them), built with ``datasets.map``.

Example:
    >>> calls = plan(engine, captioned, types=["judgement"], n_questions=3)   # doctest: +SKIP
    >>> calls[0]["id"], calls[0]["prompt_kind"]                              # doctest: +SKIP
    ('img0-judgement', 'with_seed')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from datasets import Dataset, Features, List, Value

from ..errors import ConfigError, MissingColumnError
from ..columns import list_column
from .rows import MULTI, fingerprint
from .taxonomy import MULTI_ROUND, TYPES

if TYPE_CHECKING:
    from .engine import Engine

CALL_COLUMNS = ("id", "image_id", "domain", "image_domain", "instruction_type", "prompt", "prompt_kind", "caption")
_TEXT_COLUMNS = ["id", "domain", "image_tag", "ocr_text", "caption", "caption_ok"]
CALL_FEATURES = Features({**{k: Value("string") for k in CALL_COLUMNS}, "_image": Value("int64"), "n": Value("int32"),
                          "seed_questions": List(Value("string")), "caption_ok": Value("bool"), "n_images": Value("int32")})


def plan(engine: Engine, captioned: Dataset, *, types: Sequence[str] = TYPES, n_questions: int = 3, n_seeds: int = 3) -> Dataset:
    """Step (c): one call per image and type, with its seed questions and prompt."""
    kinds = list(types)
    bad = [t for t in kinds if t not in TYPES]
    if bad:
        raise ConfigError(f"unknown instruction type(s) {bad}; known: {list(TYPES)}")
    if "domain" in captioned.column_names:  # say which (domain, type) fall back to the no-seed prompt for want of seeds
        engine.seeds.note_fallbacks(set(list_column(captioned, "domain")), kinds, no_seed_domains=engine.taxonomy.no_seed_domains)

    def explode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in CALL_COLUMNS}
        for j, idx in enumerate(indices):
            image_id, dom = batch["id"][j], batch["domain"][j]
            for kind in kinds:
                no_seed = dom in engine.taxonomy.no_seed_domains
                seeds = [] if no_seed else engine.seeds.pick(dom, kind, n_seeds, seed=engine.seed, key=image_id)
                prompt = engine.prompts.questions(dom, kind, caption=batch["caption"][j], seeds=seeds, n=n_questions,
                                                  ocr_text=batch["ocr_text"][j], output_format=engine.output_format)
                _add_call(out, batch, j, cid=f"{image_id}-{kind}", image=idx, domain=dom, kind=kind, n=n_questions,
                          prompt=prompt, seeds=seeds, prompt_kind="with_seed" if seeds else "no_seed")
        return out

    return _plan_map(engine, captioned, explode, "plan questions")


def plan_long_vqa(engine: Engine, captioned: Dataset, *, n_questions: int = 5) -> Dataset:
    """Step (e)'s calls: one per image, ``n_questions`` linked questions (Table 7 "Multi-Round")."""

    def explode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in CALL_COLUMNS}
        for j, idx in enumerate(indices):
            prompt = engine.prompts.multi_round_prompt(caption=batch["caption"][j], n=n_questions,
                                                       ocr_text=batch["ocr_text"][j], output_format=engine.output_format)
            _add_call(out, batch, j, cid=f"{batch['id'][j]}-{MULTI}", image=idx, domain=MULTI_ROUND, kind=MULTI,
                      n=n_questions, prompt=prompt, seeds=[], prompt_kind="multi_round")
        return out

    return _plan_map(engine, captioned, explode, "plan long VQA")


def _plan_map(engine: Engine, captioned: Dataset, explode: Callable, desc: str) -> Dataset:
    if "caption" not in captioned.column_names:
        raise MissingColumnError("plan needs captioned images: run Engine.caption first")
    text = captioned.select_columns([c for c in _TEXT_COLUMNS if c in captioned.column_names])
    captions = list_column(captioned, "caption")
    defaults = {"image_tag": [""] * len(text), "ocr_text": [""] * len(text),
                "caption_ok": [bool(c and c.strip()) for c in captions]}  # a caption from elsewhere
    for name, values in defaults.items():
        if name not in text.column_names:
            text = text.add_column(name, values)
    text = text.add_column("n_images", [len(x) for x in list_column(captioned, "images")])
    return text.map(explode, batched=True, with_indices=True, remove_columns=text.column_names, features=CALL_FEATURES,
                    desc=desc, new_fingerprint=fingerprint(captioned, desc, engine.params()), load_from_cache_file=False)


def _add_call(out: dict[str, list], batch: dict[str, list], j: int, *, cid: str, image: int, domain: str, kind: str,
              n: int, prompt: str, seeds: list[str], prompt_kind: str) -> None:
    """Append one call (of image ``j`` of ``batch``) to the columns ``out``."""
    out.setdefault("_image", []).append(image)
    out.setdefault("n", []).append(n)
    out.setdefault("seed_questions", []).append(list(seeds))
    out.setdefault("caption_ok", []).append(bool(batch["caption_ok"][j]))
    out.setdefault("n_images", []).append(batch["n_images"][j])
    for key, value in (("id", cid), ("image_id", batch["id"][j]), ("domain", domain), ("image_domain", batch["domain"][j]),
                       ("instruction_type", kind), ("prompt", prompt), ("prompt_kind", prompt_kind), ("caption", batch["caption"][j])):
        out[key].append(value)


__all__ = ["CALL_COLUMNS", "CALL_FEATURES", "plan", "plan_long_vqa"]
