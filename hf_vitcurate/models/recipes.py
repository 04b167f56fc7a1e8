"""Training recipes: the knobs of a run (:class:`Recipe`), LLaVA-1.5's two stages, the CPU recipes for tiny checkpoints.

``vitcurate train --recipe NAME`` starts from one of :data:`PRESETS`. The ``tiny`` ones are
plain dictionaries here so the CLI needs nothing else; ``hf_vitcurate.testing`` builds the
tiny checkpoints they are tuned for, and explains the choices (``testing.recipes``).

Example:
    >>> recipe_preset("tiny")["train_parts"]
    ('projector', 'language')
    >>> sorted(PRESETS)
    ['llava', 'llava-pretrain', 'tiny', 'tiny-pretrain']
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Sequence

from ..errors import ConfigError

PARTS = ("vision", "projector", "language")
# Recipe fields that change how a run is watched or how fast it goes, not what it computes:
# left out of a run's identity (a resume with other threads or another save interval is the same run).
NEUTRAL_FIELDS = ("progress", "log_steps", "save_steps", "num_threads", "num_workers")


@dataclass
class Recipe:
    """The knobs of a training run; defaults are LLaVA-1.5 stage 2 (visual instruction tuning)."""

    train_parts: Sequence[str] = ("projector", "language")  # the vision tower stays frozen
    learning_rate: float = 2e-5
    part_lr: dict[str, float] = field(default_factory=dict)  # e.g. {"vision": 2e-6}
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs
    batch_size: int = 16  # rows per process per micro-batch
    grad_accum: int = 1
    warmup_ratio: float = 0.03
    lr_schedule: str = "cosine"  # cosine | linear | constant
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float | None = 1.0
    max_length: int | None = None
    group_by_length: bool = True  # batches of similar length: less padding
    seed: int = 0
    save_steps: int = 500
    log_steps: int = 10
    mixed_precision: str | None = None  # None: accelerate's config ("bf16" on GPUs)
    dtype: str | None = "auto"  # weights dtype when loading
    gradient_checkpointing: bool = False
    num_threads: int | str | None = None  # CPU threads for torch; "auto": the idle cores
    num_workers: int = 0  # DataLoader workers decoding images / tokenizing
    progress: bool = True

    def __post_init__(self) -> None:
        self.train_parts = tuple(self.train_parts)
        unknown = set(self.train_parts) - set(PARTS)
        if unknown or not self.train_parts:
            raise ConfigError(f"train_parts must be a non-empty subset of {PARTS}, got {self.train_parts}")
        if self.lr_schedule not in ("cosine", "linear", "constant"):
            raise ConfigError(f"lr_schedule must be cosine, linear or constant, got {self.lr_schedule!r}")
        self.adam_betas = tuple(self.adam_betas)


def make_recipe(**recipe) -> Recipe:
    """A :class:`Recipe` from keyword knobs; unknown names raise ``TypeError`` naming them."""
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(recipe) - known)
    if unknown:
        raise TypeError(f"unknown recipe option(s) {unknown}; known: {sorted(known)}")
    return Recipe(**recipe)


# LLaVA-1.5 stage 2 (visual instruction tuning): the defaults of training.Recipe.
LLAVA_RECIPE: dict[str, Any] = {}
# LLaVA-1.5 stage 1: projector only, lr 1e-3, on captions.
LLAVA_PRETRAIN_RECIPE: dict[str, Any] = {"train_parts": ("projector",), "learning_rate": 1e-3}
_TINY_COMMON: dict[str, Any] = {
    "train_parts": ("projector", "language"),
    "learning_rate": 1e-3,
    "batch_size": 32,
    "warmup_ratio": 0.03,
    "lr_schedule": "cosine",
    "min_lr_ratio": 0.1,
    "weight_decay": 0.0,
    "save_steps": 200,
    "num_threads": "auto",  # 1 thread when other jobs keep the cores busy (see loading.auto_threads)
}
# The CPU stage 1 (projector + language model, tower frozen) and fine-tune of tiny checkpoints.
TINY_PRETRAIN_RECIPE: dict[str, Any] = {**_TINY_COMMON, "epochs": 1.0}
TINY_RECIPE: dict[str, Any] = {**_TINY_COMMON, "epochs": 2.0}
PRESETS = {
    "llava": LLAVA_RECIPE,
    "llava-pretrain": LLAVA_PRETRAIN_RECIPE,
    "tiny": TINY_RECIPE,
    "tiny-pretrain": TINY_PRETRAIN_RECIPE,
}


def recipe_preset(name: str) -> dict[str, Any]:
    """A copy of the named recipe (``llava``, ``llava-pretrain``, ``tiny``, ``tiny-pretrain``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown recipe {name!r}; choose from {sorted(PRESETS)}")
    return dict(PRESETS[name])
