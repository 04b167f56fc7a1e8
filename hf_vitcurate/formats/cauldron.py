"""the_cauldron (``HuggingFaceM4/the_cauldron``): ``{images, texts: [{user, assistant, source}]}``.

Each ``texts`` entry is one human/gpt pair. The cauldron puts no ``<image>`` marks in
its text, so one ``<image>\\n`` per image goes in front of the first question (as LLaVA
does) so rows validate. ``images`` hold ``{bytes, path}`` structs (parquet on the Hub)
or paths (local JSON, joined to ``image_root``); bytes are kept as bytes, never decoded.
Ids: an ``id`` field if present, else ``"{source}-{row}"``. Source: ``source=``, else
the config name (``load_vit(repo, name="ai2d")``) or file stem. Task: ``task=``, else
inferred from the first question (:func:`~hf_vitcurate.formats.llava.infer_task`).

Example:
    >>> ds = load_vit("HuggingFaceM4/the_cauldron", name="ai2d")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from .common import (
    RowError,
    add_placeholders,
    check_errors,
    default_root,
    default_source,
    finish,
    image_list,
    map_records,
    root_prefix,
    row_id,
)
from .reading import read_raw
from .llava import infer_task


def load(path: str, *, image_root: str | None = None, source: str | None = None, task: str | None = None, errors: str = "raise", **load_kwargs: Any):
    """Load the_cauldron rows from a file, folder or repo id into the canonical schema."""
    raw = read_raw(path, **load_kwargs)
    root = default_root(path) if image_root is None else image_root
    return convert(raw, file=path, image_root=root, source=source, default_source=default_source(path), task=task, errors=errors)


def convert(
    raw: Dataset,
    *,
    file: str,
    image_root: str | None = None,
    source: str | None = None,
    default_source: str = "cauldron",
    task: str | None = None,
    errors: str = "raise",
    allow_outside_root: bool = False,
) -> Dataset | tuple[Dataset, Dataset]:
    """Canonical rows from cauldron records already read into ``raw``."""
    check_errors(errors)
    prefix = root_prefix(image_root)
    src = source or default_source

    def one(rec: dict[str, Any], row: int) -> list[dict[str, Any]]:
        texts = rec.get("texts")
        if not isinstance(texts, list) or not texts:
            raise RowError("texts", "missing_field", "record has no list of texts")
        turns = []
        for k, t in enumerate(texts):
            if not isinstance(t, dict):
                raise RowError(f"texts[{k}]", "bad_turn", f"entry is {type(t).__name__}, not {{user, assistant}}")
            for key, role in (("user", "human"), ("assistant", "gpt")):
                if not isinstance(t.get(key), str):
                    raise RowError(f"texts[{k}].{key}", "non_text_value", f"{key} is {type(t.get(key)).__name__}, not a string")
                turns.append({"from": role, "value": t[key]})
        images = image_list(rec.get("images"), prefix)
        return [{
            "id": str(rec.get("id") or row_id(src, row)),
            "images": images,
            "conversations": add_placeholders(turns, len(images)),
            "source": src,
            "task": task or infer_task(turns[0]["value"]),
        }]  # fmt: skip

    ds = map_records(raw, one, reject_row=lambda rec, row: {"id": str(rec.get("id") or row_id(src, row)), "source": src}, desc="converting cauldron")
    params = {"image_root": image_root, "source": src, "task": task}
    return finish(ds, fmt="cauldron", file=file, rows_in=len(raw), errors=errors, params=params, parent=raw, image_root=image_root, allow_outside_root=allow_outside_root)
