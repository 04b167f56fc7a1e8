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
- A run is its identity (:func:`train_identity`: the base model's content, the content of
  the ``images`` and ``conversations`` it reads, the recipe and the process count), recorded
  in ``train_log.json`` and in every step state. A rerun or resume with another identity
  raises :class:`~hf_vitcurate.errors.StaleStateError` naming what changed; the old
  checkpoint is never returned for other inputs.
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
from dataclasses import asdict
from typing import Sequence

# Re-exported: the data order lives in batching.py, shared with generation.
from .batching import global_batches, micro_batches, row_lengths, total_steps  # noqa: F401
from ..atomic import read_json, write_json
from ..errors import ConfigError
# The knobs of a run live in recipes.py beside the named presets; re-exported here.
from .recipes import NEUTRAL_FIELDS, PARTS, Recipe, make_recipe  # noqa: F401

# Parameter-name fragments of each part, across LLaVA-style families (LLaVA, LLaVA-NeXT,
# Qwen2-VL's ``visual`` tower with its ``merger``, Idefics ``connector``). Projector
# patterns are checked first: ``visual.merger`` is Qwen2-VL's projector inside ``visual``.
# image_newline: LLaVA-NeXT/OneVision's learned end-of-row embedding between image tiles, made
# and trained with the projector (it is no part of the language model's vocabulary).
PROJECTOR_NAMES = ("multi_modal_projector", "mm_projector", "visual.merger", "connector", "image_newline")
VISION_NAMES = ("vision_tower", "vision_model", "visual", "image_encoder")
STATE_FILE = "trainer_state.json"
LOG_FILE = "train_log.json"
# Descriptions of how a checkpoint was built (hf_vitcurate.testing; research/'s text stage); a fine-tune of it
# is the same architecture, so they travel along (recipes look for tiny_architecture.json).
SIDECAR_FILES = ("tiny_architecture.json", "vision_pretraining.json", "lm_pretraining.json")
TRAIN_COLUMNS = ("images", "conversations")


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
        raise ConfigError(f"no parameters matched train_parts={recipe.train_parts}: check the checkpoint's parameter names")
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
    fingerprint: str | None = None,
    **recipe,
) -> str:
    """Fine-tune the checkpoint ``model`` on ``ds``; save it to ``output_dir``.

    ``ds``: canonical rows (``images``, ``conversations``; other columns ignored).
    ``recipe``: the fields of :class:`Recipe` (``train_parts``, ``learning_rate``,
    ``epochs``/``max_steps``, ``batch_size``, ``grad_accum``, ``warmup_ratio``,
    ``lr_schedule``, ``weight_decay``, ``seed``, ``save_steps``, ...).
    A rerun with the same ``output_dir`` and the same inputs (:func:`train_identity`)
    resumes, or returns at once if finished; with another base model, other data or
    another recipe it raises :class:`~hf_vitcurate.errors.StaleStateError` naming what
    changed. ``restart=True`` deletes ``output_dir`` first. A base model that does not
    exist raises :class:`~hf_vitcurate.errors.NotFoundError` before anything else.
    ``fingerprint``: see :func:`train_identity`. Returns ``output_dir``, a checkpoint folder
    that :func:`load` and ``from_pretrained`` read.

    >>> path = train(ds, model="ckpt/tiny", output_dir="runs/ft", max_steps=20, batch_size=8)   # doctest: +SKIP
    """
    from .loading import using_threads

    from ..identity import ensure_same

    rec = make_recipe(**recipe)
    output_dir = os.fspath(output_dir)
    current = train_identity(ds, model=model, recipe=rec, fingerprint=fingerprint)
    if restart and os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    recorded, finished = recorded_identity(output_dir)
    if finished or recorded is not None or _last_checkpoint(output_dir):
        ensure_same(recorded, current, place=f"output_dir {output_dir!r}",
                    hint="use restart=True or another output_dir")
        if finished:
            return output_dir  # finished earlier with the same inputs: a rerun is a no-op
    with using_threads(rec.num_threads):
        return _run(os.fspath(model), ds, output_dir, rec, current)


def train_identity(ds, *, model: str | os.PathLike, recipe, fingerprint: str | None = None) -> dict:
    """The identity of a training run (:func:`hf_vitcurate.identity.identity`): what decides its result.

    The base model's content (or Hub commit), the content of the ``images`` and
    ``conversations`` columns in row order, the recipe (a :class:`Recipe` or its options;
    without :data:`NEUTRAL_FIELDS`) and the number of processes (each takes its own
    ``batch_size`` rows of every global batch). Raises ``NotFoundError`` for a missing model.
    ``fingerprint``: ``data_fingerprint(ds, ["images", "conversations"])`` (the columns it
    has) when the caller already computed it: the rows are not hashed again.

    >>> train_identity(ds, model="ckpt/tiny", recipe={"max_steps": 2})["key"]   # doctest: +SKIP
    '3f0c9a1e55d2b7a4'
    """
    from ..distributed import state
    from ..identity import identity

    rec = recipe if isinstance(recipe, Recipe) else make_recipe(**dict(recipe))
    params = {k: v for k, v in asdict(rec).items() if k not in NEUTRAL_FIELDS}
    params["processes"] = state().num_processes
    columns = [c for c in TRAIN_COLUMNS if c in ds.column_names]
    return identity(model=model, data=ds, columns=columns, params=params, fingerprint=fingerprint)


def recorded_identity(output_dir: str | os.PathLike) -> tuple[dict | None, bool]:
    """``(identity, finished)`` recorded in ``output_dir``: from ``train_log.json`` or the last step state.

    ``(None, False)`` when nothing was saved there yet.
    """
    log = read_json(os.path.join(output_dir, LOG_FILE)) or {}  # a write cut short by a kill reads as absent
    if log.get("complete"):
        return log.get("identity"), True
    last = _last_checkpoint(os.fspath(output_dir))
    if last:
        return (read_json(os.path.join(last, STATE_FILE)) or {}).get("identity"), False
    return None, False


def _run(base: str, dataset, output_dir: str, rec: Recipe, ident: dict) -> str:
    """The training loop of :func:`train` (arguments already checked)."""
    import torch

    from ..progress import progress

    accelerator, model, optimizer, processor = _setup(base, rec)
    data = dataset.select_columns([c for c in ("images", "conversations") if c in dataset.column_names])
    n = len(data)
    if n == 0:
        raise ConfigError("cannot train on an empty dataset: give at least one row")
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
            _save_state(accelerator, output_dir, run["step"], run["history"], time.perf_counter() - start_time,
                        run["rows_seen"], ident)
    bar.close()
    run["elapsed_s"] = time.perf_counter() - start_time
    _save_final(accelerator, model, processor, base, output_dir, rec,
                {"rows": n, "steps": steps, "processes": world, "dataset_fingerprint": getattr(dataset, "_fingerprint", None),
                 "identity": ident}, run)
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
            "identity": info["identity"],
        }
        write_json(os.path.join(output_dir, LOG_FILE), log, indent=2)
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


def _save_state(accelerator, output_dir: str, step: int, history, elapsed: float, rows_seen: int,
                identity: dict | None = None) -> None:
    """Full training state at ``step`` with the run's identity; older checkpoints are removed once it is written."""
    root = os.path.join(output_dir, "checkpoints")
    path = os.path.join(root, f"step-{step}")
    accelerator.save_state(path)
    if accelerator.is_main_process:
        write_json(os.path.join(path, STATE_FILE), {"step": step, "history": history, "elapsed_s": elapsed,
                                                    "rows_seen": rows_seen, "identity": identity})
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
