"""REVO-LION's tune-cross-evaluation end to end (the REVO-LION paper's Fig. 2).

From *On the Evaluation and Refinement of Vision-Language Instruction Tuning Datasets*
(REVO-LION, arXiv:2310.06594; see docs/methods.md). For each source dataset T: fine-tune
the checkpoint ``model`` on T (→ model_T); model_T answers
every row of every *other* dataset (greedy, ``answer__T`` columns) and each answer is
scored against the row's reference (``mq__T`` = MQ^S_{T→i}); then the DQ matrix and
vector (Eq. 2) and the ``sq`` column (Eq. 3) follow. Rows of T itself get nulls in
``answer__T``/``mq__T`` (a model is not evaluated on its own data: MQ_{T→T} := 1).

The unit is the paper's: a (image, instruction, answer) triplet. A source holding
multi-turn rows is first cut into single-turn rows (:func:`hf_vitcurate.formats.explode_turns`,
ids ``{id}#t{k}``), so every turn is answered, scored and selectable on its own;
``explode=False`` keeps the rows whole, and then only each row's last turn is answered
and scored (the earlier turns are context), which is logged as a warning.

Nothing is computed twice:

- a model is kept under ``work_dir/models/<T>-<key>``, ``key`` = the training run's
  identity (:func:`hf_vitcurate.models.training.train_identity`: the base model's content,
  the content of T's images and conversations, the recipe and seed). A second call with
  the same inputs trains nothing (``manifest["reused"]``); other inputs are another folder.
  Fine-tunes also go through the package's model cache (:mod:`hf_vitcurate.models.cache`,
  same key plus the code version and device), so a run into a new ``work_dir`` copies them
  instead of training (``manifest["cached"]``; ``cache=False`` turns it off);
- answers are written in resumable chunks under ``work_dir/answers/<T>-<key>/on-<i>-<key'>``
  (:func:`hf_vitcurate.stages.generate`), ``key'`` = the identity of the answers (the content
  of dataset i's rows and the generation settings), so a killed run resumes, a rerun loads
  no model, and changed data or settings are answered anew.

Example:
    >>> result = tune_cross_evaluate(sources, model="ckpt/f_pre", work_dir="runs/revolion",
    ...                              recipe=tiny_recipe(), max_new_tokens=48)        # doctest: +SKIP
    >>> pool, manifest = result; result.dq.to_markdown()                               # doctest: +SKIP
    >>> parts, manifest = release(pool, by=manifest["by"])                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from datasets import Dataset, Value, concatenate_datasets

from .. import provenance
from ..columns import add_columns, arrow_column, ids_sha256
from ..errors import ConfigError
from ..identity import data_fingerprint, identity
from ..results import DriverSelection
from .revolion import add_sq, dq_table

logger = logging.getLogger(__name__)

ANSWER = "answer__{}"
MQ = "mq__{}"
CORE = ("id", "images", "conversations", "source", "task")
# What training and answering read of a source: its fingerprint covers these columns.
READ = ("images", "conversations")


def source_fingerprint(ds: Dataset) -> str:
    """The :func:`~hf_vitcurate.identity.data_fingerprint` of what training and answering read of ``ds``
    (its ``images`` and ``conversations``): computed once per source and passed on to each of them."""
    return data_fingerprint(ds, [c for c in READ if c in ds.column_names])


def answers_key(ds: Dataset, generation: Mapping[str, Any], *, fingerprint: str | None = None) -> str:
    """The key of a model's answers on ``ds``: the content of the rows it reads (image files named by path:
    their stamps too) and the generation settings.

    ``fingerprint``: :func:`source_fingerprint` of ``ds`` when the caller has it (not hashed again).
    """
    read = [c for c in READ if c in ds.column_names]
    return identity(data=ds, columns=read, params={"generation": dict(generation)},
                    fingerprint=fingerprint or source_fingerprint(ds))["key"]


def safe_name(name: str) -> str:
    """A dataset name usable in a folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "dataset"


