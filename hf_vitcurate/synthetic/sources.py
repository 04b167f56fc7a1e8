"""ShapesWorld source datasets: the embedded default pool, written from one ground truth.

:func:`shapesworld` draws ``n_images`` scenes, encodes each image once (PNG, into a
memory-mapped Arrow table) and writes every source with ``Dataset.from_generator`` in
chunks, so memory stays flat as the pool grows. The same image ids appear in several
sources, as COCO images do across LLaVA's datasets. Benchmark images come from a
separate seed stream and content space (see :mod:`.world`).

Degradation is deliberate and measured: per source, ``degrade`` sets the share of
``hallucination`` rows (wrong colors/shapes/counts/sizes/positions or yes/no), ``leak``
rows (an answer mentions "the caption"/"the description"/"the given information") and
``duplicate`` rows (a near-identical copy of an earlier row of the same image, placed a
few rows later). Hallucination and leak rates are shares of the non-duplicate rows;
the duplicate rate is a share of all rows. Rows are assigned by low-discrepancy
sequences, so realised rates match the configuration to within a row or two. Two more
pathologies are options of :func:`shapesworld` (:mod:`.pathologies`): ``easy`` rows per
image (redundant easy questions in ``mm_short_vqa``) and ``low_quality`` rows per image
of a low-quality source, ``web_vqa``.

**The ``_truth`` column** (``"clean"``, ``"hallucination"``, ``"leak"``, ``"duplicate"``, ``"easy"``)
is for measuring methods only. No stage, score or selection may read it; drop it
before handing a pool to a method if in doubt (``ds.remove_columns("_truth")``).

Example:
    >>> dd = shapesworld(40, seed=0)
    >>> sorted(dd)[:3]
    ['benchmark', 'captions', 'llava_complex']
    >>> dd["mm_short_vqa"][0]["conversations"][1]["from"]
    'gpt'
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
from datasets import Dataset, DatasetDict, Features, Value, concatenate_datasets

from .. import provenance
from ..errors import ConfigError, RunError
from ..schema import FEATURES
from .pathologies import LOW_QUALITY_RATES, LOW_QUALITY_SOURCE, easy_rows, write_easy, write_sloppy
from .world import TRAIN, make_scene, png_bytes
from .writers import WRITERS, write_caption, write_judgement, write_text_only

# name -> (task, what it mirrors). Tasks are the values of the canonical ``task`` column (hf_vitcurate.schema).
SOURCES: dict[str, tuple[str, str]] = {
    "llava_conv": ("conversation", "LLaVA-Instruct-150K conversation_58k: 2-4 questions of different kinds (color, shape, count, size, position, existence) with full-sentence answers."),
    "llava_detail": ("detail_description", "LLaVA detail_23k: a request for a detailed description and a paragraph naming every object with size, color, shape and position."),
    "llava_complex": ("complex_reasoning", "LLaVA complex_reasoning_77k: one question that needs counting, comparing counts, left/right relations or the majority color, answered with the reasoning."),
    "svit_referring": ("referring_qa", "SVIT referring QA: questions and answers that name objects by normalized boxes, <st>phrase<ed>[x1, y1, x2, y2] with 2 decimals."),
    "svit_judgement": ("judgement", "SVIT-style yes/no questions (existence and attribute claims) answered 'Yes, ...'/'No, ...', skewed about 20:1 towards yes as SVIT found."),
    "mm_multiple_choice": ("multiple_choice", "MMInstruct multiple choice: 4 options A-D, exactly one right, with the indicator 'Please choose the most appropriate option.', answered with the letter."),
    "mm_short_vqa": ("short_vqa", "MMInstruct / VQAv2-style short answers with 'Answer the question using a single word or phrase.'"),
    "captions": ("caption", "LLaVA pretraining (LCS-558K) captions: a brief-description prompt and a one-sentence caption listing every object (with grouped_captions > 0, that share of rows lists the objects grouped by shape or color, with their cells); for stage-1 pretraining."),
    "text_only": ("conversation", "ShareGPT-style text-only turns (arithmetic, number comparison, shape facts) with no image, as in LLaVA-v1.5-mix-665K."),
    LOW_QUALITY_SOURCE: ("short_vqa", "A low-quality web source: lowercase questions, sloppy answers ('red i think'), most of them wrong (LOW_QUALITY_RATES); off unless low_quality > 0."),
}
# Expected rows per image for each source (text_only: rows per image of the pool, no image).
DEFAULT_ROWS_PER_IMAGE: dict[str, float] = {
    "llava_conv": 1.0,
    "llava_detail": 0.5,
    "llava_complex": 0.5,
    "svit_referring": 0.5,
    "svit_judgement": 1.5,
    "mm_multiple_choice": 1.0,
    "mm_short_vqa": 1.5,
    "captions": 1.0,
    "text_only": 0.25,
    LOW_QUALITY_SOURCE: 0.0,  # off by default; shapesworld(low_quality=...) turns it on
}
# Default degradation: some sources only, at moderate rates.
DEFAULT_DEGRADE: dict[str, dict[str, float]] = {
    "llava_conv": {"hallucination": 0.15, "duplicate": 0.05},
    "llava_detail": {"leak": 0.2},
    "llava_complex": {"hallucination": 0.1, "leak": 0.1},
    "svit_referring": {"duplicate": 0.15},
    "svit_judgement": {"duplicate": 0.1},
    "mm_multiple_choice": {"hallucination": 0.1},
}
# Strong degradation for the clean-vs-degraded training experiment (training_pool).
DEGRADED: dict[str, dict[str, float]] = {
    name: ({"hallucination": 0.3, "leak": 0.3, "duplicate": 0.2} if name == "llava_detail" else {"hallucination": 0.5, "duplicate": 0.2})
    for name in SOURCES
    if name not in ("text_only", LOW_QUALITY_SOURCE)
}
STATUSES = ("clean", "hallucination", "leak", "duplicate", "easy")
SOURCE_FEATURES = Features({**FEATURES, "image_id": Value("string"), "_truth": Value("string")})
CHUNK = 1024  # images read from the image table at a time

# Irrational steps of the low-discrepancy sequences (one per decision, so they don't correlate).
_PHI = (math.sqrt(5) - 1) / 2
_SQRT2 = math.sqrt(2) - 1
_SQRT3 = math.sqrt(3) - 1


def _code_version() -> str:
    """Hash of this package's generator code: part of every cache fingerprint.

    ``datasets`` hashes the generator function by reference, so without this a code
    change would silently reuse stale cached tables.
    """
    h = hashlib.sha1()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _weyl(t: int, alpha: float, key: str) -> float:
    """Element ``t`` of a shifted Weyl sequence in [0, 1): evenly spread, deterministic."""
    offset = zlib.crc32(key.encode()) / 2**32
    return (offset + (t + 1) * alpha) % 1.0


def _check_degrade(degrade: dict[str, dict[str, float]]) -> None:
    for name, rates in degrade.items():
        if name not in SOURCES:
            raise ConfigError(f"degrade names unknown source {name!r}; sources are {list(SOURCES)}")
        bad = set(rates) - {"hallucination", "leak", "duplicate"}
        if bad:
            raise ConfigError(f"degrade[{name!r}] has unknown kind(s) {sorted(bad)}")
        if rates.get("hallucination", 0) + rates.get("leak", 0) > 1 or not 0 <= rates.get("duplicate", 0) <= 0.5:
            raise ConfigError(f"degrade[{name!r}]: hallucination + leak must be ≤ 1 and duplicate in [0, 0.5], got {rates}")


def _image_rows(n_images: int, seed: int, image_size: int, code: str) -> Iterator[dict[str, Any]]:
    for i in range(n_images):
        scene = make_scene(i, seed, image_size, TRAIN)
        yield {"image_id": scene.image_id, "png": png_bytes(scene)}


def _source_rows(
    source: str,
    n_images: int,
    seed: int,
    image_size: int,
    rows_per_image: float,
    rates: dict[str, float],
    style: str,
    yes_ratio: float,
    images_files: str,
    code: str,
    grouped: float = 0.0,
    easy: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """Rows of one source, image by image; near-duplicates are emitted a few rows later, easy rows after the image's own."""
    task = SOURCES[source][0]
    h, lk, dup = rates.get("hallucination", 0.0), rates.get("leak", 0.0), rates.get("duplicate", 0.0)
    p_dup = dup / (1 - dup)  # copies per original row, so that copies are `dup` of all rows
    p_yes = yes_ratio / (1 + yes_ratio)
    key = f"{seed}:{source}"
    pending: list[tuple[int, int, dict[str, Any]]] = []  # heap of (emit after row, seq, row)
    t = 0  # original rows written so far
    if source == "text_only":
        n_rows = round(n_images * rows_per_image)
        for k in range(n_rows):
            rng = random.Random(f"text:{seed}:{k}")
            u = _weyl(t, _PHI, key)
            status = "hallucination" if u < h else "leak" if u < h + lk else "clean"
            status = "clean" if status == "hallucination" else status  # no ground truth to contradict
            yield _row(source, task, f"text{seed}-{k:07d}", None, write_text_only(rng, status, style), status, k)
            t += 1
        return
    files = images_files.split("|")
    images = concatenate_datasets([Dataset.from_file(f) for f in files]).with_format("arrow")
    base, frac = int(rows_per_image), rows_per_image - int(rows_per_image)
    for start in range(0, n_images, CHUNK):
        pngs = images[start : start + CHUNK].column("png").to_pylist()
        for i, png in enumerate(pngs, start):
            rng = random.Random(f"{source}:{seed}:{i}")
            n = base + (rng.random() < frac)
            # Easy rows draw from their own stream, so easy=0 leaves every other row as it was.
            easy_rng = random.Random(f"easy:{source}:{seed}:{i}") if easy else None
            kinds = easy_rows(easy_rng, easy, _weyl(i, _PHI, f"easy:{key}")) if easy_rng else []
            if not n and not kinds:
                continue
            scene = make_scene(i, seed, image_size, TRAIN)
            for k in range(n):
                u = _weyl(t, _PHI, key)
                status = "hallucination" if u < h else "leak" if u < h + lk else "clean"
                if source == "svit_judgement":
                    yes = _weyl(t, _SQRT3, key) < p_yes
                    conv = write_judgement(scene, rng, status, style, yes=yes)
                elif source == "captions":
                    conv = write_caption(scene, rng, status, style, grouped=grouped)
                elif source == LOW_QUALITY_SOURCE:
                    conv = write_sloppy(scene, rng, status, style)
                else:
                    conv = WRITERS[source](scene, rng, status, style)
                row = _row(source, task, scene.image_id, png, conv, status, k)
                yield row
                if _weyl(t, _SQRT2, key) < p_dup:
                    copy = _near_duplicate(row, rng, k + n)
                    heapq.heappush(pending, (t + rng.randint(1, 40), t, copy))
                t += 1
                while pending and pending[0][0] <= t:
                    yield heapq.heappop(pending)[2]
            for j, kind in enumerate(kinds):  # ids k = 100 + j: apart from rows (k < n) and copies (k < 2n)
                yield _row(source, task, scene.image_id, png, write_easy(scene, easy_rng, kind), "easy", 100 + j)
    while pending:
        yield heapq.heappop(pending)[2]


