"""ShapesWorld scenes: seeded ground truth and its rendering.

A scene is 1-6 objects on a plain light background. Each object has a shape, a color,
a size and a cell of a 3×3 grid (its position word, e.g. ``"top left"``), plus its box
in pixels. Everything a source or the benchmark says about an image is written from
this ground truth.

Why the images look the way they do: the tiny vision tower of the tiny LLaVA
checkpoints (patch 8 on 64×64, a few million parameters) must be able to learn *shapes*,
not only colors. So objects are large (small ≈ 13 px, large ≈ 20 px at 64×64, i.e. 2-3
patches wide), never overlap (one object per grid cell), are filled with one flat,
saturated color on a flat background, and the four shapes differ in their outline at
patch scale (round, full square, pointed triangle, thin-armed cross). Colors are far apart
in RGB. Positions are the cells of a 3×3 grid, so position words are unambiguous and
each object has its own cell; an object never crosses its cell's border, so with
``image_size=63`` and patch 21 every object lies inside exactly one patch.

Training and benchmark scenes come from separate seed streams and are also split by a
hash of their content (:func:`is_benchmark_scene`), so that no benchmark image is
pixel-identical to a training image, whatever the seeds.

Example:
    >>> s = make_scene(0, seed=0)
    >>> s.image_id, 1 <= len(s.objects) <= 6
    ('sw0-0000000', True)
    >>> render(s).size
    (64, 64)
"""

from __future__ import annotations

import io
import random
import zlib
from dataclasses import dataclass

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "cross")
COLORS = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (230, 200, 0),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "purple": (140, 40, 180),
}
COLOR_NAMES = tuple(COLORS)
SIZES = ("small", "large")
# Grid cells, row-major; the word is what questions and answers use. Names are
# unambiguous ("top middle", not "top", which an object at the top left also is).
CELLS = (
    "top left", "top middle", "top right",
    "middle left", "center", "middle right",
    "bottom left", "bottom middle", "bottom right",
)
BACKGROUND = (245, 245, 245)
MAX_OBJECTS = 6
COUNTS = tuple(str(n) for n in range(MAX_OBJECTS + 1))  # "0".."6"
# Share of scene space that goes to the benchmark (by content hash): 1 in BENCH_MOD.
BENCH_MOD = 8
TRAIN, BENCH = "train", "bench"


@dataclass(frozen=True)
class Obj:
    """One object: attributes plus its box ``(x1, y1, x2, y2)`` in pixels (x2, y2 exclusive)."""

    shape: str
    color: str
    size: str
    cell: int
    box: tuple[int, int, int, int]

    @property
    def position(self) -> str:
        return CELLS[self.cell]

    @property
    def column(self) -> int:
        return self.cell % 3

    @property
    def row(self) -> int:
        return self.cell // 3


@dataclass(frozen=True)
class Scene:
    """A drawn image's ground truth: its id, size in pixels and objects (sorted by cell)."""

    image_id: str
    image_size: int
    objects: tuple[Obj, ...]

    def norm_box(self, obj: Obj, digits: int = 2) -> tuple[float, float, float, float]:
        """Box of ``obj`` in [0, 1] coordinates, rounded like SVIT/Shikra boxes."""
        s = self.image_size
        return tuple(round(v / s, digits) for v in obj.box)  # type: ignore[return-value]

    def to_dict(self) -> dict:
        return {
            "image_id": self.image_id,
            "image_size": self.image_size,
            "objects": [
                {"shape": o.shape, "color": o.color, "size": o.size, "position": o.position, "box": list(o.box)}
                for o in self.objects
            ],
        }


def object_sizes(image_size: int) -> dict[str, int]:
    """Side length in pixels of small and large objects (≥ 12 px at 64×64)."""
    return {"small": max(8, round(image_size * 0.2)), "large": max(12, round(image_size * 0.31))}


def image_id(index: int, seed: int, stream: str = TRAIN) -> str:
    """Stable id of image ``index`` of a seed stream (``sw{seed}-…`` or ``swb{seed}-…``)."""
    return f"{'sw' if stream == TRAIN else 'swb'}{seed}-{index:07d}"


