"""Fine-tune (or pretrain) any image-text checkpoint on a canonical dataset: the LLaVA recipe.

:func:`train` loads a checkpoint with the Auto classes, trains the chosen parts
(``vision``, ``projector``, ``language``) on the ``gpt`` tokens of every row and saves
a checkpoint folder (model + processor) that loads like any other. The same code runs
on one CPU, one GPU or under ``accelerate launch`` (it uses ``Accelerator``; each
process takes its own slice of every global batch).

- Data order is a pure function of ``seed`` and the epoch, so a run is reproducible and
  a resumed run sees exactly the batches it had left.
- Every ``save_steps`` optimizer steps the full state (weights, optimizer, RNG) goes to
  ``output_dir/checkpoints/step-N``; calling :func:`train` again with the same ``output_dir``
  continues from the last one, and returns at once if the run had finished
  (``restart=True`` discards both and starts over).
- The learning rate is a function of the step (linear warmup, then cosine/linear/constant),
  so resuming needs no scheduler state.
- The loss is the sum of answer-token NLL over the whole step (all micro-batches, all
  processes) divided by its token count: long and short answers weigh per token, as in
  LLaVA, whatever the batch split.

:func:`pretrain` is LLaVA stage 1 (projector only, captions, lr 1e-3). A checkpoint that
starts from random weights (``hf_vitcurate.testing``) has no vision features to align, so its
recipe trains the vision tower too: ``pretrain(..., train_parts=("vision", "projector"))``.

Example:
    >>> path = train(ds, model="ckpt/tiny", output_dir="runs/ft", **tiny_recipe())   # doctest: +SKIP
    $ accelerate launch --num_processes 2 -m hf_vitcurate.cli train data --model ckpt/tiny --output runs/ft
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Sequence

# Re-exported: the data order lives in batching.py, shared with generation.
from .batching import global_batches, micro_batches, row_lengths, total_steps  # noqa: F401

PARTS = ("vision", "projector", "language")
# Parameter-name fragments of each part, across LLaVA-style families (LLaVA, LLaVA-NeXT,
# Qwen2-VL's ``visual`` tower with its ``merger``, Idefics ``connector``). Projector
# patterns are checked first: ``visual.merger`` is Qwen2-VL's projector inside ``visual``.
PROJECTOR_NAMES = ("multi_modal_projector", "mm_projector", "visual.merger", "connector")
VISION_NAMES = ("vision_tower", "vision_model", "visual", "image_encoder")
STATE_FILE = "trainer_state.json"
LOG_FILE = "train_log.json"
# Descriptions of how a checkpoint was built (hf_vitcurate.testing; research/'s text stage); a fine-tune of it
# is the same architecture, so they travel along (recipes look for tiny_architecture.json).
SIDECAR_FILES = ("tiny_architecture.json", "vision_pretraining.json", "lm_pretraining.json")


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
            raise ValueError(f"train_parts must be a non-empty subset of {PARTS}, got {self.train_parts}")
        if self.lr_schedule not in ("cosine", "linear", "constant"):
            raise ValueError(f"lr_schedule must be cosine, linear or constant, got {self.lr_schedule!r}")
        self.adam_betas = tuple(self.adam_betas)


def make_recipe(**recipe) -> Recipe:
    """A :class:`Recipe` from keyword knobs; unknown names raise ``TypeError`` naming them."""
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(recipe) - known)
    if unknown:
        raise TypeError(f"unknown recipe option(s) {unknown}; known: {sorted(known)}")
    return Recipe(**recipe)


def part_of(name: str) -> str:
    """Which part a parameter belongs to: ``vision``, ``projector`` or ``language``."""
    if any(p in name for p in PROJECTOR_NAMES):
        return "projector"
    if any(p in name for p in VISION_NAMES):
        return "vision"
    return "language"


def lr_at(step: int, total: int, recipe: Recipe, base: float) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of ``total``."""
    warmup = math.ceil(recipe.warmup_ratio * total)
    if step < warmup:
        return base * (step + 1) / warmup
    if recipe.lr_schedule == "constant":
        return base
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = base * recipe.min_lr_ratio
    if recipe.lr_schedule == "linear":
        return floor + (base - floor) * (1 - progress)
    return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def scheduled_update(optimizer, *, step: int, total: int, recipe: Recipe, clip=None) -> None:
    """Optimizer update ``step`` (0-based) of ``total``: each group's scheduled rate, clipping, step.

    The one update rule of the package: :func:`train` and the vision-tower stand-in
    (``hf_vitcurate.testing.pretrain_vision_tower``) both step through it. A group's rate is
    :func:`lr_at` of its ``base_lr`` (default ``recipe.learning_rate``); ``clip(max_norm)``
    clips the gradients when ``recipe.max_grad_norm`` is set (default: ``clip_grad_norm_``
    over the optimizer's parameters; :func:`train` passes Accelerate's).

    >>> import torch
    >>> p = torch.nn.Parameter(torch.ones(1)); opt = torch.optim.SGD([p], lr=1.0)
    >>> p.grad = torch.ones(1); scheduled_update(opt, step=0, total=10, recipe=make_recipe(learning_rate=0.5))
    >>> opt.param_groups[0]["lr"], p.grad is None
    (0.5, True)
    """
    import torch

    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, total, recipe, group.get("base_lr", recipe.learning_rate))
    if recipe.max_grad_norm:
        if clip is None:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
        else:
            clip(recipe.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _collate(rows: list[dict], *, processor, max_length: int | None) -> dict:
    """A micro-batch of dataset rows, encoded (chat template, image pixels, gpt-only labels)."""
    from .chat import encode

    cols = {k: [r[k] for r in rows] for k in rows[0]}
    return encode(processor, cols, max_length=max_length)


def _last_checkpoint(output_dir: str) -> str | None:
    root = os.path.join(output_dir, "checkpoints")
    if not os.path.isdir(root):
        return None
    done = [d for d in os.listdir(root) if os.path.exists(os.path.join(root, d, STATE_FILE))]
    return os.path.join(root, max(done, key=lambda d: int(d.split("-")[-1]))) if done else None


def _optimizer(model, recipe: Recipe):
    """AdamW over the trained parts; no weight decay on biases and norms (as HF Trainer)."""
    import torch

    groups: dict[tuple[str, bool], list] = {}
    for name, param in model.named_parameters():
        part = part_of(name)
        param.requires_grad_(part in recipe.train_parts)
        if not param.requires_grad:
            continue
        decay = param.ndim >= 2 and "norm" not in name.lower()
        groups.setdefault((part, decay), []).append(param)
    if not groups:
        raise ValueError(f"no parameters matched train_parts={recipe.train_parts}")
    param_groups = [
        {
            "params": params,
            "weight_decay": recipe.weight_decay if decay else 0.0,
            "base_lr": recipe.part_lr.get(part, recipe.learning_rate),
            "lr": recipe.part_lr.get(part, recipe.learning_rate),
            "part": part,
        }
        for (part, decay), params in groups.items()
    ]
    return torch.optim.AdamW(param_groups, betas=recipe.adam_betas)


def train(
    ds,
    *,
    model: str | os.PathLike,
    output_dir: str | os.PathLike,
    restart: bool = False,
    **recipe,
) -> str:
    """Fine-tune the checkpoint ``model`` on ``ds``; save it to ``output_dir``.

    ``ds``: canonical rows (``images``, ``conversations``; other columns ignored).
    ``recipe``: the fields of :class:`Recipe` (``train_parts``, ``learning_rate``,
    ``epochs``/``max_steps``, ``batch_size``, ``grad_accum``, ``warmup_ratio``,
    ``lr_schedule``, ``weight_decay``, ``seed``, ``save_steps``, ...).
    A rerun with the same ``output_dir`` resumes (or returns at once if finished);
    ``restart=True`` deletes ``output_dir`` first. Returns ``output_dir``, a checkpoint
    folder that :func:`load` and ``from_pretrained`` read.

    >>> path = train(ds, model="ckpt/tiny", output_dir="runs/ft", max_steps=20, batch_size=8)   # doctest: +SKIP
    """
    from .loading import using_threads

    rec = make_recipe(**recipe)
    output_dir = os.fspath(output_dir)
    log_path = os.path.join(output_dir, LOG_FILE)
    if restart and os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    if os.path.exists(log_path):
        with open(log_path) as f:
            if json.load(f).get("complete"):
                return output_dir  # finished earlier: a rerun is a no-op
    with using_threads(rec.num_threads):
        return _run(os.fspath(model), ds, output_dir, rec)


def _run(base: str, dataset, output_dir: str, rec: Recipe) -> str:
    """The training loop of :func:`train` (arguments already checked)."""
    import torch

    from ..progress import progress

    accelerator, model, optimizer, processor = _setup(base, rec)
    data = dataset.select_columns([c for c in ("images", "conversations") if c in dataset.column_names])
    n = len(data)
    if n == 0:
        raise ValueError("cannot train on an empty dataset")
    world, rank = accelerator.num_processes, accelerator.process_index
    steps = total_steps(n, rec, world)
    lengths = row_lengths(data) if rec.group_by_length else None
    run = _resume(accelerator, output_dir)

    loader = torch.utils.data.DataLoader(
        data,
        batch_sampler=list(micro_batches(n, rec, world, rank, lengths, run["step"] * rec.grad_accum, steps * rec.grad_accum)),
        # A module-level function, not a closure: DataLoader workers started by spawn pickle it.
        collate_fn=functools.partial(_collate, processor=processor, max_length=rec.max_length),
        num_workers=rec.num_workers,
    )
    batches = iter(loader)
    bar = progress(total=steps, initial=run["step"], desc="train", enabled=rec.progress and accelerator.is_main_process)
    start_time = time.perf_counter() - run["elapsed_s"]
    window_loss, window_tokens = 0.0, 0.0
    while run["step"] < steps:
        micro = [next(batches) for _ in range(rec.grad_accum)]
        step_loss, local_tokens = _optimizer_step(accelerator, model, optimizer, micro, rec, (run["step"], steps))
        run["rows_seen"] += sum(len(b["labels"]) for b in micro) * world
        run["step"] += 1
        window_loss += step_loss
        window_tokens += local_tokens
        if run["step"] % rec.log_steps == 0 or run["step"] == steps:
            mean = window_loss / max(window_tokens, 1)
            run["history"].append({"step": run["step"], "loss": round(mean, 5), "lr": optimizer.param_groups[0]["lr"]})
            window_loss, window_tokens = 0.0, 0.0
            bar.set_postfix(loss=f"{mean:.4f}")
        bar.update(1)
        if rec.save_steps and run["step"] % rec.save_steps == 0 and run["step"] < steps:
            _save_state(accelerator, output_dir, run["step"], run["history"], time.perf_counter() - start_time, run["rows_seen"])
    bar.close()
    run["elapsed_s"] = time.perf_counter() - start_time
    _save_final(accelerator, model, processor, base, output_dir, rec,
                {"rows": n, "steps": steps, "processes": world, "dataset_fingerprint": getattr(dataset, "_fingerprint", None)}, run)
    return output_dir


def _setup(base: str, rec: Recipe):
    """``(accelerator, model, optimizer, processor)``, model and optimizer prepared for training."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    from ..distributed import use_cpu
    from .loading import load_model, load_processor

    # Text-only batches leave the vision tower and projector without gradients: DDP must allow it.
    accelerator = Accelerator(
        cpu=use_cpu(),  # multi-process CPU runs need it (see distributed.use_cpu)
        mixed_precision=rec.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    set_seed(rec.seed)
    processor = load_processor(base)
    model = load_model(base, dtype=rec.dtype, device=accelerator.device)
    if rec.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.config.use_cache = False
    optimizer = _optimizer(model, rec)
    model.train()
    model, optimizer = accelerator.prepare(model, optimizer)
    return accelerator, model, optimizer, processor


def _resume(accelerator, output_dir: str) -> dict:
    """The run's counters, loaded with the full state from the last saved step if there is one."""
    run = {"step": 0, "history": [], "elapsed_s": 0.0, "rows_seen": 0, "resumed_from_step": None}
    resume_from = _last_checkpoint(output_dir)
    if resume_from:
        accelerator.load_state(resume_from)
        with open(os.path.join(resume_from, STATE_FILE)) as f:
            state = json.load(f)
        run.update({k: state[k] for k in ("step", "history", "elapsed_s", "rows_seen")}, resumed_from_step=state["step"])
    return run


def _optimizer_step(accelerator, model, optimizer, micro: list[dict], rec: Recipe, at: tuple[int, int]) -> tuple[float, int]:
    """Optimizer step ``at = (step, total)`` over the micro-batches ``micro``: ``(summed NLL, answer tokens)`` of this process."""
    import torch

    from .chat import model_inputs
    from .loss import token_nll

    world = accelerator.num_processes
    local_tokens = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)
    global_tokens = accelerator.reduce(torch.tensor(float(local_tokens), device=accelerator.device), "sum").item()
    step_loss = 0.0
    for i, batch in enumerate(micro):
        labels = batch["labels"].to(accelerator.device)
        # Gradients are synchronised once per step, on the last micro-batch.
        sync = accelerator.no_sync(model) if i < len(micro) - 1 else contextlib.nullcontext()
        with sync, accelerator.autocast():
            logits = model(**model_inputs(batch, accelerator.unwrap_model(model))).logits
            nll, _ = token_nll(logits, labels)
            # DDP averages gradients over processes: scale so the result is sum / global tokens.
            loss = nll.sum() * world / max(global_tokens, 1.0)
        accelerator.backward(loss)
        step_loss += nll.sum().item()
    scheduled_update(optimizer, step=at[0], total=at[1], recipe=rec,
                     clip=lambda norm: accelerator.clip_grad_norm_(model.parameters(), norm))
    return step_loss, local_tokens


