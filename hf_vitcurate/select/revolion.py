"""REVO-LION's protocol pieces: splits, DQ, SQ, S1/S2/S3 and the release.

From *On the Evaluation and Refinement of Vision-Language Instruction Tuning Datasets*
(REVO-LION, arXiv:2310.06594); every formula and choice is in docs/methods.md.

Every function works on one pooled ``Dataset`` whose column ``by`` names the protocol
*dataset* of each row (default: ``dataset`` when the pool has that column, else ``source``;
see :func:`group_column`), and on the ``mq__{T}`` columns that
:func:`hf_vitcurate.select.revolion_driver.tune_cross_evaluate` (or
:func:`hf_vitcurate.stages.mq`) adds: ``mq__T`` of a row of dataset i is MQ^S_{T→i}, the
MQ of the model tuned on T answering that row.

- :func:`split_protocol` - per dataset, 80% tuning pool / 20% held out, Eval600 = 600
  held-out rows (fewer if fewer); ``seed="SPLIT1"``/``"SPLIT2"`` are the two partitions.
- :func:`mq_matrix`, :func:`dq_vector`, :func:`dq_table` - MQ^D_{T→i} (mean of ``mq__T``
  over dataset i; MQ_{T→T} = 1) and ``DQ_T = 1 + Σ_{i≠T} MQ^D_{T→i}`` (Eq. 2).
- :func:`add_sq` - the ``sq`` column, ``SQ = Σ_{i≠E} DQ_i · MQ^S_{i→E}`` with raw DQ weights (Eq. 3).
- :func:`s1` (top ``round(P·n_i)`` by SQ per dataset, ties by id, exact counts), :func:`s2`
  (the same counts at random), :func:`s3` (SQ within μ_i ± λσ_i), :func:`release`
  (P = 0.7, then REVO-LION-Eval = 600 random rows per refined dataset, REVO-LION-Tune = the rest).
  The paper's portion P is ``fraction`` here (a share of each dataset).

Choices the paper leaves open (the other reading in parentheses):

- counts are rounded half up, ``floor(P·n + 0.5)`` (Python's ``round`` rounds half to even);
- σ in S3 is the population standard deviation, ``ddof=0`` (``ddof=1``: the sample one);
- random draws (splits, S2, Eval) use one generator per dataset seeded by
  ``(seed, crc32(name))``, so adding a dataset never changes the rows drawn from another
  (one generator over the whole pool would);
- the paper's S1 keeps rows with ``SQ >= τ_i`` (all ties at the threshold); the
  default keeps exactly ``round(P·n_i)`` rows, ties broken by id (``threshold=True``: the paper's).

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a", "b", "c", "d"], "source": ["A", "A", "B", "B"],
    ...                         "sq": [0.2, 0.9, 0.5, 0.5]})
    >>> sub, manifest = s1(ds, fraction=0.5)
    >>> list(sub["id"]), manifest["groups"]["B"]["kept"]
    (['b', 'c'], 1)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, Value

from .. import provenance
from ..columns import add_columns, arrow_column, list_column
from ..errors import ConfigError, ValidationError, missing_column
from ..results import Selection
from .common import finish, quota, score_array

SPLIT_SEEDS = {"SPLIT1": 1, "SPLIT2": 2}
EVAL_SIZE = 600
TUNE_FRACTION = 0.8
RELEASE_P = 0.7
LAMBDAS = (1.0, 1.5, 2.0)
MQ_PREFIX = "mq__"


# --- helpers ----------------------------------------------------------------------------


def resolve_seed(seed: int | str) -> int:
    """``"SPLIT1"``/``"SPLIT2"`` → their seeds; an int is itself."""
    if isinstance(seed, str):
        if seed.upper() not in SPLIT_SEEDS:
            raise ConfigError(f"seed={seed!r} must be a whole number or one of {sorted(SPLIT_SEEDS)}")
        return SPLIT_SEEDS[seed.upper()]
    return int(seed)


def rng_for(seed: int, name: str) -> np.random.Generator:
    """The generator of one dataset: independent of the other datasets in the pool."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def group_column(ds: Dataset, by: str | None) -> str:
    """The column naming each row's protocol dataset: ``by``, else ``dataset`` when the pool has
    it (:func:`~hf_vitcurate.select.revolion_driver.tune_cross_evaluate` adds it when ``source``
    does not tell the datasets apart), else ``source``.

    >>> from datasets import Dataset
    >>> group_column(Dataset.from_dict({"source": ["a"]}), None), group_column(Dataset.from_dict({"dataset": ["a"]}), None)
    ('source', 'dataset')
    """
    if by is not None:
        return by
    return "dataset" if "dataset" in ds.column_names else "source"


