"""Load any Hugging Face image-text checkpoint (a local folder or a Hub id) the same way.

Everything in the package goes through :func:`load_model` / :func:`load_processor`:
``AutoModelForImageTextToText`` and ``AutoProcessor``, so a tiny local checkpoint,
``llava-hf/llava-1.5-7b-hf`` and ``Qwen/Qwen2-VL-2B-Instruct`` take the same path.

Example:
    >>> model, processor = load("ckpt/tiny")            # doctest: +SKIP
    >>> model, processor = load("llava-hf/llava-1.5-7b-hf", dtype="bfloat16", device="cuda")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import torch


def default_device() -> torch.device:
    """CUDA (this process's device under ``accelerate launch``) when present, else CPU."""
    if torch.cuda.is_available():
        from accelerate import PartialState

        return PartialState().device
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> str | torch.dtype:
    """``"auto"``: bf16 on a GPU that supports it, else the checkpoint's own dtype."""
    if dtype in (None, "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return "auto"
    return dtype


def rewrite_target(model: str | os.PathLike, output_dir: str | os.PathLike | None) -> tuple[str, str]:
    """``(model, out)`` for a stage that rewrites part of a checkpoint: in place when
    ``output_dir`` is None, else into ``output_dir``, a copy of the whole checkpoint made
    first (so the result has its processor and sidecar files).

    >>> rewrite_target("ckpt/tiny", None)
    ('ckpt/tiny', 'ckpt/tiny')
    """
    model = os.fspath(model)
    out = os.fspath(output_dir) if output_dir is not None else model
    if out != model:
        shutil.copytree(model, out, dirs_exist_ok=True)
    return model, out


def load_processor(model: str | os.PathLike):
    """The processor (image processor + tokenizer + chat template) of the checkpoint ``model``."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(os.fspath(model))


def load_model(
    model: str | os.PathLike,
    *,
    dtype: str | torch.dtype | None = "auto",
    device: str | torch.device | None = None,
):
    """The model of the checkpoint ``model`` (folder or Hub id), on ``device`` (default: :func:`default_device`)."""
    from transformers import AutoModelForImageTextToText

    device = torch.device(device) if device is not None else default_device()
    loaded = AutoModelForImageTextToText.from_pretrained(os.fspath(model), dtype=resolve_dtype(dtype, device))
    return loaded.to(device)


def load(model: str | os.PathLike, *, dtype: str | torch.dtype | None = "auto", device=None):
    """``(model, processor)`` of the checkpoint ``model``; see :func:`load_model`."""
    return load_model(model, dtype=dtype, device=device), load_processor(model)


def auto_threads() -> int:
    """CPU threads worth using now: this process's share of the cores not busy elsewhere.

    OpenMP threads spin at barriers; on an oversubscribed machine two threads can be many
    times slower than one (measured: a 1M-element multiply 0.6 ms with 1 thread, 21 ms
    with 2, at load 8 on 2 cores). So count the cores other processes keep busy (1-minute
    load average) and split the rest between the processes of this job.
    """
    cores = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without getloadavg
        busy = 0.0
    return max(1, min(cores // local, int((cores - busy) / local + 0.5)))


def set_threads(num_threads: int | str | None) -> int:
    """Use ``num_threads`` CPU threads for torch ops: an int, ``"auto"`` (:func:`auto_threads`)
    or ``None`` (leave torch's default). Returns the number in use."""
    if num_threads == "auto":
        num_threads = auto_threads()
    if num_threads:
        torch.set_num_threads(int(num_threads))
    return torch.get_num_threads()


@contextlib.contextmanager
def using_threads(num_threads: int | str | None) -> Iterator[int]:
    """:func:`set_threads` for a block; torch's previous setting is restored after it."""
    previous = torch.get_num_threads()
    try:
        yield set_threads(num_threads)
    finally:
        torch.set_num_threads(previous)
