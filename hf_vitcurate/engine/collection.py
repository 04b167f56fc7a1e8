"""Step (a) of the MMInstruct engine: grow each domain from a few seed images by similarity search.

MMInstruct (§3.1) expands each domain from the images already chosen with a k-nearest-neighbour
search in a large image repository. :func:`collect` does that over a repository the user has:
both ``repository`` and ``seeds`` carry ``image_embedding`` (:func:`hf_vitcurate.stages.image_embeddings`,
the same model for both), ``seeds`` also ``domain``. A faiss inner-product index over the
repository's unit vectors (``Dataset.add_faiss_index``; exact, ``IndexFlatIP``, unless
``string_factory`` names an approximate one) is queried with every seed of a domain
(``search_batch``, ``k`` neighbours each); a repository image found by several seeds keeps its
best similarity and the seed that found it; an image is given to the domain where it is most
similar (each image serves one domain); each domain keeps its ``per_domain`` most similar
images. Seeds found in the repository by id are not collected again.

With ``index_path`` the index is saved (``save_faiss_index``) with a small JSON beside it
naming the embeddings it was built from; a later call on the same repository loads it instead
of building it, one on other embeddings rebuilds it (with a warning).

The result is the repository's rows with ``domain``, ``query_id`` (the seed's id) and
``similarity``: ready for :meth:`Engine.caption <hf_vitcurate.engine.Engine.caption>`, after
:func:`hf_vitcurate.stages.image_duplicates` against the images already in the pool.

Example:
    >>> repo = stages.image_embeddings(repository, model="openai/clip-vit-base-patch32")   # doctest: +SKIP
    >>> found = collect(repo, stages.image_embeddings(seeds, model="openai/clip-vit-base-patch32"),
    ...                 per_domain=500, k=50, index_path="runs/repo.faiss")                   # doctest: +SKIP
    >>> found.select_columns(["id", "domain", "query_id", "similarity"])[0]                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
from datasets import Dataset, Value

from .. import provenance
from ..columns import add_columns
from ..errors import ConfigError, missing_column

logger = logging.getLogger(__name__)

INDEX = "image_embedding"


def _valid_rows(ds: Dataset, column: str) -> np.ndarray:
    if column not in ds.column_names:
        raise missing_column(column, ds.column_names, what="embedding column",
                             hint="run hf_vitcurate.stages.image_embeddings on it first")
    import pyarrow.compute as pc

    return np.flatnonzero(np.asarray(pc.is_valid(ds.with_format("arrow")[column]).to_numpy(zero_copy_only=False)))


def _index_meta(base: Dataset, column: str, string_factory: str | None) -> dict:
    from ..identity import data_fingerprint

    return {"column": column, "rows": len(base), "embeddings": data_fingerprint(base, [column]),
            "string_factory": string_factory}


def search_params(index) -> dict[str, int]:
    """The search-time settings of a faiss index: ``nprobe`` (IVF lists visited), ``ef_search`` (HNSW
    candidates kept); empty for an exact index.

    >>> import faiss
    >>> search_params(faiss.IndexFlatIP(4)), search_params(faiss.IndexHNSWFlat(4, 8))
    ({}, {'ef_search': 16})
    """
    import faiss

    out: dict[str, int] = {}
    try:
        out["nprobe"] = int(faiss.extract_index_ivf(index).nprobe)
    except RuntimeError:  # not an IVF index
        pass
    inner = faiss.downcast_index(index.index if isinstance(index, faiss.IndexPreTransform) else index)
    if hasattr(inner, "hnsw"):
        out["ef_search"] = int(inner.hnsw.efSearch)
    return out


def set_search_params(index, *, nprobe: int | None = None, ef_search: int | None = None) -> dict[str, int]:
    """Set ``nprobe`` / ``ef_search`` on ``index`` (``None``: leave the index's own) and return
    :func:`search_params`. A setting the index has no use for is a ConfigError."""
    import faiss

    space = faiss.ParameterSpace()
    for name, faiss_name, value in (("nprobe", "nprobe", nprobe), ("ef_search", "efSearch", ef_search)):
        if value is None:
            continue
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
        try:
            space.set_index_parameter(index, faiss_name, int(value))
        except RuntimeError:
            kind = "an IVF index (string_factory='IVF1024,Flat')" if name == "nprobe" else "an HNSW index (string_factory='HNSW32')"
            raise ConfigError(f"{name} applies to {kind}, not to a {type(index).__name__}: "
                              "drop it or pass such a string_factory") from None
    return search_params(index)


def _save_meta(path: str, meta: dict, params: dict) -> None:
    with open(path + ".json", "w") as f:
        json.dump({**meta, "search_params": params}, f)


def build_index(repository: Dataset, *, column: str = INDEX, index_path: str | os.PathLike | None = None,
                string_factory: str | None = None, nprobe: int | None = None,
                ef_search: int | None = None) -> tuple[Dataset, np.ndarray]:
    """``(base, rows)``: the repository's rows with an embedding, with a faiss index named ``column``
    attached, and their positions in ``repository``. Loads ``index_path`` when it was built from
    the same embeddings, else builds the index (and saves it there, its search settings beside
    it). ``nprobe`` / ``ef_search`` are set on the index either way (:func:`set_search_params`)."""
    import faiss

    rows = _valid_rows(repository, column)
    if len(rows) == 0:
        raise ConfigError(f"no repository row has an {column!r} (all null or no rows): embed its images first")
    base = repository.select_columns([column])
    base = base.select(rows) if len(rows) < len(repository) else base  # a new object: the caller's dataset stays bare
    path = os.fspath(index_path) if index_path is not None else None
    # The embeddings' fingerprint (a pass over every vector) only matters for a saved index.
    meta = _index_meta(base, column, string_factory) if path else None
    if path and os.path.exists(path) and os.path.exists(path + ".json"):
        with open(path + ".json") as f:
            saved = json.load(f)
        saved_params = saved.pop("search_params", None)
        if saved == meta:
            base.load_faiss_index(column, path)
            # The JSON holds the latest settings (a new one is written there, not into the index file).
            last = saved_params or {}
            params = set_search_params(base.get_index(column).faiss_index, nprobe=last.get("nprobe") if nprobe is None else nprobe,
                                       ef_search=last.get("ef_search") if ef_search is None else ef_search)
            if params != saved_params:
                _save_meta(path, meta, params)
            return base, rows
        logger.warning("faiss index %s was built from other embeddings; rebuilding it", path)
    # An approximate index (IVF, PQ) must be trained first: on up to 65,536 of the vectors.
    train = min(len(base), 65_536) if string_factory else None
    base.add_faiss_index(column=column, index_name=column, string_factory=string_factory,
                         metric_type=faiss.METRIC_INNER_PRODUCT, dtype=np.float32, train_size=train)
    params = set_search_params(base.get_index(column).faiss_index, nprobe=nprobe, ef_search=ef_search)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        base.save_faiss_index(column, path)
        _save_meta(path, meta, params)
    return base, rows


def _best(domains, scores, found, seed_ids, query_domains, rows, taken) -> dict[int, tuple[float, str, str]]:
    """Repository row -> (similarity, query id, domain): the most similar query over all domains."""
    best: dict[int, tuple[float, str, str]] = {}
    for q, (sc, ix) in enumerate(zip(scores, found)):
        for s, j in zip(sc.tolist(), ix.tolist()):
            if j < 0:  # faiss pads with -1 when the index has fewer than k rows
                continue
            r = int(rows[j])
            if r in taken:
                continue
            old = best.get(r)
            # Higher similarity wins; ties go to the earlier domain, then the earlier seed.
            key = (s, -domains.index(query_domains[q]), -q)
            if old is None or key > old[0]:
                best[r] = (key, seed_ids[q], query_domains[q])
    return {r: (k[0], qid, d) for r, (k, qid, d) in best.items()}


def collect(
    repository: Dataset,
    seeds: Dataset,
    *,
    per_domain: int,
    k: int = 50,
    index_path: str | os.PathLike | None = None,
    column: str = INDEX,
    string_factory: str | None = None,
    nprobe: int | None = None,
    ef_search: int | None = None,
) -> Dataset:
    """The repository images nearest to each domain's seeds (see the module docstring).

    ``per_domain``: most images collected per domain; ``k``: neighbours asked per seed (a
    domain gets at most ``k`` x its seeds); ``index_path``: where the faiss index is saved
    and reused; ``string_factory``: a faiss index factory string (e.g. ``"HNSW32"``) for
    repositories too large for an exact search (default: exact); ``nprobe`` (IVF: lists
    visited per query) and ``ef_search`` (HNSW: candidates kept) trade query time for recall
    (``None``: the index's own: faiss's 1 and 16 for a new index, the saved value for a reloaded
    one); both are saved beside ``index_path`` and recorded in the provenance.
    """
    if per_domain < 1 or k < 1:
        raise ConfigError(f"per_domain and k must be >= 1, got per_domain={per_domain}, k={k}")
    if "domain" not in seeds.column_names:
        raise missing_column("domain", seeds.column_names, what="seed column", hint="give each seed image its domain")
    seed_rows = _valid_rows(seeds, column)
    if len(seed_rows) == 0:
        raise ConfigError(f"no seed has an {column!r} (all null): check the seeds' image_embedding_flag")
    seeds = seeds.select(seed_rows) if len(seed_rows) < len(seeds) else seeds
    base, rows = build_index(repository, column=column, index_path=index_path, string_factory=string_factory,
                             nprobe=nprobe, ef_search=ef_search)
    table = seeds.with_format("arrow").select_columns([c for c in ("id", "domain", column) if c in seeds.column_names])[:]
    seed_ids = [str(v) for v in table.column("id").to_pylist()] if "id" in table.column_names else [
        str(i) for i in seed_rows.tolist()]
    query_domains = [str(d) for d in table.column("domain").to_pylist()]
    queries = np.asarray(table.column(column).to_pylist(), dtype=np.float32)
    dim = base.get_index(column).faiss_index.d
    if queries.shape[1] != dim:
        raise ConfigError(f"seeds' {column!r} has {queries.shape[1]} dimensions, the repository's {dim}: "
                          "embed both with the same model")
    scores, found = base.search_batch(column, queries, k=min(k, len(base)))
    taken = set()
    if "id" in repository.column_names and "id" in seeds.column_names:
        seed_set = set(seed_ids)
        taken = {i for i, v in enumerate(repository["id"]) if str(v) in seed_set}
    domains = list(dict.fromkeys(query_domains))
    best = _best(domains, scores, found, seed_ids, query_domains, rows, taken)
    picked: list[tuple[int, float, str, str]] = []
    for d in domains:
        mine = sorted(((-s, r, q) for r, (s, q, dd) in best.items() if dd == d))[:per_domain]
        picked.extend((r, -ns, q, d) for ns, r, q in mine)
    out = _with_found(repository, picked)
    counts = {d: sum(1 for p in picked if p[3] == d) for d in domains}
    return provenance.record(out, "collect", kind="stage", rows_in=len(repository), rows_out=len(out), params={
        "per_domain": per_domain, "k": k, "column": column, "string_factory": string_factory,
        "search_params": search_params(base.get_index(column).faiss_index), "seeds": len(seeds),
        "per_domain_found": counts, "embedder": _embedder(provenance.last_step(repository, "image_embeddings"))}, parent=repository)


def _embedder(step: dict | None) -> dict | None:
    """``{"model", "pooling"}`` of an ``image_embeddings`` provenance step (the card names it), ``None`` without one."""
    return {"model": step.get("model"), "pooling": step.get("params", {}).get("pooling")} if step else None


def _with_found(repository: Dataset, picked) -> Dataset:
    """The picked repository rows with ``domain``, ``query_id``, ``similarity`` (replacing any older ones)."""
    return add_columns(
        repository.select([p[0] for p in picked]).remove_columns(
            [c for c in ("domain", "query_id", "similarity") if c in repository.column_names]),
        {"domain": [p[3] for p in picked], "query_id": [p[2] for p in picked], "similarity": [p[1] for p in picked]},
        features={"domain": Value("string"), "query_id": Value("string"), "similarity": Value("float32")},
    )