def groups(ds: Dataset, by: str | None = None) -> tuple[list[str], np.ndarray]:
    """``(names, codes)``: the protocol datasets in sorted order and each row's index into them."""
    by = group_column(ds, by)
    if by not in ds.column_names:
        raise missing_column(by, ds.column_names, what="group column",
                             hint="pass by=COLUMN, the column that names each row's dataset")
    col = arrow_column(ds, by).combine_chunks() if len(ds) else pa.array([], pa.string())
    if col.null_count:
        raise ConfigError(f"column {by!r} has {col.null_count} null value(s): every row needs its dataset "
                          "(fill them, or pass by=another column)")
    names = sorted(pc.unique(col).to_pylist())
    codes = np.asarray(pc.index_in(col, value_set=pa.array(names, col.type)), dtype=np.int64)
    return names, codes


def members(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices of each group, ascending."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]


def _float_column(ds: Dataset, name: str) -> np.ndarray:
    if name not in ds.column_names:
        raise missing_column(name, ds.column_names, hint="run the tune-cross-evaluation first")
    col = arrow_column(ds, name)
    return np.asarray(pc.fill_null(pc.cast(col, pa.float64()), np.nan).to_numpy(), dtype=np.float64) if len(ds) else np.zeros(0)


# --- splits -------------------------------------------------------------------------------


def split_protocol(
    ds: Dataset,
    *,
    seed: int | str = "SPLIT1",
    eval_size: int = EVAL_SIZE,
    tune_fraction: float = TUNE_FRACTION,
    by: str | None = None,
) -> Selection:
    """Per dataset: a tuning pool of ``round(tune_fraction·n)`` rows and Eval600 from the rest.

    Returns a :class:`~hf_vitcurate.results.Selection` of ``DatasetDict(tune=..., eval=...)`` and the manifest; the held-out rows beyond
    ``eval_size`` are in neither (the paper's 20% minus Eval600). Deterministic per seed;
    ``seed="SPLIT1"`` / ``"SPLIT2"`` give the paper's two partitions.

    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": [str(i) for i in range(10)], "source": ["A"] * 10})
    >>> parts, m = split_protocol(ds, seed="SPLIT1", eval_size=1)
    >>> len(parts["tune"]), len(parts["eval"]), m["groups"]["A"]
    (8, 1, {'n': 10, 'tune': 8, 'heldout': 2, 'eval': 1})
    """
    by = group_column(ds, by)
    s = resolve_seed(seed)
    if not 0 < tune_fraction < 1:
        raise ConfigError(f"tune_fraction={tune_fraction} must be between 0 and 1 (both excluded)")
    names, codes = groups(ds, by)
    tune_idx, eval_idx, per = [], [], {}
    for name, rows in zip(names, members(codes, len(names))):
        perm = rows[rng_for(s, name).permutation(len(rows))]
        n_tune = quota(tune_fraction, len(rows), name="tune_fraction")
        held = perm[n_tune:]
        tune_idx.append(perm[:n_tune])
        eval_idx.append(held[:eval_size])
        per[name] = {"n": len(rows), "tune": n_tune, "heldout": len(held), "eval": min(eval_size, len(held))}
    params = {"seed": seed, "eval_size": eval_size, "tune_fraction": tune_fraction, "by": by}
    tune, m_tune = finish(ds, _cat(tune_idx), "revolion_split_tune", params=params, seed=s, extra={"groups": per})
    ev, m_eval = finish(ds, _cat(eval_idx), "revolion_split_eval600", params=params, seed=s, extra={"groups": per})
    return Selection(DatasetDict({"tune": tune, "eval": ev}), {"method": "revolion_split", "params": params, "seed": s,
                                                               "groups": per, "tune": m_tune, "eval": m_eval})


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


# --- MQ^D, DQ, SQ -------------------------------------------------------------------------


def dq_vector(matrix: np.ndarray) -> np.ndarray:
    """``DQ_T = 1 + Σ_{i≠T} M[T, i]`` for a T × i matrix of MQ^D (the diagonal is ignored).

    >>> dq_vector(np.array([[1.0, 0.5, 0.25], [0.1, 1.0, 0.2], [0.3, 0.3, 1.0]])).tolist()
    [1.75, 1.3, 1.6]
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ConfigError(f"the MQ^D matrix must be square (T × i over the same datasets), got shape {m.shape}")
    off = m.copy()
    np.fill_diagonal(off, 0.0)
    if np.isnan(off).any():
        t, i = map(int, np.argwhere(np.isnan(off))[0])
        raise ConfigError(f"MQ^D[{t}, {i}] is missing: every model must answer every other dataset")
    return 1.0 + off.sum(1)


def mq_matrix(
    ds: Dataset,
    *,
    names: Sequence[str] | None = None,
    by: str | None = None,
    reduce: str = "mean",
    variant: str = "C1",
) -> tuple[list[str], np.ndarray]:
    """``(names, M)`` with ``M[T, i]`` = MQ^D of the model tuned on T over dataset i, ``M[T, T] = 1``.

    ``reduce="mean"`` (the default) averages the ``mq__T`` column over dataset i's rows;
    ``reduce="sum"`` recomputes MQ^D from the ``answer__T`` column with
    :func:`hf_vitcurate.metrics.mq_dataset` (the sum of corpus-level scores, the magnitudes of
    the REVO-LION paper's Table 6).
    """
    by = group_column(ds, by)
    all_names, codes = groups(ds, by)
    names = list(names) if names is not None else all_names
    missing = [n for n in names if n not in all_names]
    if missing:
        raise ConfigError(f"dataset(s) {missing} have no rows in column {by!r} (has {all_names})")
    rows = dict(zip(all_names, members(codes, len(all_names))))
    m = np.eye(len(names))
    if reduce == "mean":
        for t, model in enumerate(names):
            values = _float_column(ds, MQ_PREFIX + model)
            for i, name in enumerate(names):
                if i != t:
                    m[t, i] = np.mean(values[rows[name]]) if len(rows[name]) else np.nan
    elif reduce == "sum":
        from ..metrics.mq import mq_dataset
        from ..stages.mq import last_answers

        refs = np.asarray(last_answers(ds.select_columns(["conversations"]).with_format("arrow")[:]).to_pylist(),
                          dtype=object)
        for t, model in enumerate(names):
            answers = np.asarray(list_column(ds, f"answer__{model}"), dtype=object)
            for i, name in enumerate(names):
                if i != t:
                    idx = rows[name]
                    m[t, i] = mq_dataset(list(answers[idx]), list(refs[idx]), variant=variant, reduce="sum")
    else:
        raise ConfigError(f"reduce={reduce!r} must be 'mean' or 'sum'")
    return names, m


@dataclass
class DQTable:
    """The DQ matrix of a tune-cross-evaluation: ``matrix[T, i]`` = MQ^D_{T→i}, ``dq[T]`` (Eq. 2)."""

    names: list[str]
    matrix: np.ndarray
    dq: np.ndarray

    @classmethod
    def from_matrix(cls, names: Sequence[str], matrix: np.ndarray) -> "DQTable":
        return cls(list(names), np.asarray(matrix, dtype=np.float64), dq_vector(matrix))

    def weights(self) -> dict[str, float]:
        """``{T: DQ_T}``: the SQ weights."""
        return {n: float(v) for n, v in zip(self.names, self.dq)}

    def rows(self, digits: int | None = 4) -> list[dict[str, Any]]:
        """One row per tuning dataset T: its MQ^D on each dataset i, then DQ_T."""
        r = (lambda x: round(float(x), digits)) if digits is not None else float
        return [{"tuned on": t, **{i: r(self.matrix[a, b]) for b, i in enumerate(self.names)}, "DQ": r(self.dq[a])}
                for a, t in enumerate(self.names)]

    def to_markdown(self, digits: int = 4) -> str:
        from ..hub.card import md_table

        rows = self.rows(digits)
        headers = list(rows[0]) if rows else ["tuned on", "DQ"]
        return md_table(headers, [[row[h] for h in headers] for row in rows])

    def to_csv(self, path: str | None = None) -> str:
        import csv
        import io

        buf = io.StringIO()
        rows = self.rows(None)
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["tuned on", "DQ"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(buf.getvalue())
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {"names": self.names, "matrix": self.matrix.tolist(), "dq": self.dq.tolist()}


def dq_table(ds: Dataset, *, names: Sequence[str] | None = None, by: str | None = None, reduce: str = "mean",
             variant: str = "C1") -> DQTable:
    """:class:`DQTable` of a pool carrying the ``mq__T`` columns (see :func:`mq_matrix`)."""
    by = group_column(ds, by)
    names, m = mq_matrix(ds, names=names, by=by, reduce=reduce, variant=variant)
    return DQTable.from_matrix(names, m)


def sq_values(ds: Dataset, *, dq: Mapping[str, float] | DQTable, by: str | None = None) -> np.ndarray:
    """SQ of every row: ``Σ_{i≠E} DQ_i · mq__i`` for a row of dataset E (raw DQ weights, Eq. 3)."""
    by = group_column(ds, by)
    weights = dq.weights() if isinstance(dq, DQTable) else {str(k): float(v) for k, v in dq.items()}
    names, codes = groups(ds, by)
    sq = np.zeros(len(ds))
    for model, w in weights.items():
        values = _float_column(ds, MQ_PREFIX + model)
        own = np.asarray([n == model for n in names], dtype=bool)[codes] if len(ds) else np.zeros(0, bool)
        bad = np.isnan(values) & ~own
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError(list_column(ds.select([row]), "id")[0], MQ_PREFIX + model,
                                  "MQ is missing; every other dataset's model must answer every row", code="missing_mq")
        sq += np.where(own, 0.0, w * np.nan_to_num(values))
    return sq


def add_sq(ds: Dataset, *, dq: Mapping[str, float] | DQTable, by: str | None = None, column: str = "sq") -> Dataset:
    """``ds`` with the ``sq`` column (Eq. 3; see :func:`sq_values`)."""
    by = group_column(ds, by)
    weights = dq.weights() if isinstance(dq, DQTable) else dict(dq)
    values = sq_values(ds, dq=weights, by=by)
    base = ds.remove_columns([column]) if column in ds.column_names else ds
    out = add_columns(base, {column: values.tolist()}, features={column: Value("float64")})
    return provenance.record(out, "sq", kind="stage", rows_in=len(ds), parent=ds,
                             params={"column": column, "by": by, "dq": {k: float(v) for k, v in weights.items()},
                                     "weights": "raw DQ"})


# --- selections ---------------------------------------------------------------------------


def _ranked(ds: Dataset, column: str, codes: np.ndarray) -> np.ndarray:
    """Row order: by group, then score descending, then id ascending (one Arrow sort)."""
    scores = score_array(ds, column)
    table = pa.table({"g": codes, "s": scores, "id": arrow_column(ds, "id")})
    return np.asarray(pc.sort_indices(table, sort_keys=[("g", "ascending"), ("s", "descending"), ("id", "ascending")]))


def s1(ds: Dataset, *, fraction: float = RELEASE_P, by: str | None = None, column: str = "sq",
       threshold: bool = False) -> Selection:
    """S1: per dataset, the ``round(P·n_i)`` rows of highest SQ (ties by id; exact counts); P is ``fraction``.

    ``threshold=True`` is the paper's literal rule: every row with ``SQ >= τ_i``, τ_i the
    SQ of the last row of the exact count (ties at τ_i all kept, so counts may exceed).
    """
    by = group_column(ds, by)
    names, codes = groups(ds, by)
    order = _ranked(ds, column, codes)
    scores = score_array(ds, column)
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(len(names) + 1))
    keep, per = [], {}
    for g, name in enumerate(names):
        block = order[starts[g] : starts[g + 1]]
        k = quota(fraction, len(block))
        tau = float(scores[block[k - 1]]) if k else None
        chosen = block[scores[block] >= tau] if (threshold and k) else block[:k]
        keep.append(chosen)
        per[name] = {"n": len(block), "quota": k, "kept": len(chosen), "threshold": tau}
    params = {"fraction": fraction, "by": by, "column": column, "ties": "threshold" if threshold else "id"}
    return finish(ds, _cat(keep), "revolion_s1", params=params, extra={"groups": per})


def s2(ds: Dataset, *, fraction: float = RELEASE_P, seed: int = 0, by: str | None = None) -> Selection:
    """S2: per dataset, ``round(P·n_i)`` rows drawn uniformly (the counts of S1); P is ``fraction``."""
    by = group_column(ds, by)
    names, codes = groups(ds, by)
    keep, per = [], {}
    for name, rows in zip(names, members(codes, len(names))):
        k = quota(fraction, len(rows))
        keep.append(rows[rng_for(seed, name).choice(len(rows), size=k, replace=False)])
        per[name] = {"n": len(rows), "quota": k, "kept": k}
    return finish(ds, _cat(keep), "revolion_s2", params={"fraction": fraction, "by": by}, seed=seed, extra={"groups": per})


def s3(ds: Dataset, *, lam: float = 1.0, by: str | None = None, column: str = "sq",
       ddof: int = 0) -> Selection:
    """S3: per dataset, the rows with SQ in ``[μ_i - λσ_i, μ_i + λσ_i]`` (λ ∈ {1.0, 1.5, 2.0} in the paper)."""
    by = group_column(ds, by)
    if lam < 0:
        raise ConfigError(f"lam={lam} must be >= 0")
    names, codes = groups(ds, by)
    scores = score_array(ds, column)
    keep, per = [], {}
    for name, rows in zip(names, members(codes, len(names))):
        s = scores[rows]
        mu = float(s.mean()) if len(s) else math.nan
        sigma = float(s.std(ddof=ddof)) if len(s) > ddof else 0.0
        lo, hi = mu - lam * sigma, mu + lam * sigma
        chosen = rows[(s >= lo) & (s <= hi)]
        keep.append(chosen)
        per[name] = {"n": len(rows), "kept": len(chosen), "mean": mu, "std": sigma, "low": lo, "high": hi}
    params = {"lambda": lam, "by": by, "column": column, "ddof": ddof}
    return finish(ds, _cat(keep), "revolion_s3", params=params, extra={"groups": per})


def release(
    ds: Dataset,
    *,
    fraction: float = RELEASE_P,
    eval_size: int = EVAL_SIZE,
    seed: int = 0,
    by: str | None = None,
    column: str = "sq",
    threshold: bool = False,
) -> Selection:
    """The REVO-LION release: S1 at P = ``fraction`` (0.7), then per refined dataset ``eval_size`` random rows → Eval, rest → Tune.

    ``threshold`` is passed to :func:`s1`: ``True`` keeps every row with SQ >= the
    P-quantile threshold (the paper's rule; ties may exceed ``round(P·n_i)``).

    Returns a :class:`~hf_vitcurate.results.Selection` of ``DatasetDict(tune=..., eval=...)``
    and a manifest with the S1, Tune and Eval manifests.
    """
    by = group_column(ds, by)
    refined, m_s1 = s1(ds, fraction=fraction, by=by, column=column, threshold=threshold)
    names, codes = groups(refined, by)
    eval_idx, tune_idx, per = [], [], {}
    for name, rows in zip(names, members(codes, len(names))):
        picked = rows[rng_for(seed, name).permutation(len(rows))]
        eval_idx.append(picked[:eval_size])
        tune_idx.append(picked[eval_size:])
        per[name] = {"refined": len(rows), "eval": min(eval_size, len(rows)), "tune": max(0, len(rows) - eval_size)}
    params = {"fraction": fraction, "eval_size": eval_size, "by": by, "column": column, "threshold": threshold}
    tune, m_tune = finish(refined, _cat(tune_idx), "revolion_tune", params=params, seed=seed, extra={"groups": per})
    ev, m_eval = finish(refined, _cat(eval_idx), "revolion_eval", params=params, seed=seed, extra={"groups": per})
    manifest = {"method": "revolion_release", "params": params, "seed": seed, "groups": per, "s1": m_s1,
                "tune": m_tune, "eval": m_eval}
    return Selection(DatasetDict({"tune": tune, "eval": ev}), manifest)
