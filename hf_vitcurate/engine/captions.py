"""Step (b) of the data engine: one caption per image, with MMInstruct's Table 5 prompt, on an image-text backend.

The prompt is the universal caption prompt plus the domain's special requirement
(MMInstruct, arXiv:2407.15838, §3.2). A call that fails or answers nothing is sent again
(sampled) up to the engine's ``max_attempts``; an image left without a caption keeps
``caption_ok=False`` and every row planned from it is rejected as ``caption_failed``.

Example:
    >>> from hf_vitcurate.engine import Engine, EchoBackend, shapes_images   # doctest: +SKIP
    >>> captioned = caption(Engine(EchoBackend()), shapes_images(4))           # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datasets import Dataset, List, Value

from ..errors import MissingColumnError
from .. import provenance
from ..columns import list_column
from ..formats.common import add_placeholders
from ..results import Split
from .calls import call_round
from .request import Request
from .rows import CallState, finish
from .taxonomy import CAPTION

if TYPE_CHECKING:
    from .engine import Engine

# Columns step (b) adds to the images, with their types.
CAPTION_COLUMNS = {
    "caption": Value("string"),
    "caption_ok": Value("bool"),
    "caption_reject_reason": Value("string"),
    "caption_reject_detail": Value("string"),
    "caption_attempts": Value("int32"),
    "caption_prompt_tokens": Value("int64"),
    "caption_completion_tokens": Value("int64"),
    "caption_cost_usd": Value("float64"),
}


def prepare(engine: Engine, images: Dataset, *, domain: str | None = None) -> Dataset:
    """Images with ``id``, ``images``, ``domain`` (canonical keys), ``image_tag``, ``ocr_text``."""
    if "id" not in images.column_names:
        raise MissingColumnError(f"images need an 'id' column; have {images.column_names}")
    if "images" not in images.column_names:
        if "image" not in images.column_names:
            raise MissingColumnError(f"images need an 'images' (list) or 'image' column; have {images.column_names}")
        from datasets import Image

        images = images.map(lambda r: {"images": [r["image"]]}, remove_columns=["image"])
        images = images.cast_column("images", List(Image()))
    if domain is not None:
        key = engine.taxonomy.key(domain)
        images = images.remove_columns([c for c in ("domain",) if c in images.column_names])
        images = images.add_column("domain", [key] * len(images))
    elif "domain" not in images.column_names:
        raise MissingColumnError("images have no 'domain' column: pass domain=")
    else:
        keys = {d: engine.taxonomy.key(d) for d in set(list_column(images, "domain"))}
        if any(k != v for k, v in keys.items()):
            images = images.map(lambda b: {"domain": [keys[d] for d in b]}, input_columns="domain", batched=True)
    for col in ("image_tag", "ocr_text"):
        if col not in images.column_names:
            images = images.add_column(col, [""] * len(images))
    return images


def caption(engine: Engine, images: Dataset, *, domain: str | None = None) -> Dataset:
    """Step (b): ``images`` plus the :data:`CAPTION_COLUMNS` (``caption`` is ``""`` where it failed)."""
    images = prepare(engine, images, domain=domain)
    prompts = [engine.prompts.caption_prompt(d, t, o) for d, t, o in
               zip(list_column(images, "domain"), list_column(images, "image_tag"), list_column(images, "ocr_text"))]
    calls = images.add_column("prompt", prompts)
    ids = list_column(images, "id")
    states = {i: CallState() for i in ids}
    texts = {i: "" for i in ids}
    reasons = {i: ("caption_failed", "not generated") for i in ids}
    todo = list(range(len(images)))
    for attempt in range(engine.max_attempts):
        if not todo:
            break
        responses = call_round(engine, calls.select(todo), "caption", attempt, engine.caption_backend,
                               lambda row: Request(row["prompt"], images=list(row["images"][:1]),
                                                   max_tokens=engine.caption_max_tokens))
        nxt = []
        for idx, resp in zip(todo, responses):
            cid = ids[idx]
            states[cid].pay(resp)
            text = (resp["text"] or "").strip()
            if not resp["error"] and text:
                texts[cid], reasons[cid] = text, ("", "")
            else:
                reasons[cid] = ("caption_failed", resp["error_detail"] or resp["error"] or "empty caption")
                nxt.append(idx)
        todo = nxt
    values = {
        "caption": [texts[i] for i in ids],
        "caption_ok": [not reasons[i][0] for i in ids],
        "caption_reject_reason": [reasons[i][0] for i in ids],
        "caption_reject_detail": [reasons[i][1] for i in ids],
        "caption_attempts": [states[i].attempts for i in ids],
        "caption_prompt_tokens": [states[i].prompt_tokens for i in ids],
        "caption_completion_tokens": [states[i].completion_tokens for i in ids],
        "caption_cost_usd": [states[i].cost for i in ids],
    }
    out = images
    for name, feature in CAPTION_COLUMNS.items():
        out = out.remove_columns([name]) if name in out.column_names else out
        out = out.add_column(name, values[name], feature=feature)
    failed_n = sum(1 for i in ids if reasons[i][0])
    return provenance.record(
        out, "mminstruct_caption", kind="engine", rows_in=len(images), rows_out=len(images),
        rejected={"caption_failed": failed_n} if failed_n else {}, model=engine.caption_backend.model,
        params={"max_attempts": engine.max_attempts, "max_tokens": engine.caption_max_tokens, "prompt": "caption"},
        parent=images,
    )


def caption_rows(engine: Engine, captioned: Dataset) -> Split:
    """Captions as canonical rows (``instruction_type == "caption"``), without images yet."""
    n = len(captioned)
    cols = {c: list_column(captioned, c) for c in ("id", "domain", *CAPTION_COLUMNS)}
    n_img = [len(x) for x in list_column(captioned, "images")] if n else []
    rows = []
    for k in range(n):
        turns = add_placeholders([{"from": "human", "value": engine.taxonomy.caption_instruction},
                                  {"from": "gpt", "value": cols["caption"][k]}], n_img[k])
        rows.append({
            "_image": k, "id": f"{cols['id'][k]}-caption", "conversations": turns if cols["caption_ok"][k] else [],
            "source": "mminstruct_engine", "task": CAPTION, "domain": cols["domain"][k], "instruction_type": CAPTION,
            "caption": cols["caption"][k], "engine_call": f"{cols['id'][k]}-caption", "engine_attempts": cols["caption_attempts"][k],
            "prompt_tokens": float(cols["caption_prompt_tokens"][k]), "completion_tokens": float(cols["caption_completion_tokens"][k]),
            "cost_usd": cols["caption_cost_usd"][k], "reject_reason": cols["caption_reject_reason"][k],
            "reject_detail": cols["caption_reject_detail"][k], "raw_output": "",
        })
    return finish(rows, captioned, "mminstruct_caption_rows", {"rows": "caption"}, engine.caption_backend.model)


__all__ = ["CAPTION_COLUMNS", "caption", "caption_rows", "prepare"]
