"""A hand-made canonical dataset and a very small architecture, for tests and examples.

``toy_dataset`` draws one colored shape per image and asks its color (one word answers a
model learns in a few steps), plus a text-only row and a two-turn row, so every code path
of batching (images and no images, several ``gpt`` turns) is exercised.

Example:
    >>> ds = toy_dataset(8)
    >>> len(ds), ds[0]["conversations"][1]["value"]
    (8, 'red')
"""

from __future__ import annotations

from .tiny import TinyArchitecture

TOY_COLORS = {"red": (220, 30, 30), "green": (30, 160, 50), "blue": (30, 70, 220), "yellow": (230, 200, 0)}
# Seconds to build and a few steps per second to train on one CPU core.
TOY_ARCHITECTURE = TinyArchitecture(
    image_size=32,
    patch_size=8,
    vision_width=32,
    vision_layers=1,
    vision_heads=2,
    vision_mlp=64,
    text_width=64,
    text_layers=2,
    text_heads=2,
    text_mlp=128,
    vocab_size=400,
    max_positions=256,
)


def toy_dataset(n_rows: int = 32, seed: int = 0):
    """``n_rows`` canonical rows: color questions about one square, one text-only, one two-turn row."""
    import random

    from datasets import Dataset
    from PIL import Image, ImageDraw

    from ..schema import FEATURES

    rng = random.Random(seed)
    names = list(TOY_COLORS)
    rows: dict[str, list] = {"id": [], "images": [], "conversations": [], "source": [], "task": []}
    for i in range(n_rows):
        color = names[i % len(names)]
        im = Image.new("RGB", (32, 32), (245, 245, 245))
        # Large enough that most patches show the color: a few training steps learn it.
        x, y = rng.randint(0, 6), rng.randint(0, 6)
        ImageDraw.Draw(im).rectangle((x, y, x + 25, y + 25), fill=TOY_COLORS[color])
        if i == 1:  # text-only
            conv = [{"from": "human", "value": "Name a color."}, {"from": "gpt", "value": "blue"}]
            images = []
        elif i == 2:  # two turns, the image in the first
            conv = [
                {"from": "human", "value": "<image>\nWhat color is the square?"},
                {"from": "gpt", "value": color},
                {"from": "human", "value": "Is it a square?"},
                {"from": "gpt", "value": "yes"},
            ]
            images = [im]
        else:
            conv = [{"from": "human", "value": "<image>\nWhat color is the square?"}, {"from": "gpt", "value": color}]
            images = [im]
        rows["id"].append(f"toy-{i}")
        rows["images"].append(images)
        rows["conversations"].append(conv)
        rows["source"].append("toy")
        rows["task"].append("text_only" if i == 1 else "short_vqa")
    return Dataset.from_dict(rows, features=FEATURES)
