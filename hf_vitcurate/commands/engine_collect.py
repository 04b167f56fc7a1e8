"""``vitcurate engine collect``: MMInstruct step (a), images gathered per domain by similarity search.

Mirrors :func:`hf_vitcurate.engine.collect`. ``REPO`` (the image repository) and ``--seeds``
are each a ``save_to_disk`` folder (rows with ``images``, or already an ``image_embedding``
column; seeds also with ``domain``) or a plain folder of image files: for the seeds, one
sub-folder per domain (``seeds/<domain>/*.png``). Rows without embeddings are embedded first
with ``--model`` (:func:`hf_vitcurate.stages.image_embeddings`).

Example:
    $ vitcurate engine collect repo_images/ --seeds seeds/ --per-domain 500 --model openai/clip-vit-base-patch32 \\
          --work-dir runs/collect --output collected/
"""

from __future__ import annotations

import os
from collections import Counter

from ..errors import ConfigError, NotFoundError
from .common import option, print_summary, quiet_if_small, save_output

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def register_collect(verbs) -> None:
    from ..engine.collection import collect
    from ..provenance import last_step
    from ..stages.image_embeddings import POOLINGS, image_embeddings

    c = verbs.add_parser("collect", help="(a) collect repository images nearest to each domain's seed images")
    c.add_argument("repository", metavar="REPO", help="save_to_disk folder of images (or embeddings), or a folder of image files")
    c.add_argument("--seeds", required=True, help="save_to_disk folder with `domain`, or a folder with one sub-folder of images per domain")
    c.add_argument("--per-domain", type=int, required=True, help="images collected per domain at most")
    option(c, collect, "k", "neighbours asked per seed image")
    option(c, collect, "index_path", "where the faiss index is saved and reused", type=str)
    option(c, collect, "string_factory", "a faiss index factory string for large repositories, e.g. IVF1024,Flat "
           "or HNSW32; None is exact search", type=str)
    option(c, collect, "nprobe", "IVF lists visited per query: more is slower and finds more; None keeps the index's own", type=int)
    option(c, collect, "ef_search", "HNSW candidates kept per query; None keeps the index's own", type=int)
    c.add_argument("--model", default=None, help="image embedder for rows without `image_embedding` (CLIP, SigLIP, a LLaVA-style checkpoint)")
    c.add_argument("--work-dir", default=None, help="resumable embedding chunks (REPO's under repository/, the seeds' under seeds/)")
    option(c, image_embeddings, "pooling", "how --model's image tokens become one vector; None is the model's "
           "default (max of a LLaVA-like tower's patches, CLIP/SigLIP image features)", type=str, choices=POOLINGS)
    c.add_argument("--batch-size", type=int, default=32, help="images per forward pass when embedding (default: 32)")
    c.add_argument("--output", required=True, help="where to write the collected images (domain, query_id, similarity)")
    c.set_defaults(func=run_collect)


def image_files(folder: str, *, domains: bool):
    """A dataset of the image files under ``folder``: ``id`` (path without suffix), ``images``, and ``domain``
    (the first sub-folder) when ``domains``.

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp()); (root / "charts").mkdir(); _ = (root / "charts" / "a.png").write_bytes(b"")
    >>> list(image_files(str(root), domains=True)["domain"])
    ['charts']
    """
    from datasets import Dataset, Features, Image, List, Value

    found = sorted(os.path.join(top, name) for top, _, names in os.walk(folder) for name in names
                   if name.lower().endswith(IMAGE_SUFFIXES))
    rel = [os.path.relpath(p, folder) for p in found]
    if domains:
        flat = [r for r in rel if os.sep not in r]
        if flat:
            raise ConfigError(f"--seeds {folder}: images must sit in one sub-folder per domain ({flat[0]} does not)")
    columns = {"id": [os.path.splitext(r)[0] for r in rel], "images": [[p] for p in found]}
    features = {"id": Value("string"), "images": List(Image())}
    if domains:
        columns["domain"], features["domain"] = [r.split(os.sep)[0] for r in rel], Value("string")
    return Dataset.from_dict(columns, features=Features(features))


def _load(path: str, *, flag: str, domains: bool):
    from datasets import load_from_disk

    if not os.path.isdir(path):
        raise NotFoundError(f"{flag}: no such file or folder: {path}")
    if os.path.exists(os.path.join(path, "dataset_info.json")):
        return load_from_disk(path)
    ds = image_files(path, domains=domains)
    if len(ds) == 0:
        raise ConfigError(f"{flag} {path}: no image files ({', '.join(IMAGE_SUFFIXES)}) and not a save_to_disk folder")
    return ds


def _embedded(ds, args, *, flag: str, part: str):
    from ..stages.image_embeddings import image_embeddings

    if "image_embedding" in ds.column_names:
        return ds
    if not args.model:
        raise ConfigError(f"{flag} has no image_embedding column: give --model to embed its images")
    work = os.path.join(args.work_dir, part) if args.work_dir else None
    return image_embeddings(ds, model=args.model, work_dir=work, batch_size=args.batch_size, pooling=args.pooling)


def run_collect(args) -> int:
    from ..engine.collection import collect
    from ..provenance import last_step

    repository = _load(args.repository, flag="REPO", domains=False)
    seeds = _load(args.seeds, flag="--seeds", domains=True)
    quiet_if_small(len(repository))
    repository = _embedded(repository, args, flag="REPO", part="repository")
    seeds = _embedded(seeds, args, flag="--seeds", part="seeds")
    out = collect(repository, seeds, per_domain=args.per_domain, k=args.k, index_path=args.index_path,
                  string_factory=args.string_factory, nprobe=args.nprobe, ef_search=args.ef_search)
    save_output(out, args.output)
    per_domain = Counter(out.with_format("arrow")["domain"].to_pylist() if len(out) else [])
    print_summary({"output": args.output, "rows": len(out), "repository": len(repository), "seeds": len(seeds),
                   "per_domain": dict(sorted(per_domain.items())), "index_path": args.index_path,
                   "search_params": (last_step(out, "collect") or {}).get("params", {}).get("search_params", {})})
    return 0
