"""Stage ``image_embeddings``: one L2-normalised image vector per row, from any vision checkpoint.

The vector is what the MMInstruct image collection (:func:`hf_vitcurate.engine.collect`) searches
and what :func:`hf_vitcurate.stages.image_duplicates` compares (docs/methods.md, "Image
collection (step a)"). The checkpoint is loaded with ``AutoModel`` and ``AutoImageProcessor``:

- a model with a vision tower (LLaVA and the package's tiny checkpoints): the element-wise max
  of the tower's patch features at the layer the model hands to its projector
  (``config.vision_feature_layer``), the CLS token left out (``pooling="mean"`` their mean:
  the max found the seed's object kind more often on ShapesWorld, docs/methods.md);
- a model with ``get_image_features`` (CLIP, SigLIP): those features;
- a vision-only model (ViT, DINOv2): its pooled output, else the mean of its last hidden state;
- ``pooling="mean" | "max" | "cls"``: the tower's (or vision model's) tokens pooled that way.

A row with several images gets the mean of their vectors, normalised again. Rows are embedded in
resumable chunks by :func:`hf_vitcurate.distributed.run_sharded` (one model per process; a
killed run restarted with the same ``work_dir`` recomputes only the missing chunks). A row
whose image does not decode gets a null vector and ``image_embedding_flag = "image_error:
<reason>"``, a row without an image ``"no_image"``; the run goes on.

Example:
    >>> embedded = image_embeddings(images, model="openai/clip-vit-base-patch32", work_dir="runs/emb")  # doctest: +SKIP
    >>> len(embedded[0]["image_embedding"])                                                            # doctest: +SKIP
    512
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from datasets import Dataset, Features, List, Value

from .. import provenance
from ..distributed import run_sharded
from ..errors import ConfigError, missing_column
from ..images import MAX_PIXELS, decode_rows
from .flags import flag_counts, scatter

NO_IMAGE = "no_image"
# A LLaVA-like tower's default pooling. Measured on ShapesWorld with the package's tiny tower
# (docs/methods.md, "Image collection"): the patches' max finds the seed's object kind more often
# than their mean (precision@10 of same-kind neighbours), the tower's class token least.
TOWER_POOLING = "max"


def load_embedder(model: str | os.PathLike, *, dtype: str = "auto"):
    """``(net, image_processor)`` of the checkpoint ``model`` on this process's device, in eval mode."""
    from transformers import AutoImageProcessor, AutoModel

    from ..models.loading import default_device, pil_image_processor, resolve_dtype

    device = default_device()
    net = AutoModel.from_pretrained(os.fspath(model), dtype=resolve_dtype(dtype, device)).to(device)
    try:
        processor = AutoImageProcessor.from_pretrained(os.fspath(model), use_fast=False)
    except ImportError:
        processor = pil_image_processor(os.fspath(model))
    return net.eval(), processor


POOLINGS = ("mean", "max", "cls")


