"""Flag columns shared by the model stages: per-row results put back in place, flags counted.

A model stage decodes a chunk's images (:func:`hf_vitcurate.images.decode_rows`), computes
the good rows only, then :func:`scatter` puts their values back among the flagged rows;
:func:`flag_counts` sums the flags for the provenance.

Example:
    >>> scatter(3, [0, 2], [1.5, 2.5], {1: "image_error: missing file"})
    [1.5, 'image_error: missing file', 2.5]
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from datasets import Dataset


def scatter(n: int, good: list[int], values: list, fill: dict[int, Any], default: Any = None) -> list:
    """A column of ``n`` rows: ``values`` at the ``good`` positions, ``fill[i]`` (else ``default``) elsewhere.

    >>> scatter(4, [0, 2], ["a", "c"], {1: "bad"})
    ['a', 'bad', 'c', None]
    """
    out = [fill.get(i, default) for i in range(n)]
    for i, v in zip(good, values):
        out[i] = v
    return out


def flag_counts(ds: Dataset, column: str) -> dict[str, int]:
    """How many rows carry each non-empty value of the flag ``column`` (for the provenance and the card).

    Image and model errors are counted by kind (``"image_error"``), their reasons vary per row.

    >>> flag_counts(Dataset.from_dict({"f": ["", "truncated", "image_error: missing file", "image_error: x"]}), "f")
    {'image_error': 2, 'truncated': 1}
    """
    counts = Counter(f.split(":", 1)[0] for f in ds.with_format("arrow")[column].to_pylist() if f)
    return dict(sorted(counts.items()))
