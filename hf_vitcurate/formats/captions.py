"""Caption files: ``{image_id, caption}`` records, as in MiniGPT-4's CC-SBU-Align and COCO captions.

Layouts read:

- MiniGPT-4 / CC-SBU-Align (*MiniGPT-4: Enhancing Vision-Language Understanding with
  Advanced Large Language Models*, arXiv:2304.10592), ``filter_cap.json``:
  ``{"annotations": [{"image_id": "2", "caption": "..."}, ...]}``; the images are
  ``image/{image_id}.jpg`` beside the file (the ``image_name`` default);
- COCO captions (``captions_train2014.json``, *Microsoft COCO Captions*, arXiv:1504.00325):
  ``{"images": [{"id", "file_name"}, ...], "annotations": [{"id", "image_id", "caption"}]}``;
  the image of a caption is its ``file_name`` from ``images`` (pass ``image_root=``, e.g.
  ``train2014/``: COCO keeps annotations and images in different folders);
- a plain list (JSON or JSON Lines) of ``{image_id, caption}`` records.

:func:`~hf_vitcurate.formats.load_vit` finds the ``annotations`` list by itself (or
reads ``field=``). Each caption becomes one single-turn row, task ``caption``:
``human: "<image>\\n{instruction}"``, ``gpt: caption``. ``instruction`` defaults to
:data:`INSTRUCTION`, "Describe the image concisely.", the first of LLaVA's brief
image description instructions (*Visual Instruction Tuning*, arXiv:2304.08485, its list of
brief-description prompts); pass e.g. MiniGPT-4's
"Describe this image in detail." for detailed captions. Ids: the record's ``id`` (COCO
gives one per caption) else its ``image_id``.

Example:
    >>> ds = load_vit("cc_sbu_align/filter_cap.json")  # doctest: +SKIP
    >>> ds = load_vit("annotations/captions_val2014.json", image_root="val2014")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Callable

from datasets import Dataset

from ..errors import ConfigError
from .common import RowError, check_errors, finish, image_ref, map_records, root_prefix

INSTRUCTION = "Describe the image concisely."
IMAGE_NAME = "image/{image_id}.jpg"
TASK = "caption"


def is_caption_file(obj: Any) -> bool:
    """True for one JSON object whose ``annotations`` list holds ``{image_id, caption}`` records."""
    anns = obj.get("annotations") if isinstance(obj, dict) else None
    return isinstance(anns, list) and bool(anns) and isinstance(anns[0], dict) and {"image_id", "caption"} <= set(anns[0])


def image_files(obj: dict[str, Any]) -> dict[str, str] | None:
    """COCO's ``images`` list as ``{str(id): file_name}`` (None when the file has none)."""
    images = obj.get("images")
    if not isinstance(images, list):
        return None
    return {str(im["id"]): im["file_name"] for im in images if isinstance(im, dict) and "id" in im and "file_name" in im}


def convert(
    raw: Dataset,
    *,
    file: str,
    image_root: str | None = None,
    source: str | None = None,
    default_source: str = "captions",
    task: str | None = None,
    instruction: str = INSTRUCTION,
    image_name: str | Callable[[Any], str] = IMAGE_NAME,
    image_files: dict[str, str] | None = None,
    errors: str = "raise",
    allow_outside_root: bool = False,
) -> Dataset | tuple[Dataset, Dataset]:
    """Canonical caption rows from ``{image_id, caption}`` records already read into ``raw``.

    ``image_files`` (COCO's ``images`` list, id to file name) wins over ``image_name``
    (a format string of ``image_id`` or a callable ``image_id -> path``).
    """
    check_errors(errors)
    if not isinstance(instruction, str) or not instruction.strip():
        raise ConfigError(f"instruction must be a non-empty string, got {instruction!r}")
    prefix = root_prefix(image_root)
    src, kind = source or default_source, task or TASK

    def image_path(image_id: Any) -> str:
        if image_files is not None:
            if str(image_id) not in image_files:
                raise RowError("image_id", "unknown_image", f"image_id {image_id!r} is not in the file's images list")
            return image_files[str(image_id)]
        return image_name(image_id) if callable(image_name) else image_name.format(image_id=image_id)

    def one(rec: dict[str, Any], row: int) -> list[dict[str, Any]]:
        image_id, caption = rec.get("image_id"), rec.get("caption")
        if image_id in (None, ""):
            raise RowError("image_id", "missing_field", "record has no image_id")
        if not isinstance(caption, str) or not caption.strip():
            raise RowError("caption", "empty_value" if isinstance(caption, str) else "non_text_value",
                           f"caption is {caption!r:.40}, not a non-empty string")
        return [{
            "id": str(rec["id"]) if rec.get("id") not in (None, "") else str(image_id),
            "images": [image_ref(image_path(image_id), prefix, "image_id")],
            "conversations": [{"from": "human", "value": f"<image>\n{instruction}"}, {"from": "gpt", "value": caption}],
            "source": src,
            "task": kind,
        }]  # fmt: skip

    ds = map_records(raw, one, reject_row=lambda rec, row: {"id": str(rec.get("id") or rec.get("image_id")), "source": src}, desc="converting captions")
    params = {"image_root": image_root, "source": src, "task": kind, "instruction": instruction,
              "image_name": "images list" if image_files is not None else image_name}
    return finish(ds, fmt="captions", file=file, rows_in=len(raw), errors=errors, params=params, parent=raw, image_root=image_root, allow_outside_root=allow_outside_root)
