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
import inspect
import os
import re
import shutil
import warnings
from collections.abc import Iterator

import torch

from ..errors import ConfigError


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


class _NoVideo:
    """Stands in for the video processor :func:`image_only` leaves out: its settings read as None
    (SmolVLM's ``apply_chat_template`` reads ``num_frames`` and ``fps`` even for images), and
    processing a video fails with a one-line error saying why."""

    def __init__(self, processor: str):
        self.processor = processor

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def __call__(self, *args, **kwargs):
        raise ImportError(f"{self.processor} was loaded without its video processor because torchvision is not "
                          "installed: install a torchvision build that matches torch to process videos")


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
              f"    _cls.__init__(self, {''.join(f'{n}={n}, ' for n in names)}video_processor=None, **kwargs)\n"
              f"    self.video_processor = _NoVideo(_cls.__name__)\n")
    scope = {"_cls": cls, "_defaults": defaults, "_NoVideo": _NoVideo}
    exec(source, scope)  # noqa: S102 - a fixed template over the class's own parameter names
    __init__ = scope["__init__"]
    return type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__, "__doc__": cls.__doc__})


def _config_value(model: str, key: str, files: tuple[str, ...]) -> str | None:
    """``key`` of the first of the checkpoint's JSON ``files`` that has it; None when none does or
    the files cannot be read (the caller then keeps ``transformers``' own error)."""
    import json

    from transformers.utils import cached_file

    for name in files:
        try:
            path = cached_file(model, name, _raise_exceptions_for_missing_entries=False)
            if path is not None:
                with open(path) as f:
                    found = json.load(f).get(key)
                if found:
                    return found
        except (OSError, ValueError):
            return None
    return None


def _processor_class_name(model: str) -> str | None:
    """The ``processor_class`` a checkpoint names (processor, image processor or tokenizer
    config, as ``AutoProcessor`` looks for it)."""
    return _config_value(model, "processor_class",
                         ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"))


def load_processor(model: str | os.PathLike):
    """The processor (image processor + tokenizer + chat template) of the checkpoint ``model``.

    ``AutoProcessor`` first. Without torchvision: where the processor also handles video, the
    same class without its video processor (:func:`image_only`); where its image processor
    itself needs torchvision in this ``transformers`` release (Idefics3 and SmolVLM at 5.15),
    that class built with the PIL image processor (:func:`pil_image_processor`). With torchvision,
    a checkpoint saved without it (no ``video_preprocessor_config.json``) also loads image-only.
    A processor without a chat template (PaliGemma's prefix/suffix prompts) is a ConfigError
    here: the package renders every conversation through the template.
    """
    import importlib.util

    import transformers
    from transformers import AutoProcessor

    model = os.fspath(model)
    try:
        processor = AutoProcessor.from_pretrained(model)
    except (ImportError, AttributeError, ValueError, TypeError, OSError) as exc:
        # A checkpoint saved where torchvision was missing has no video processor config, which
        # AutoProcessor then wants wherever torchvision is installed; images need none.
        no_video = isinstance(exc, OSError) and "video" in str(exc).lower()
        if importlib.util.find_spec("torchvision") is not None and not no_video:
            raise
        name = _processor_class_name(model)
        cls = getattr(transformers, name, None) if name else None
        if cls is None:
            raise
        processor = _without_torchvision(image_only(cls), model)
    return _with_chat_template(processor, model)


def _without_torchvision(cls, model: str):
    """``cls.from_pretrained(model)``; where the image processor needs torchvision, ``cls`` built from
    the checkpoint's processor config, its tokenizer and :func:`pil_image_processor`."""
    try:
        return cls.from_pretrained(model)
    except (ImportError, ValueError) as exc:
        if "orchvision" not in str(exc) or "image_processor" not in cls.get_attributes():
            raise
    from transformers import AutoTokenizer

    made = {"image_processor": pil_image_processor(model), "tokenizer": AutoTokenizer.from_pretrained(model)}
    if set(cls.get_attributes()) - set(made):
        raise ImportError(f"{cls.__name__} needs torchvision for {sorted(set(cls.get_attributes()) - set(made))}")
    processor_dict, _ = cls.get_processor_dict(model)
    accepted = inspect.signature(cls.__init__).parameters
    options = {k: v for k, v in processor_dict.items() if k in accepted and k not in made}
    return cls(**made, **options)


def _with_chat_template(processor, model: str):
    """``processor``, or a one-line ConfigError where it has no chat template to render rows with."""
    if getattr(processor, "chat_template", None):
        return processor
    model_type = _model_type(model)
    raise ConfigError(f"{model}: {type(processor).__name__} ({model_type or 'unknown model type'}) has no chat "
                      "template, so conversations cannot be rendered (prefix/suffix prompts such as PaliGemma's "
                      "are not supported); use a checkpoint with a chat template or set processor.chat_template "
                      "and save_pretrained it")


def _model_type(model: str) -> str | None:
    """``model_type`` of the checkpoint's config.json; None when it has none or it cannot be read."""
    return _config_value(model, "model_type", ("config.json",))


def pil_image_processor_class(name: str):
    """The image processor class ``name`` with the PIL backend, importable without torchvision.

    ``name`` is a checkpoint's ``image_processor_type`` (``XImageProcessor``, ``...Fast`` or
    ``...Pil``). ``transformers`` 5 names the torchvision class ``XImageProcessor`` and its PIL
    twin ``XImageProcessorPil`` (same pixels); 4.x named them ``...Fast`` and ``XImageProcessor``.
    Some releases (5.15: Idefics3, SmolVLM) list a PIL class as needing torchvision although
    its module does not import it, so the class is taken from its module. None when neither
    exists without torchvision.

    >>> pil_image_processor_class("Qwen2VLImageProcessorFast").__name__
    'Qwen2VLImageProcessorPil'
    """
    import importlib
    import sys

    import transformers

    base = name.removesuffix("Fast").removesuffix("Pil")
    modules = getattr(sys.modules["transformers"], "_class_to_module", {})
    for candidate in (base + "Pil", base):
        if candidate in modules:
            try:
                return getattr(importlib.import_module("transformers." + modules[candidate]), candidate)
            except (ImportError, AttributeError):  # that backend needs torchvision: try the next name
                continue
        found = getattr(transformers, candidate, None)
        if found is not None:
            return found
    return None


def pil_image_processor(model: str | os.PathLike):
    """The checkpoint's image processor, built with the PIL backend (no torchvision needed).

    Some ``transformers`` releases make ``AutoImageProcessor`` itself need torchvision, which the
    package does not require; the class named in the checkpoint's processor config falls back
    to its PIL twin (:func:`pil_image_processor_class`), which gives the same pixels.

    >>> pil_image_processor("ckpt/tiny")        # doctest: +SKIP
    """
    from transformers.image_processing_base import ImageProcessingMixin

    model = os.fspath(model)
    config, _ = ImageProcessingMixin.get_image_processor_dict(model)
    name = str(config.get("image_processor_type") or "")
    cls = pil_image_processor_class(name) if name else None
    if cls is None:
        raise ConfigError(f"{model}: no image processor class without torchvision for {name or 'its config'}; "
                          "install torchvision or give a checkpoint with a preprocessor_config.json")
    return cls.from_pretrained(model)


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