def is_benchmark_scene(objects: tuple[Obj, ...]) -> bool:
    """True when the content hash puts this layout in benchmark space (1 in ``BENCH_MOD``)."""
    key = ";".join(f"{o.shape},{o.color},{o.size},{o.box}" for o in objects)
    return zlib.crc32(key.encode()) % BENCH_MOD == 0


def make_scene(index: int, seed: int = 0, image_size: int = 64, stream: str = TRAIN) -> Scene:
    """The scene of image ``index`` in a seed stream; cheap, so it is recomputed, not stored."""
    # A string seed is hashed with SHA-512 by `random`: stable across runs and processes.
    rng = random.Random(f"shapesworld:{stream}:{seed}:{image_size}:{index}")
    sizes = object_sizes(image_size)
    cell_px = image_size / 3
    while True:
        n = rng.randint(1, MAX_OBJECTS)
        cells = sorted(rng.sample(range(9), n))
        objs = []
        for cell in cells:
            size = rng.choice(SIZES)
            side = sizes[size]
            x0, y0 = (cell % 3) * cell_px, (cell // 3) * cell_px
            slack = max(0, int(cell_px - side) - 1)
            x = int(x0) + rng.randint(0, slack)
            y = int(y0) + rng.randint(0, slack)
            objs.append(Obj(rng.choice(SHAPES), rng.choice(COLOR_NAMES), size, cell, (x, y, x + side, y + side)))
        objects = tuple(objs)
        # Rejection keeps the two streams' contents disjoint by construction.
        if is_benchmark_scene(objects) == (stream == BENCH):
            return Scene(image_id(index, seed, stream), image_size, objects)


def kind_scene(index: int, shape: str, seed: int = 0, image_size: int = 64) -> Scene:
    """A scene of 1-4 objects all of one ``shape`` (random colours, sizes, cells): a known
    "kind" of picture, for testing and measuring image search (``engine.collect``).

    >>> {o.shape for o in kind_scene(0, "circle").objects}
    {'circle'}
    """
    rng = random.Random(f"{shape}:{seed}:{index}")
    sizes, cell_px, objs = object_sizes(image_size), image_size / 3, []
    for cell in sorted(rng.sample(range(9), rng.randint(1, 4))):
        size = rng.choice(SIZES)
        side = sizes[size]
        slack = max(0, int(cell_px - side) - 1)
        x, y = int((cell % 3) * cell_px) + rng.randint(0, slack), int((cell // 3) * cell_px) + rng.randint(0, slack)
        objs.append(Obj(shape, rng.choice(COLOR_NAMES), size, cell, (x, y, x + side, y + side)))
    return Scene(f"{shape}-{seed}-{index}", image_size, tuple(objs))


def _draw(draw: ImageDraw.ImageDraw, o: Obj) -> None:
    x1, y1, x2, y2 = o.box
    fill = COLORS[o.color]
    w = x2 - x1
    if o.shape == "circle":
        draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=fill)
    elif o.shape == "square":
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=fill)
    elif o.shape == "triangle":
        draw.polygon([(x1 + w / 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=fill)
    elif o.shape == "cross":
        t = max(3, round(w / 3))  # arm width: a third of the side keeps the arms visible
        a = x1 + (w - t) // 2
        b = y1 + (w - t) // 2
        draw.rectangle((a, y1, a + t - 1, y2 - 1), fill=fill)
        draw.rectangle((x1, b, x2 - 1, b + t - 1), fill=fill)
    else:  # pragma: no cover - SHAPES is closed
        raise ValueError(f"unknown shape {o.shape!r}")


def render(scene: Scene) -> Image.Image:
    """Draw ``scene`` as an RGB PIL image."""
    im = Image.new("RGB", (scene.image_size, scene.image_size), BACKGROUND)
    draw = ImageDraw.Draw(im)
    for o in scene.objects:
        _draw(draw, o)
    return im


def png_bytes(scene: Scene) -> bytes:
    """PNG encoding of the rendered scene (what the ``Image`` feature stores)."""
    buf = io.BytesIO()
    render(scene).save(buf, format="PNG", optimize=False)
    return buf.getvalue()