def default_recipe(model: str | os.PathLike) -> dict[str, Any]:
    """The package's CPU recipe for a tiny checkpoint (the ``tiny`` preset), else ``{}`` (LLaVA defaults)."""
    if os.path.isfile(os.path.join(os.fspath(model), "tiny_architecture.json")):
        from ..models.recipes import recipe_preset

        return recipe_preset("tiny")
    return {}


def fine_tune(
    ds: Dataset, *, model: str | os.PathLike, name: str, work_dir: str, recipe: Mapping[str, Any],
    cache: bool | None = None, fingerprint: str | None = None,
) -> tuple[str, str]:
    """``(checkpoint, how)``: model_T in ``work_dir/models/<T>-<key>``, ``key`` = the run's identity
    (:func:`hf_vitcurate.models.training.train_identity`, which holds the stamps of image
    files named by path; its cache entry is keyed by :func:`hf_vitcurate.models.cache.train_key`
    of the same identity).

    ``how``: ``"found"`` (already in ``work_dir``), ``"cached"`` (copied from the package's
    model cache, :mod:`hf_vitcurate.models.cache`) or ``"trained"`` (trained now, and cached).
    ``fingerprint``: :func:`source_fingerprint` of ``ds`` when the caller has it (not hashed again).
    """
    from ..models import training
    from ..models.cache import train_or_reuse

    ident = training.train_identity(ds, model=model, recipe=recipe, fingerprint=fingerprint)
    out = os.path.join(work_dir, "models", f"{safe_name(name)}-{ident['key']}")
    out, how = train_or_reuse(ds, model=model, output_dir=out, cache=cache, identity=ident, **dict(recipe))
    logger.info("model for %s: %s (%s)", name, out, how)
    return out, how


def pool_sources(sources: Mapping[str, Dataset]) -> tuple[list[str], str]:
    """``(names, by)``: sorted dataset names and the column telling them apart.

    ``source`` when every dataset's rows carry its name there (ShapesWorld, converted
    sources); otherwise a ``dataset`` column is added by :func:`tune_cross_evaluate`.
    """
    names = sorted(sources)
    consistent = all(
        "source" in ds.column_names and set(arrow_column(ds, "source").to_pylist()) <= {name}
        for name, ds in sources.items()
    )
    return names, "source" if consistent else "dataset"


def answer_all(
    sources: Mapping[str, Dataset],
    models: Mapping[str, str],
    work_dir: str,
    *,
    variant: str,
    restart: bool,
    cache: bool | None = None,
    fingerprints: Mapping[str, str] | None = None,
    **generation: Any,
) -> dict[str, dict[str, list]]:
    """``{target: {answer__T: [...], mq__T: [...]}}``: every model_T answers every other dataset, scored by MQ.

    Model-outer, so each model answers every other dataset while it is loaded (one load per
    model). A model does not answer its own dataset: those cells are nulls. Finished answers
    also go to the package's cache (:func:`hf_vitcurate.models.cache.cached_stage`), so a new
    ``work_dir`` with the same models and rows loads no model; ``cache=False`` turns it off.
    ``fingerprints``: ``{name: source_fingerprint(sources[name])}`` when the caller has them;
    each dataset's fingerprint keys its answers, its cache entries and its chunks (never hashed again).
    """
    from ..models.cache import cached_stage
    from ..stages.generate import generate, release_model
    from ..stages.mq import mq

    names = sorted(sources)
    columns: dict[str, dict[str, list]] = {t: {} for t in names}
    # Other data or generation settings are other answers: their own chunk folders (a rerun never mixes them).
    settings = {k: v for k, v in generation.items() if k in ("max_new_tokens", "chunk_size")}
    cores = {t: sources[t].select_columns([c for c in sources[t].column_names if c in CORE]) for t in names}
    prints = {t: (fingerprints or {}).get(t) or source_fingerprint(cores[t]) for t in names}
    keys = {t: answers_key(cores[t], settings, fingerprint=prints[t]) for t in names}
    try:
        for name in names:
            a_col, m_col = ANSWER.format(name), MQ.format(name)
            for target in names:
                if name == target:
                    columns[target][a_col] = columns[target][m_col] = [None] * len(sources[target])
                    continue
                chunks = os.path.join(work_dir, "answers", os.path.basename(models[name]),
                                      f"on-{safe_name(target)}-{keys[target]}")
                answered = cached_stage(generate, cores[target], model=models[name], work_dir=chunks, cache=cache,
                                        fingerprint=prints[target], restart=restart, column=a_col,
                                        keep_loaded=True, **generation)
                answered = mq(answered, answer_column=a_col, model_name=name, variant=variant)
                columns[target][a_col] = arrow_column(answered, a_col).to_pylist()
                columns[target][m_col] = arrow_column(answered, m_col).to_pylist()
    finally:
        release_model()
    return columns


