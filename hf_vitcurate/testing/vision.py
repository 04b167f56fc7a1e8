"""Pretrain a tiny checkpoint's vision tower on ShapesWorld: the local stand-in for CLIP.

LLaVA starts from a CLIP tower pretrained on hundreds of millions of images and keeps it
frozen. A tiny checkpoint has no such tower, and one at its random initialisation (or one
trained end to end from the language loss) leaves the language model to discover, from a
handful of answer tokens per row, both what each image patch shows and which patch a
question is about; on a 2-core CPU it learns neither in minutes (research/RESULTS.md,
"Tiny models"). :func:`pretrain_vision_tower` gives the tower what CLIP gives LLaVA:
features that already say what is where. It trains the tower, through small linear heads
that are thrown away afterwards, to tell from each patch token the shape, color and size
of the object in that cell (or that the cell is empty) and from the CLS token the number of
objects, on freshly drawn images of a separate seed stream (never the pool's images, never
the benchmark's). On 63-px images with 21-px patches (one patch per cell) a few hundred
steps reach ~99.9% per-cell accuracy in about 20 s on one CPU core.

This reads the scene's ground truth (shape, color, size, cell), as a supervised image
pretraining set would; it never reads any row's ``_truth``. The tower's weights are
written back into the checkpoint (or ``output_dir``) with ``save_pretrained``, so everything
downstream still loads it through the Auto classes, and the tiny recipes keep it frozen,
as LLaVA keeps CLIP frozen.

Example:
    >>> base = tiny_checkpoint(pool, output_dir="ckpt/tiny")        # doctest: +SKIP
    >>> pretrain_vision_tower(base, steps=300)["held_out"]["shape"]  # doctest: +SKIP
    0.999
"""

from __future__ import annotations

import json
import os
import time

from ..errors import ConfigError
from ..synthetic.world import COLOR_NAMES, MAX_OBJECTS, SHAPES, SIZES, make_scene, render

REPORT_FILE = "vision_pretraining.json"
# Seed stream of the tower's images: apart from pools (small seeds) and the benchmark stream.
VISION_SEED = 97_531


def _targets(scenes):
    """Per-cell labels (shape incl. 'empty', color, size; -100 = no object) and object counts."""
    import torch

    n = len(scenes)
    shape = torch.full((n, 9), len(SHAPES))
    color = torch.full((n, 9), -100)
    size = torch.full((n, 9), -100)
    for i, scene in enumerate(scenes):
        for o in scene.objects:
            shape[i, o.cell] = SHAPES.index(o.shape)
            color[i, o.cell] = COLOR_NAMES.index(o.color)
            size[i, o.cell] = SIZES.index(o.size)
    count = torch.tensor([len(s.objects) for s in scenes])
    return {"shape": shape, "color": color, "size": size, "count": count}


class _Tagger:
    """The tower plus throw-away linear heads that read each cell's object (and the CLS's count)."""

    def __init__(self, model, processor, seed: int):
        import torch

        self.model, self.processor = model, processor
        self.tower = model.model.vision_tower
        cfg = self.tower.config
        if cfg.image_size // cfg.patch_size != 3:
            side = cfg.image_size // cfg.patch_size
            raise ConfigError(
                f"the tower has {side}x{side} patches; pretrain_vision_tower needs one patch per "
                "ShapesWorld cell (3x3, e.g. image_size 63, patch_size 21)"
            )
        torch.manual_seed(seed)
        width = cfg.hidden_size
        self.heads = torch.nn.ModuleDict({
            "shape": torch.nn.Linear(width, len(SHAPES) + 1),  # + empty cell
            "color": torch.nn.Linear(width, len(COLOR_NAMES)),
            "size": torch.nn.Linear(width, len(SIZES)),
            "count": torch.nn.Linear(width, MAX_OBJECTS + 1),
        }).to(model.device)
        self.layer = model.config.vision_feature_layer  # the features LLaVA hands to the projector

    def parameters(self) -> list:
        return list(self.tower.parameters()) + list(self.heads.parameters())

    def batch(self, start: int, n: int, stream_seed: int):
        """Images ``start .. start + n - 1`` of a seed stream, as pixels and per-cell targets."""
        scenes = [make_scene(i, seed=stream_seed) for i in range(start, start + n)]
        pixels = self.processor.image_processor([render(s) for s in scenes], return_tensors="pt")["pixel_values"]
        targets = {k: v.to(self.model.device) for k, v in _targets(scenes).items()}
        return pixels.to(self.model.device, self.model.dtype), targets

    def loss_and_accuracy(self, pixels, targets):
        import torch

        hidden = self.tower(pixels, output_hidden_states=True).hidden_states[self.layer]
        cls, cells = hidden[:, 0], hidden[:, 1:]
        logits = {k: self.heads[k](cells) for k in ("shape", "color", "size")}
        logits["count"] = self.heads["count"](cls)
        loss = sum(torch.nn.functional.cross_entropy(logits[k].flatten(0, -2), targets[k].flatten()) for k in logits)
        acc = {}
        for k, lo in logits.items():
            valid = targets[k] != -100
            acc[k] = round(((lo.argmax(-1) == targets[k]) & valid).sum().item() / max(1, valid.sum().item()), 4)
        return loss, acc


