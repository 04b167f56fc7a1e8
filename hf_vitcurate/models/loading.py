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
import functools
import os
import re
import shutil
import warnings
from collections.abc import Iterator

import torch


def default_device() -> torch.device:
    """CUDA (this process's device under ``accelerate launch``) when present, else CPU."""
    if torch.cuda.is_available():
        from accelerate import PartialState

        return PartialState().device
    return torch.device("cpu")


@functools.lru_cache(maxsize=1)
def cpu_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX flags in /proc/cpuinfo).

    Elsewhere torch emulates bf16 matmuls: measured 5.4x slower than float32 on such a CPU.
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:  # not Linux: assume emulated (float32 is never the slow choice)
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> str | torch.dtype:
    """``"auto"``: bf16 on a GPU that supports it; on a CPU, the checkpoint's own dtype where the
    CPU has native bf16, else float32 (never an emulated bf16). Asking for bf16 on a CPU
    without native bf16 warns.

    >>> resolve_dtype("float32", torch.device("cpu"))
    'float32'
    """
    if dtype in (None, "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if device.type == "cpu" and not cpu_fast_bf16():
            return torch.float32
        return "auto"
    if device.type == "cpu" and dtype in ("bfloat16", torch.bfloat16) and not cpu_fast_bf16():
        warnings.warn("dtype bfloat16 on a CPU without AVX512-BF16/AMX is emulated (measured 5.4x slower than "
                      "float32): use dtype='auto' or 'float32'", stacklevel=3)
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


def image_only(cls):
    """``cls`` (a processor class) without its video processor, so it builds without torchvision.

    With ``transformers`` 5.x a processor that has a ``video_processor`` (Qwen2-VL, Qwen2.5-VL,
    Qwen3-VL, LLaVA-OneVision, InternVL, SmolVLM) cannot even be constructed without
    torchvision, and the only torchvision builds on PyPI are CUDA ones that do not load next
    to a CPU torch. Images never need the video processor: this subclass leaves it out of the
    processor's attributes (they are read from ``__init__``'s signature), so the same
    checkpoint loads with the image processor's PIL backend. Classes without a video
    processor come back unchanged.

    >>> import transformers
    >>> image_only(transformers.Qwen2VLProcessor).get_attributes()
    ['image_processor', 'tokenizer']
    """
    import inspect

    signature = inspect.signature(cls.__init__)
    if "video_processor" not in signature.parameters:
        return cls
    # ``from_pretrained`` reads the accepted arguments from ``__init__.__code__`` (not its
    # signature), so the replacement names every parameter itself.
    names = [n for n, p in signature.parameters.items() if n not in ("self", "video_processor")
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    defaults = {n: (None if signature.parameters[n].default is inspect.Parameter.empty
                    else signature.parameters[n].default) for n in names}
    source = (f"def __init__(self, {''.join(f'{n}=_defaults[{n!r}], ' for n in names)}**kwargs):\n"
              f"    _cls.__init__(self, {''.join(f'{n}={n}, ' for n in names)}video_processor=None, **kwargs)\n")
    scope = {"_cls": cls, "_defaults": defaults}
    exec(source, scope)  # noqa: S102 - a fixed template over the class's own parameter names
    __init__ = scope["__init__"]
    return type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__, "__doc__": cls.__doc__})


def _processor_class_name(model: str) -> str | None:
    """The ``processor_class`` a checkpoint names (processor, image processor or tokenizer
    config, as ``AutoProcessor`` looks for it); None when none does or the files cannot be read."""
    import json

    from transformers.utils import cached_file

    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        try:
            path = cached_file(model, name, _raise_exceptions_for_missing_entries=False)
            if path is not None:
                with open(path) as f:
                    found = json.load(f).get("processor_class")
                if found:
                    return found
        except (OSError, ValueError):  # unreadable: the caller re-raises AutoProcessor's own error
            return None
    return None


def load_processor(model: str | os.PathLike):
    """The processor (image processor + tokenizer + chat template) of the checkpoint ``model``.

    ``AutoProcessor`` first; where it needs torchvision that is not installed (processors that
    also handle video), the same class without its video processor (:func:`image_only`).
    """
    import importlib.util

    import transformers
    from transformers import AutoProcessor

    model = os.fspath(model)
    try:
        return AutoProcessor.from_pretrained(model)
    except (ImportError, AttributeError, ValueError, TypeError, OSError):
        if importlib.util.find_spec("torchvision") is not None:
            raise
        name = _processor_class_name(model)
        cls = getattr(transformers, name, None) if name else None
        if cls is None:
            raise
    return image_only(cls).from_pretrained(model)


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