def multi_turn_rows(ds: Dataset) -> int:
    """Rows of ``ds`` with more than one human/gpt pair.

    >>> from datasets import Dataset
    >>> t = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
    >>> multi_turn_rows(Dataset.from_dict({"conversations": [t, t + t]}))
    1
    """
    import pyarrow.compute as pc

    lengths = pc.list_value_length(arrow_column(ds, "conversations"))
    return int(pc.sum(pc.greater(lengths, 2)).as_py() or 0)


def as_triplets(sources: Mapping[str, Dataset], *, explode: bool) -> dict[str, Dataset]:
    """The sources with multi-turn rows cut into single-turn rows (``explode``), else as given with a warning."""
    from ..formats.explode import explode_turns

    out = {}
    for name, ds in sources.items():
        multi = multi_turn_rows(ds)
        if multi and explode:
            logger.info("%s: %d multi-turn row(s) cut into single-turn triplets (ids {id}#t{k})", name, multi)
            ds = explode_turns(ds)
        elif multi:
            # INFO, not WARNING: explode=False is the caller's explicit choice (the default cuts them).
            logger.info("%s: %d multi-turn row(s) kept whole (explode=False): only their last turn is answered "
                           "and scored", name, multi)
        out[name] = ds
    return out


def scored_pool(sources: Mapping[str, Dataset], columns: Mapping[str, Mapping[str, list]], by: str) -> Dataset:
    """The sources concatenated, each with the ``answer__T``/``mq__T`` columns (and ``dataset`` when ``by`` is it)."""
    names = sorted(sources)
    features: dict[str, Any] = {}
    for name in names:
        features.update({ANSWER.format(name): Value("string"), MQ.format(name): Value("float64")})
    scored = []
    for target in names:
        new = {c: columns[target][c] for c in features}  # the same column order for every dataset
        feats = dict(features)
        if by == "dataset":
            new["dataset"], feats["dataset"] = [target] * len(sources[target]), Value("string")
        scored.append(add_columns(sources[target], new, features=feats))
    return provenance.with_steps(concatenate_datasets(scored), provenance.merge(scored))