def _row(source: str, task: str, img: str, png: bytes | None, conv: list, status: str, k: int) -> dict[str, Any]:
    # Opaque ids: nothing in the id tells a copy from its original.
    rid = hashlib.sha1(f"{source}:{img}:{k}".encode()).hexdigest()[:10]
    return {
        "id": f"{source}-{img}-{rid}",
        "images": [] if png is None else [{"bytes": png, "path": None}],
        "conversations": conv,
        "source": source,
        "task": task,
        "image_id": img if png is not None else "",
        "_truth": status,
    }


def _near_duplicate(row: dict[str, Any], rng: random.Random, k: int) -> dict[str, Any]:
    """Same image, the same turns with one or two small surface edits."""
    from .language import perturb

    conv = [dict(t) for t in row["conversations"]]
    targets = [j for j, t in enumerate(conv) if t["from"] == "human"]
    j = rng.choice(targets)
    head = "<image>\n" if conv[j]["value"].startswith("<image>\n") else ""
    conv[j]["value"] = head + perturb(conv[j]["value"][len(head):], rng)
    img = row["image_id"]
    return {**_row(row["source"], row["task"], img, None, conv, "duplicate", k), "images": row["images"], "image_id": img}


def _generate(gen, gen_kwargs: dict[str, Any], features: Features, cache_dir: str | None) -> Dataset:
    # from_generator writes to the datasets cache (memory-mapped), fingerprinted by its kwargs.
    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        return Dataset.from_generator(gen, gen_kwargs=gen_kwargs, features=features, cache_dir=cache_dir)
    finally:
        if enabled:
            datasets.enable_progress_bars()