def pretrain_vision_tower(
    model: str | os.PathLike,
    *,
    output_dir: str | os.PathLike | None = None,
    steps: int = 300,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    held_out: int = 256,
    num_threads: int | str | None = "auto",
    progress: bool = True,
) -> dict:
    """Train the tower of the checkpoint ``model`` to tag each ShapesWorld cell; save it; return a report.

    The checkpoint's patches must tile the image as ShapesWorld's 3×3 grid (e.g. 63 px,
    patch 21: the tiny default). ``output_dir`` (default: in place) receives the whole
    checkpoint with the new tower. The report (also written as ``vision_pretraining.json``)
    has the steps, seconds and held-out accuracies per target. ``num_threads``: torch CPU
    threads (``"auto"``, the default: the idle cores, so 1 on a busy machine, where two
    threads spinning at barriers made each small step several times slower).

    It steps through the package's update rule (``models.training.scheduled_update``: the
    recipe's schedule, clipping and AdamW settings) but not through :func:`~hf_vitcurate.models.train`'s
    loop: that loop trains parts of a checkpoint on the answer tokens of canonical rows, while
    this one trains the tower with heads that are not part of the checkpoint, on labels drawn
    fresh every step, with no rows, chunks or resume state to keep.
    """
    from ..models.loading import using_threads

    if steps < 1 or batch_size < 1:
        raise ConfigError(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}")
    with using_threads(num_threads):
        return _pretrain(model, output_dir, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                         seed=seed, held_out=held_out, progress=progress)


def _pretrain(model, output_dir, *, steps: int, batch_size: int, learning_rate: float, seed: int, held_out: int,
              progress: bool) -> dict:
    """The loop of :func:`pretrain_vision_tower` (arguments checked, threads set)."""
    import torch

    from ..models.loading import load, rewrite_target
    from ..models.training import make_recipe, scheduled_update
    from ..progress import progress as progress_bar

    source, out = rewrite_target(model, output_dir)
    # float32 on any device: a tiny tower trained in bf16 loses the per-cell precision it is for.
    loaded, processor = load(source, dtype=torch.float32)
    tagger = _Tagger(loaded, processor, seed)
    tagger.tower.train()
    for p in tagger.tower.parameters():
        p.requires_grad_(True)
    # Linear warmup, then cosine to zero (a constant rate left spikes).
    recipe = make_recipe(learning_rate=learning_rate, warmup_ratio=1 / 15, lr_schedule="cosine", min_lr_ratio=0.0,
                         weight_decay=0.0, max_grad_norm=1.0)
    opt = torch.optim.AdamW(tagger.parameters(), lr=learning_rate, weight_decay=recipe.weight_decay, betas=recipe.adam_betas)
    bar = progress_bar(total=steps, desc="vision tower", unit="step", enabled=progress)
    start = time.time()
    stream = VISION_SEED + seed
    for step in range(steps):
        loss, _ = tagger.loss_and_accuracy(*tagger.batch(step * batch_size, batch_size, stream))
        loss.backward()
        scheduled_update(opt, step=step, total=steps, recipe=recipe)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    tagger.tower.eval()
    with torch.no_grad():
        _, accuracy = tagger.loss_and_accuracy(*tagger.batch(0, held_out, stream + 1))
    for p in tagger.tower.parameters():
        p.requires_grad_(False)
    loaded.save_pretrained(out)
    report = {
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "seconds": round(time.time() - start, 1),
        "held_out": accuracy,
        "held_out_images": held_out,
    }
    with open(os.path.join(out, REPORT_FILE), "w") as f:
        json.dump(report, f, indent=2)
    return report


TOWER_WEIGHTS = "vision_tower.safetensors"


def export_tower(model: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Write the vision tower of the checkpoint ``model`` (and its pretraining report) into ``folder``."""
    import shutil

    import torch
    from safetensors.torch import save_file

    from ..models.loading import load_model

    loaded = load_model(model, dtype=torch.float32, device="cpu")
    state = {k: v.contiguous() for k, v in loaded.model.vision_tower.state_dict().items()}
    save_file(state, os.path.join(folder, TOWER_WEIGHTS))
    shutil.copy2(os.path.join(model, REPORT_FILE), os.path.join(folder, REPORT_FILE))


def import_tower(folder: str | os.PathLike, model: str | os.PathLike) -> None:
    """Put the tower saved by :func:`export_tower` in ``folder`` into the checkpoint ``model``, in place."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from ..models.loading import load_model

    loaded = load_model(model, dtype=torch.float32, device="cpu")
    loaded.model.vision_tower.load_state_dict(load_file(os.path.join(folder, TOWER_WEIGHTS)))
    loaded.save_pretrained(model)
    shutil.copy2(os.path.join(folder, REPORT_FILE), os.path.join(model, REPORT_FILE))