def tune_cross_evaluate(
    sources: Mapping[str, Dataset],
    *,
    model: str | os.PathLike,
    work_dir: str | os.PathLike,
    recipe: Mapping[str, Any] | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    seed: int = 0,
    variant: str = "C1",
    reduce: str = "mean",
    chunk_size: int = 256,
    num_threads: int | None = None,
    explode: bool = True,
    restart: bool = False,
    cache: bool | None = None,
) -> DriverSelection:
    """Tune ``model`` on each source, answer every other source, score, DQ and SQ (see the module docstring).

    ``sources``: ``{name: Dataset}`` in the canonical schema, one protocol dataset each
    (e.g. :func:`hf_vitcurate.synthetic.shapesworld` without ``benchmark``). ``recipe``:
    options of :func:`hf_vitcurate.models.train` (default :func:`default_recipe`);
    ``seed`` is the training seed unless the recipe sets one. ``variant``/``reduce``: MQ
    variant and MQ^D reduction of the DQ matrix (SQ always uses per-sample MQ^S).
    ``explode``: cut multi-turn rows into single-turn triplets first (the paper's unit;
    see the module docstring). ``restart=True`` discards the answer chunks in ``work_dir`` (cached models are kept:
    their folder names hash everything they depend on). ``cache``: fine-tunes go through the package's
    model cache (:func:`hf_vitcurate.models.cache.cached_train`: keyed by the base model's content,
    the rows, the full recipe, the code and the device, so a rerun into a new ``work_dir`` trains
    nothing), and so do the answers (:func:`~hf_vitcurate.models.cache.cached_stage`); on by
    default, off with ``cache=False`` or ``HF_VITCURATE_TINY_CACHE=0``.

    Returns a :class:`~hf_vitcurate.results.DriverSelection` whose dataset is the scored
    pool (every row, with ``answer__T``, ``mq__T`` and ``sq``), whose manifest holds
    ``by``, ``models``, ``trained`` (models put into ``work_dir`` by this call: trained now, or
    copied from the cache, those also listed in ``cached``), ``reused`` (found in ``work_dir``),
    ``params`` and ``dq``, and ``.dq`` the
    :class:`~hf_vitcurate.select.revolion.DQTable`. Select from it with
    :func:`~hf_vitcurate.select.revolion.release` or ``s1``/``s2``/``s3`` (``by=manifest["by"]``).
    """
    if len(sources) < 2:
        raise ConfigError(f"tune-cross-evaluation needs at least 2 datasets, got {len(sources)}")
    empty = [n for n, d in sources.items() if len(d) == 0]
    if empty:
        raise ConfigError(f"dataset(s) {empty} are empty: every source needs rows")
    work_dir = os.fspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    sources = as_triplets(sources, explode=explode)
    rec = {"seed": seed, **dict(default_recipe(model) if recipe is None else recipe)}
    names, by = pool_sources(sources)
    models, how = {}, {}
    # Each source is read by its training run and by every other source's model answering it: its
    # fingerprint is computed here, once (N hashes, not N x (N - 1) + N), and passed to each of them.
    prints = {name: source_fingerprint(sources[name]) for name in names}
    for name in names:
        models[name], how[name] = fine_tune(sources[name], model=model, name=name, work_dir=work_dir,
                                            recipe=rec, cache=cache, fingerprint=prints[name])
    columns = answer_all(sources, models, work_dir, variant=variant, restart=restart, cache=cache,
                         fingerprints=prints, max_new_tokens=max_new_tokens, batch_size=batch_size,
                         chunk_size=chunk_size, num_threads=num_threads)
    trained, reused = [n for n in names if how[n] != "found"], [n for n in names if how[n] == "found"]
    pool = scored_pool(sources, columns, by)
    table = dq_table(pool, names=names, by=by, reduce=reduce, variant=variant)
    pool = add_sq(pool, dq=table, by=by)
    params = {"datasets": names, "by": by, "model": os.fspath(model), "recipe": rec, "max_new_tokens": max_new_tokens,
              "variant": variant, "reduce": reduce, "decoding": "greedy", "models": models, "explode": explode}
    pool = provenance.record(pool, "tune_cross_evaluate", kind="stage", rows_in=len(pool), params=params,
                             model=os.fspath(model), seed=seed)
    manifest = {"method": "tune_cross_evaluate", "params": params, "seed": seed, "n_pool": len(pool),
                "n_selected": len(pool), "ids_sha256": ids_sha256(pool), "by": by, "models": models,
                "trained": trained, "reused": reused, "cached": [n for n in names if how[n] == "cached"],
                "dq": table.to_dict()}
    result = DriverSelection.of(pool, manifest, dq=table)
    from ..distributed import state

    if state().is_main_process:
        write_outputs(result, work_dir)
    return result


def write_outputs(result: DriverSelection, out_dir: str) -> dict[str, str]:
    """``dq.csv``, ``dq.md``, ``dq.json``, ``dq_heatmap.png`` and ``sq_hist.png`` of a :func:`tune_cross_evaluate` result."""
    from .revolion_report import dq_heatmap, save_png, sq_histograms

    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, f) for k, f in
             {"csv": "dq.csv", "md": "dq.md", "json": "dq.json", "heatmap": "dq_heatmap.png", "sq": "sq_hist.png"}.items()}
    result.dq.to_csv(paths["csv"])
    with open(paths["md"], "w", encoding="utf-8") as f:
        f.write(result.dq.to_markdown() + "\n")
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump(result.manifest, f, indent=2, default=str)
    save_png(dq_heatmap(result.dq), paths["heatmap"])
    save_png(sq_histograms(result.dataset, by=result.manifest["by"]), paths["sq"])
    return paths