def image_table(n_images: int, seed: int = 0, image_size: int = 64, cache_dir: str | None = None) -> Dataset:
    """The pool's images, encoded once: columns ``image_id`` and ``png`` (bytes), in index order.

    Example:
        >>> image_table(3)["image_id"][:]
        ['sw0-0000000', 'sw0-0000001', 'sw0-0000002']
    """
    kwargs = {"n_images": n_images, "seed": seed, "image_size": image_size, "code": _code_version()}
    feats = Features({"image_id": Value("string"), "png": Value("binary")})
    return _generate(_image_rows, kwargs, feats, cache_dir)


def _plan(
    sources: list[str] | None, rows_per_image: dict[str, float] | None, degrade: dict | None, low_quality: float,
) -> tuple[list[str], dict[str, float], dict[str, dict[str, float]]]:
    """The sources to write, their rows per image and their rates, checked."""
    names = list(SOURCES) if sources is None else list(sources)
    unknown = [s for s in names if s not in SOURCES]
    if unknown:
        raise ConfigError(f"unknown source(s) {unknown}; sources are {list(SOURCES)}")
    bad_rpi = {k: v for k, v in (rows_per_image or {}).items() if k not in SOURCES or not v >= 0}
    if bad_rpi:
        raise ConfigError(f"rows_per_image needs known sources and values >= 0, got {bad_rpi}; sources are {list(SOURCES)}")
    rpi = {**DEFAULT_ROWS_PER_IMAGE, **(rows_per_image or {})}
    if low_quality:
        rpi[LOW_QUALITY_SOURCE] = low_quality
    if sources is None and not rpi[LOW_QUALITY_SOURCE]:
        names.remove(LOW_QUALITY_SOURCE)  # off unless asked for: default pools keep their sources
    deg = DEFAULT_DEGRADE if degrade is None else degrade
    _check_degrade(deg)
    return names, rpi, {**deg, LOW_QUALITY_SOURCE: deg.get(LOW_QUALITY_SOURCE, LOW_QUALITY_RATES)}


