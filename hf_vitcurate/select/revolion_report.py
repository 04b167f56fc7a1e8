"""REVO-LION's figures and card data: the DQ heat map, SQ histograms, and what ``hub.publish`` needs.

Example:
    >>> fig = dq_heatmap(result.dq); save_png(fig, "out/dq_heatmap.png")          # doctest: +SKIP
    >>> publish(release_dd, "me/revo-lion", local_dir="out/revo", card="revo_lion",
    ...         card_data=card_data(result, manifest))                              # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
from datasets import Dataset

from ..columns import arrow_column
from .revolion import DQTable, groups, members


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in Spaces
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str) -> None:
    """Write a figure as PNG (byte-identical reruns: no software metadata) and close it."""
    from ..hub.plots import save_figure

    save_figure(fig, path)
    _pyplot().close(fig)


def dq_heatmap(dq: DQTable, title: str = "MQ^D of the model tuned on T (rows) on dataset i (columns)"):
    """Heat map of the T × i matrix of MQ^D (diagonal = 1 by definition, drawn hatched), DQ per row."""
    plt = _pyplot()
    k = len(dq.names)
    size = max(3.5, 0.7 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), dpi=90)
    shown = np.ma.masked_where(np.eye(k, dtype=bool), dq.matrix)
    off = dq.matrix[~np.eye(k, dtype=bool)] if k > 1 else np.zeros(1)
    image = ax.imshow(shown, cmap="viridis", vmin=float(np.min(off)), vmax=float(np.max(off)) or 1.0)
    for t in range(k):
        for i in range(k):
            text = "1 (T=i)" if t == i else f"{dq.matrix[t, i]:.3f}"
            ax.text(i, t, text, ha="center", va="center", fontsize=7, color="black" if t == i else "white")
    ax.set_xticks(range(k), dq.names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), [f"{n}  (DQ {v:.2f})" for n, v in zip(dq.names, dq.dq)], fontsize=8)
    ax.set_xlabel("evaluated on dataset i")
    ax.set_ylabel("tuned on dataset T")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def sq_histograms(ds: Dataset, *, by: str | None = None, column: str = "sq", bins: int = 30,
                  thresholds: dict[str, float] | None = None):
    """One SQ histogram per dataset (small multiples); ``thresholds`` (e.g. S1's τ_i) drawn as lines."""
    plt = _pyplot()
    names, codes = groups(ds, by)
    values = np.asarray(arrow_column(ds, column).to_numpy(), dtype=np.float64) if len(ds) else np.zeros(0)
    cols = min(3, max(1, len(names)))
    rows = -(-len(names) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), dpi=90, squeeze=False)
    for ax, name, idx in zip(axes.flat, names, members(codes, len(names))):
        v = values[idx]
        ax.hist(v, bins=bins, color="tab:blue", alpha=0.8)
        if thresholds and thresholds.get(name) is not None:
            ax.axvline(thresholds[name], color="tab:red", lw=1, label="S1 threshold")
            ax.legend(fontsize=6)
        ax.set_title(f"{name} (n={len(v)}, mean {v.mean():.2f})" if len(v) else name, fontsize=8)
        ax.set_xlabel(column, fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def card_data(result, manifest: dict[str, Any] | None = None, *, sources: dict[str, Any] | None = None,
              **extra: Any) -> dict[str, Any]:
    """``card_data`` for ``hub.publish(..., card="revo_lion")``: DQ table, heat map, SQ histograms, counts.

    ``result``: what :func:`~.revolion_driver.tune_cross_evaluate` returns; ``manifest``: the
    :func:`~.revolion.release` manifest (adds the per-dataset counts table and the S1
    thresholds on the histograms); ``sources``: ``{name: license}`` for the card.
    """
    thresholds = None
    tables: dict[str, Any] = {"DQ matrix (MQ^D of the model tuned on T, on dataset i) and DQ": result.dq.rows()}
    if manifest is not None:
        s1_groups = manifest["s1"]["groups"]
        thresholds = {n: g["threshold"] for n, g in s1_groups.items()}
        tables["Release counts per dataset"] = [
            {"dataset": n, "rows": g["n"], "kept by S1": g["kept"], "SQ threshold": g["threshold"],
             "Eval": manifest["groups"][n]["eval"], "Tune": manifest["groups"][n]["tune"]}
            for n, g in s1_groups.items()
        ]
    return {
        "pretty_name": "REVO-LION",
        "sources": sources or {n: "unknown" for n in result.dq.names},
        "plots": {"DQ heat map": dq_heatmap(result.dq),
                  "SQ per dataset": sq_histograms(result.dataset, by=result.manifest["by"], thresholds=thresholds)},
        "tables": tables,
        **extra,
    }