def _has_cls(hidden, net) -> bool:
    """Whether the first of ``hidden``'s tokens is a class token: one more token than the config's
    patches (or, without ``image_size``/``patch_size``, a square number of patches plus one)."""
    tokens = hidden.shape[1]
    config = getattr(net.config, "vision_config", net.config)
    size, patch = getattr(config, "image_size", None), getattr(config, "patch_size", None)
    if isinstance(size, int) and isinstance(patch, int) and patch:
        return tokens == (size // patch) ** 2 + 1
    side = round((tokens - 1) ** 0.5)
    return tokens > 1 and side * side == tokens - 1


def pool(hidden, pooling: str, *, cls: bool):
    """``(n, d)`` from ``(n, tokens, d)`` features: the patches' element-wise ``"max"``, their
    ``"mean"`` (the class token left out where ``cls``), or the ``"cls"`` token.

    >>> import torch
    >>> h = torch.tensor([[[9.0, 9.0], [1.0, 4.0], [3.0, 2.0]]])
    >>> pool(h, "mean", cls=True).tolist(), pool(h, "max", cls=True).tolist(), pool(h, "cls", cls=True).tolist()
    ([[2.0, 3.0]], [[3.0, 4.0]], [[9.0, 9.0]])
    """
    if pooling == "cls":
        if not cls:
            raise ConfigError("pooling='cls': this vision tower has no class token; use 'mean' or 'max'")
        return hidden[:, 0]
    patches = hidden[:, 1:] if cls and hidden.shape[1] > 1 else hidden
    return patches.amax(1) if pooling == "max" else patches.mean(1)


def image_features(net, pixels, *, pooling: str | None = None):
    """``(n, d)`` float32 features of ``pixels`` from ``net`` (see the module docstring for which).

    ``pooling``: ``None`` is the model's default (LLaVA-like towers ``"max"``; CLIP, SigLIP their
    ``get_image_features``; vision-only models their pooled output); ``"mean"``, ``"max"``,
    ``"cls"`` pool the tower's tokens (for CLIP/SigLIP the vision model's last hidden state).
    """
    import torch

    with torch.no_grad():
        tower = getattr(net, "vision_tower", None)
        if tower is not None:  # LLaVA-like: pool the patch features the projector would receive
            layer = getattr(net.config, "vision_feature_layer", -1)
            layer = layer[-1] if isinstance(layer, (list, tuple)) else layer
            hidden = tower(pixels, output_hidden_states=True).hidden_states[layer]
            feats = pool(hidden, pooling or TOWER_POOLING, cls=_has_cls(hidden, net))
        elif pooling is not None:  # CLIP, SigLIP, ViT: the vision model's tokens
            vision = getattr(net, "vision_model", net)
            hidden = vision(pixel_values=pixels).last_hidden_state
            feats = pool(hidden, pooling, cls=_has_cls(hidden, net))
        elif hasattr(net, "get_image_features"):
            feats = net.get_image_features(pixel_values=pixels)
            feats = getattr(feats, "pooler_output", feats)  # newer transformers return an output object
            feats = feats.mean(1) if feats.dim() == 3 else feats
        else:
            out = net(pixel_values=pixels)
            pooled = getattr(out, "pooler_output", None)
            feats = pooled if pooled is not None else out.last_hidden_state.mean(1)
    return feats.float().cpu().numpy().reshape(len(feats), -1)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero).

    >>> normalise(np.array([[3.0, 4.0], [0.0, 0.0]])).astype(float).round(2).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def embed_rows(net, processor, images: list[list], *, batch_size: int, pooling: str | None = None) -> list[list[float]]:
    """One normalised vector per row of decoded ``images`` (each a non-empty list of PIL images)."""
    flat = [im for row in images for im in row]
    owner = np.repeat(np.arange(len(images)), [len(row) for row in images])
    dev = next(net.parameters())
    parts = []
    for i in range(0, len(flat), batch_size):
        pixels = processor(flat[i : i + batch_size], return_tensors="pt")["pixel_values"]
        parts.append(image_features(net, pixels.to(dev.device, dev.dtype), pooling=pooling))
    vecs = normalise(np.concatenate(parts))
    sums = np.zeros((len(images), vecs.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, vecs)
    return normalise(sums).tolist()


def image_embeddings(
    ds,
    *,
    model: str | os.PathLike,
    work_dir: str | os.PathLike | None = None,
    restart: bool = False,
    batch_size: int = 32,
    chunk_size: int = 1024,
    max_pixels: int | None = MAX_PIXELS,
    dtype: str = "auto",
    column: str = "image_embedding",
    pooling: str | None = None,
):
    """Add ``column`` (float32 list, unit L2 norm) and ``{column}_flag`` from the ``images`` of each row.

    ``model``: a checkpoint folder or Hub id (see the module docstring for which features are
    used). ``work_dir`` keeps finished chunks so a killed run resumes (default: a temporary
    folder, no resume); ``restart=True`` discards them. ``batch_size``: images per forward
    pass; ``chunk_size``: rows per resumable chunk. Chunks are keyed by the model's content
    (:func:`hf_vitcurate.identity.model_fingerprint`), never its path. ``pooling``: how a
    picture's tokens become one vector, ``"mean"`` or ``"max"`` of the patches or the ``"cls"``
    token; ``None``: the model's default (:func:`image_features`: ``"max"`` for LLaVA-like towers,
    the better one on ShapesWorld with the package's tiny tower, docs/methods.md).
    """
    from ..identity import model_fingerprint

    if pooling is not None and pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)} or None (the model's default), got {pooling!r}")

    if "images" not in ds.column_names:
        raise missing_column("images", ds.column_names, what="image column")
    if column in ds.column_names:
        raise ConfigError(f"{column!r} is already a column: pass column=<another name> or drop it first")
    flag = f"{column}_flag"
    loaded: list = []

    def compute(rows: dict[str, list]) -> dict[str, list]:
        n = len(rows["images"])
        good, kept, bad = decode_rows(rows, max_pixels=max_pixels)
        for i in good:
            if not rows["images"][i]:
                bad[i] = NO_IMAGE
        present = [k for k, i in enumerate(good) if i not in bad]
        vectors: list = []
        if present:
            if not loaded:  # one model per process, loaded on first use
                loaded.extend(load_embedder(model, dtype=dtype))
            vectors = embed_rows(*loaded, [kept["images"][k] for k in present], batch_size=batch_size, pooling=pooling)
        where = [good[k] for k in present]
        return {column: scatter(n, where, vectors, {}), flag: scatter(n, where, [""] * len(where), bad)}

    params = {"model": model_fingerprint(model), "max_pixels": max_pixels, "dtype": str(dtype),
              "pooling": pooling or f"default-v2:{TOWER_POOLING}"}  # chunks of another pooling are not reused
    work = os.fspath(work_dir) if work_dir is not None else None
    features = {column: List(Value("float32")), flag: Value("string")}
    embedded = run_sharded(ds, compute, work, chunk_size=chunk_size, features=features, params=params,
                           input_columns=["images"], desc="image_embeddings", restart=restart, decode=False)
    return provenance.record(
        embedded, "image_embeddings", kind="stage", rows_in=len(ds),
        params={**params, "pooling": pooling or "model default", "column": column, "batch_size": batch_size,
                "flags": flag_counts(embedded, flag)},
        model=os.fspath(model), parent=ds,
    )


def phrase_embeddings(phrases: Mapping[str, Sequence[str]], *, model: str | os.PathLike, dtype: str = "auto",
                      column: str = "image_embedding") -> Dataset:
    """Rows ``id`` (``"phrase:<text>"``), ``domain``, ``column``: each domain's key phrases embedded by the text tower.

    For image-text models with one embedding space (CLIP, SigLIP: ``get_text_features``), a
    phrase's vector lies where the images it describes do, so these rows can join the seed
    images as queries of :func:`hf_vitcurate.engine.collect` (``concatenate_datasets``); the
    MMInstruct paper's experts defined key phrases per domain. A model without a text tower
    in the image space raises :class:`~hf_vitcurate.errors.ConfigError`.

    >>> queries = phrase_embeddings({"charts": ["a bar chart"]}, model="openai/clip-vit-base-patch32")  # doctest: +SKIP
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ..models.loading import default_device, resolve_dtype

    pairs = [(d, p) for d, texts in phrases.items() for p in texts]
    if not pairs:
        raise ConfigError("phrases is empty: give {domain: [key phrase, ...]}")
    device = default_device()
    net = AutoModel.from_pretrained(os.fspath(model), dtype=resolve_dtype(dtype, device)).to(device).eval()
    if not hasattr(net, "get_text_features"):
        raise ConfigError(f"{model}: a {type(net).__name__} has no text tower in its image space "
                          "(get_text_features); key phrases need a CLIP- or SigLIP-like checkpoint")
    tokenizer = AutoTokenizer.from_pretrained(os.fspath(model))
    batch = tokenizer([p for _, p in pairs], padding=True, truncation=True, return_tensors="pt").to(device)
    with torch.no_grad():
        feats = net.get_text_features(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"))
    feats = getattr(feats, "pooler_output", feats)
    vectors = normalise(feats.float().cpu().numpy().reshape(len(pairs), -1))
    return Dataset.from_dict({"id": [f"phrase:{p}" for _, p in pairs], "domain": [d for d, _ in pairs],
                              column: vectors.tolist()},
                             features=Features({"id": Value("string"), "domain": Value("string"),
                                                column: List(Value("float32"))}))
