"""PNG plots for the card: a histogram per numeric score column, and the method's own figures.

Score columns are the numeric columns a stage added (``necessity``, ``sq``,
``informativeness``, ``mq__*``, ...): not the canonical columns, not booleans, and not
columns starting with ``_`` (``_truth`` is for evaluation only and stays out of cards).
Histograms are computed in two streaming passes over the one column (range, then
counts), so a column of millions of rows never sits in memory as a Python list.

Example:
    >>> from datasets import Dataset, DatasetDict
    >>> ds = Dataset.from_dict({"id": ["a", "b"], "sq": [0.1, 0.9]})
    >>> score_columns(ds.features)
    ['sq']
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, Features, Value

from ..errors import ConfigError, NotFoundError
from ..schema import CORE_COLUMNS

BINS = 30
MAX_SCORE_PLOTS = 32  # per config; a card with hundreds of images helps nobody
_NUMERIC = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64")
# PNG metadata carries the matplotlib version; dropping it keeps reruns byte-identical.
_PNG_META = {"Software": None}


def score_columns(features: Features) -> list[str]:
    """Numeric columns added by stages, in feature order."""
    return [
        name
        for name, feat in features.items()
        if isinstance(feat, Value) and feat.dtype in _NUMERIC and name not in CORE_COLUMNS and not name.startswith("_")
    ]


def slug(text: str) -> str:
    """A file-name-safe version of a title (``"DQ matrix"`` → ``"dq_matrix"``)."""
    return re.sub(r"[^a-z0-9_.\-]+", "_", text.lower()).strip("_") or "plot"


def new_figure(**kwargs):
    """A matplotlib ``Figure`` on the Agg canvas, without pyplot (no global state, a lighter import)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def preload() -> None:
    """Import what :func:`score_histograms` draws with (run in a thread while the shards are written)."""
    new_figure()


def _valid_values(col) -> np.ndarray:
    """The column's values without nulls and NaN (a NaN score is a missing score)."""
    values = col.drop_null().to_numpy(zero_copy_only=False)
    return values[~np.isnan(values)] if values.dtype.kind == "f" else values


def column_stats(ds: Dataset, column: str, *, bins: int = BINS, map_batch_size: int = 200_000) -> dict[str, Any]:
    """Count, nulls, mean, min, max and a ``bins``-bin histogram of one numeric column.

    NaN counts as null (``nulls``) and stays out of ``n``, the mean and the histogram.
    ``min`` and ``max`` are the column's own; a constant column gets one bar of width 1
    around its value, but its min and max stay that value.
    """
    arrow = ds.select_columns([column]).with_format("arrow")
    lo, hi, n, nulls, total = np.inf, -np.inf, 0, 0, 0.0
    for t in arrow.iter(batch_size=map_batch_size):
        values = _valid_values(t[column])
        nulls += len(t) - len(values)
        if len(values):
            lo, hi = min(lo, values.min().item()), max(hi, values.max().item())
            n += len(values)
            total += float(values.sum(dtype=np.float64))
    if n == 0:
        return {"n": 0, "nulls": nulls, "mean": None, "min": None, "max": None, "edges": [], "counts": []}
    edges = np.linspace(lo - 0.5, hi + 0.5, bins + 1) if lo == hi else np.linspace(lo, hi, bins + 1)
    counts = np.zeros(bins, dtype=np.int64)
    for t in arrow.iter(batch_size=map_batch_size):
        counts += np.histogram(_valid_values(t[column]), bins=edges)[0]
    return {"n": n, "nulls": nulls, "mean": total / n, "min": lo, "max": hi, "edges": edges.tolist(), "counts": counts.tolist()}


def score_histograms(tree: dict[str, DatasetDict], root: str) -> list[dict[str, Any]]:
    """Write ``assets/<config>/<column>.png`` for every score column; return what the card lists.

    One figure per config and column, with one step-histogram per split.
    """
    out = []
    for name, dd in tree.items():
        columns = score_columns(next(iter(dd.values())).features)
        for column in columns[:MAX_SCORE_PLOTS]:
            stats = {split: column_stats(ds, column) for split, ds in dd.items()}
            if not any(s["n"] for s in stats.values()):
                continue
            rel = f"assets/{name}/{slug(column)}.png"
            _draw_histogram(column, stats, os.path.join(root, rel))
            for split, s in stats.items():
                out.append({"config": name, "split": split, "column": column, "path": rel,
                            **{k: s[k] for k in ("n", "nulls", "mean", "min", "max")}})
        if len(columns) > MAX_SCORE_PLOTS:
            out.append({"config": name, "split": "", "column": f"(+{len(columns) - MAX_SCORE_PLOTS} more columns not drawn)",
                        "path": "", "n": 0, "nulls": 0, "mean": None, "min": None, "max": None})
    return out


def _draw_histogram(column: str, stats: dict[str, dict[str, Any]], path: str) -> None:
    fig = new_figure(figsize=(5, 3), dpi=80)
    ax = fig.subplots()
    for split, s in stats.items():
        if s["n"]:
            ax.stairs(s["counts"], s["edges"], label=f"{split} (n={s['n']})")
    ax.set_xlabel(column)
    ax.set_ylabel("rows")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(obj: Any, path: str) -> None:
    """Write a matplotlib ``Figure``, PNG bytes, or an existing PNG file to ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if hasattr(obj, "savefig"):
        buf = io.BytesIO()
        obj.savefig(buf, format="png", metadata=_PNG_META)
        data = buf.getvalue()
    elif isinstance(obj, (bytes, bytearray)):
        data = bytes(obj)
    elif isinstance(obj, (str, os.PathLike)):
        if not os.path.isfile(obj):
            raise NotFoundError(f"plot {os.fspath(obj)}: no such PNG file")
        with open(obj, "rb") as f:
            data = f.read()
    else:
        raise ConfigError(f"a plot must be a matplotlib Figure, PNG bytes or a PNG path; got a {type(obj).__name__}")
    with open(path, "wb") as f:
        f.write(data)


def method_plots(plots: dict[str, Any] | None, root: str) -> list[dict[str, str]]:
    """Save ``{title: figure | png bytes | png path}`` under ``assets/`` and return ``[{title, path}]``."""
    out = []
    for title, obj in (plots or {}).items():
        rel = f"assets/{slug(title)}.png"
        save_figure(obj, os.path.join(root, rel))
        out.append({"title": title, "path": rel})
    return out