def _check_options(names: list[str], grouped_captions: float, hallucination_style: str, easy: float, low_quality: float) -> None:
    if not 0.0 <= grouped_captions <= 1.0:
        raise ConfigError(f"grouped_captions must be in [0, 1], got {grouped_captions}")
    if not (0.0 <= easy <= 3.0 and low_quality >= 0.0):
        raise ConfigError(f"easy must be in [0, 3] rows per image and low_quality >= 0, got easy={easy}, low_quality={low_quality}")
    if easy and "mm_short_vqa" not in names:
        raise ConfigError("easy rows are written into mm_short_vqa; add it to sources or set easy=0")
    if hallucination_style not in ("confusion", "random"):
        raise ConfigError(f"hallucination_style must be 'confusion' or 'random', got {hallucination_style!r}")


def shapesworld(
    n_images: int,
    seed: int = 0,
    image_size: int = 64,
    *,
    sources: list[str] | None = None,
    rows_per_image: dict[str, float] | None = None,
    degrade: dict[str, dict[str, float]] | None = None,
    hallucination_style: str = "confusion",
    yes_ratio: float = 20.0,
    grouped_captions: float = 0.0,
    easy: float = 0.0,
    low_quality: float = 0.0,
    benchmark_images: int | None = None,
    cache_dir: str | None = None,
) -> DatasetDict:
    """The ShapesWorld pool: one ``Dataset`` per source (see :data:`SOURCES`) plus ``"benchmark"``.

    - ``n_images``: training images; each source annotates them at ``rows_per_image``
      (defaults :data:`DEFAULT_ROWS_PER_IMAGE`, about 8.75 rows per image in all).
    - ``degrade``: per source ``{"hallucination": r, "leak": r, "duplicate": r}``;
      ``None`` = :data:`DEFAULT_DEGRADE`, ``{}`` = everything clean.
    - ``hallucination_style``: ``"confusion"`` (systematic: red→orange, n→n+1, ...) or ``"random"``.
    - ``yes_ratio``: yes:no of ``svit_judgement`` (SVIT found about 20:1).
    - ``easy``: redundant easy rows per image (truth ``easy``), written into ``mm_short_vqa``:
      a few fixed questions with the same one-word answer for every image (:mod:`.pathologies`).
    - ``low_quality``: rows per image of the low-quality source ``web_vqa`` (sloppy answers,
      80% wrong unless ``degrade["web_vqa"]`` says otherwise, even with ``degrade={}``);
      0 (default) leaves the source out.
    - ``grouped_captions``: share of ``captions`` rows written as grouped descriptions
      ("Circles: a large red one at the top left. ..."), the dense grounded captions that
      teach tiny models to bind attributes (see :func:`stage1_captions`); 0 (default)
      keeps LCS-558K's one-sentence captions only.
    - ``benchmark_images``: held-out images (4 rows each); default ``clamp(n_images // 4, 10, 500)``;
      ``0`` leaves it out. To score models, prefer a fixed :func:`~.benchmark.benchmark`
      (e.g. ``benchmark(300, seed=1234)``), which does not build the pool.

    Deterministic per argument set. Source columns: the canonical ones plus ``image_id``
    and ``_truth`` (measurement only, never read by methods).

    Example:
        >>> dd = shapesworld(20, seed=1, degrade={})
        >>> set(dd["llava_conv"]["_truth"])
        {'clean'}
    """
    from .benchmark import benchmark

    names, rpi, deg = _plan(sources, rows_per_image, degrade, low_quality)
    _check_options(names, grouped_captions, hallucination_style, easy, low_quality)
    code = _code_version()

    images = image_table(n_images, seed, image_size, cache_dir)
    files = "|".join(f["filename"] for f in images.cache_files)
    out = {}
    for name in names:
        kwargs = {
            "source": name, "n_images": n_images, "seed": seed, "image_size": image_size,
            "rows_per_image": float(rpi[name]), "rates": dict(deg.get(name, {})), "style": hallucination_style,
            "yes_ratio": float(yes_ratio), "images_files": files, "code": code,
        }
        if name == "captions" and grouped_captions:
            kwargs["grouped"] = float(grouped_captions)  # only when set: unchanged cache keys otherwise
        if name == "mm_short_vqa" and easy:
            kwargs["easy"] = float(easy)
        if kwargs["rows_per_image"] or kwargs.get("easy"):
            ds = _generate(_source_rows, kwargs, SOURCE_FEATURES, cache_dir)
        else:  # a generator that yields nothing is an error in datasets: an empty table instead
            ds = Dataset.from_dict({k: [] for k in SOURCE_FEATURES}, features=SOURCE_FEATURES)
        params = {k: v for k, v in kwargs.items() if k not in ("images_files", "source")}
        out[name] = provenance.record(ds, f"shapesworld:{name}", kind="generate", rows_in=0, params=params, seed=seed)
    n_bench = min(500, max(10, n_images // 4)) if benchmark_images is None else benchmark_images
    if n_bench:
        out["benchmark"] = benchmark(n_bench, seed=seed, image_size=image_size, cache_dir=cache_dir)
    return DatasetDict(out)


def training_pool(
    kind: str,
    n_rows: int,
    seed: int = 0,
    image_size: int = 64,
    *,
    sources: list[str] | None = None,
    degraded: dict[str, dict[str, float]] | None = None,
    yes_ratio: float = 20.0,
    cache_dir: str | None = None,
) -> Dataset:
    """A shuffled training pool of exactly ``n_rows`` rows, ``kind="clean"`` or ``"degraded"``.

    Both kinds draw the same images and questions for a seed (same sources, same mix);
    ``"degraded"`` writes them with :data:`DEGRADED` (half the answers hallucinated,
    systematically; 20% near-duplicates; leaks in detail descriptions) or ``degraded``.
    ``sources`` defaults to every image source (not ``text_only``); ``yes_ratio`` is the
    yes:no of ``svit_judgement`` (SVIT's 20:1 by default; 1.0 balances it). For the
    clean-vs-degraded experiment: train one model on each, score both on
    ``benchmark(...)``.

    Example:
        >>> clean = training_pool("clean", 100, seed=0)
        >>> bad = training_pool("degraded", 100, seed=0)
        >>> len(clean) == len(bad) == 100, set(clean["_truth"])
        (True, {'clean'})
    """
    if kind not in ("clean", "degraded"):
        raise ConfigError(f"kind must be 'clean' or 'degraded', got {kind!r}")
    names = [s for s in SOURCES if s not in ("text_only", LOW_QUALITY_SOURCE)] if sources is None else list(sources)
    degrade = {} if kind == "clean" else {k: v for k, v in (degraded or DEGRADED).items() if k in names}
    per_image = sum(DEFAULT_ROWS_PER_IMAGE[s] for s in names)
    # Margin for the rounding of rows per image; the degraded pool is larger (copies).
    n_images = math.ceil(n_rows / per_image * 1.15) + 10
    dd = shapesworld(n_images, seed, image_size, sources=names, degrade=degrade, yes_ratio=yes_ratio,
                     benchmark_images=0, cache_dir=cache_dir)
    pool = concatenate_datasets([dd[s] for s in names])
    if len(pool) < n_rows:  # pragma: no cover - the margin above covers every seed tried
        raise RunError(f"pool has {len(pool)} rows < {n_rows}")
    pool = pool.shuffle(seed=seed).select(range(n_rows))
    params = {"kind": kind, "n_rows": n_rows, "n_images": n_images, "image_size": image_size, "sources": names,
              "degrade": degrade, "yes_ratio": yes_ratio}
    return provenance.record(pool, "shapesworld:training_pool", kind="generate", rows_in=0, params=params, seed=seed)


# Stage-1 images are drawn apart from the pool's (another seed), as LCS-558K is apart from LLaVA-665K.
STAGE1_SEED_OFFSET = 1000


def stage1_captions(
    n_images: int,
    seed: int = 0,
    image_size: int = 64,
    *,
    cache_dir: str | None = None,
) -> Dataset:
    """Clean captions of ``n_images`` separate images for stage 1 (f_pre) of tiny models.

    One row per image, LCS-558K-style one-sentence captions (LLaVA's stage 1 is brief
    captions only), of images apart from any pool's with the same ``seed``.

    Example:
        >>> caps = stage1_captions(20, seed=0)
        >>> len(caps), set(caps["task"])
        (20, {'caption'})
    """
    dd = shapesworld(n_images, seed + STAGE1_SEED_OFFSET, image_size, sources=["captions"], degrade={},
                     benchmark_images=0, cache_dir=cache_dir)
    return dd["captions"]