def _save_final(accelerator, model, processor, base: str, output_dir: str, rec: Recipe, info: dict, run: dict) -> None:
    """Save the trained checkpoint, its sidecar files and ``train_log.json``; drop the step states."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.config.use_cache = True
        unwrapped.save_pretrained(output_dir, state_dict=accelerator.get_state_dict(model))
        processor.save_pretrained(output_dir)
        for name in SIDECAR_FILES:
            if os.path.isfile(os.path.join(base, name)):
                shutil.copy2(os.path.join(base, name), os.path.join(output_dir, name))
        elapsed, rows_seen = run["elapsed_s"], run["rows_seen"]
        log = {
            "complete": True,
            "model": base,
            "rows": info["rows"],
            "steps": info["steps"],
            "processes": info["processes"],
            "rows_seen": rows_seen,
            "resumed_from_step": run["resumed_from_step"],
            "train_seconds": round(elapsed, 2),
            "rows_per_second": round(rows_seen / max(elapsed, 1e-9), 2),
            "recipe": _jsonable(asdict(rec)),
            "history": run["history"],
            "dataset_fingerprint": info["dataset_fingerprint"],
        }
        with open(os.path.join(output_dir, LOG_FILE), "w") as f:
            json.dump(log, f, indent=2)
        shutil.rmtree(os.path.join(output_dir, "checkpoints"), ignore_errors=True)
    accelerator.wait_for_everyone()


def pretrain(
    ds,
    *,
    model: str | os.PathLike,
    output_dir: str | os.PathLike,
    train_parts: Sequence[str] = ("projector",),
    learning_rate: float = 1e-3,
    **recipe,
) -> str:
    """LLaVA stage 1: align vision and language on captions (f_pre); returns ``output_dir``.

    ``ds`` holds caption rows (image + "describe" prompt + caption). LLaVA trains the
    projector alone (the default). A checkpoint with a randomly initialised vision tower
    (``hf_vitcurate.testing``) needs ``train_parts=("vision", "projector")``: there is no
    pretrained CLIP to keep frozen, so the tower learns its features here (a deliberate deviation).

    >>> f_pre = pretrain(captions, model="ckpt/tiny", output_dir="runs/pre", train_parts=("vision", "projector"))  # doctest: +SKIP
    """
    return train(ds, model=model, output_dir=output_dir, train_parts=train_parts, learning_rate=learning_rate, **recipe)


def _save_state(accelerator, output_dir: str, step: int, history, elapsed: float, rows_seen: int) -> None:
    """Full training state at ``step``; older checkpoints are removed once it is written."""
    root = os.path.join(output_dir, "checkpoints")
    path = os.path.join(root, f"step-{step}")
    accelerator.save_state(path)
    if accelerator.is_main_process:
        with open(os.path.join(path, STATE_FILE), "w") as f:
            json.dump({"step": step, "history": history, "elapsed_s": elapsed, "rows_seen": rows_seen}, f)
        for d in os.listdir(root):
            if d != f"step-{step}":
                shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    accelerator.wait_for_everyone()


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
