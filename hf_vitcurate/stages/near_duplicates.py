"""Near-duplicate rows: the same images and nearly the same text (MinHash LSH, ``datasketch``).

None of the five methods catches duplicated rows, yet pools merged from several sources hold
many (the same image and question copied with a changed word or two). A row is a near
duplicate of an earlier kept row when both show the same images (the same bytes, or the same
path when the bytes are not at hand; text-only rows match text-only rows) and the Jaccard
similarity of their texts' word shingles is at least ``threshold``. Candidates come from
``datasketch.MinHashLSH`` and are confirmed with the MinHash estimate, so the cost grows
with the rows, not their pairs. Rows with different images never match, however alike their
text: "Describe the image." asked of two pictures is two rows. Exact copies of the text are
the case ``threshold=1.0``.

Example:
    >>> from datasets import Dataset
    >>> turns = lambda a: [{"from": "human", "value": "What is on the table?"}, {"from": "gpt", "value": a}]
    >>> ds = Dataset.from_dict({"id": ["a", "b", "c"], "images": [[], [], []], "conversations": [
    ...     turns("A red apple next to a blue cup and a small plate."),
    ...     turns("A red apple next to a blue cup and a small plate!"),
    ...     turns("Two green pears on a wooden board.")]})
    >>> kept, rejected = near_duplicates(ds)
    >>> list(kept["id"]), rejected[0]["duplicate_of"]
    (['a', 'c'], 'a')
"""

from __future__ import annotations

import re

from datasets import Dataset

from ..columns import list_column
from ..errors import ConfigError, missing_column
from ..results import Split
from .image_dedup import image_refs, row_hash, row_ids, split_duplicates

WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, n: int) -> set[bytes]:
    """Lower-cased word ``n``-grams of ``text`` (the words alone when it has fewer than ``n``).

    >>> sorted(shingles("A red apple, a red", 2))
    [b'a red', b'apple a', b'red apple']
    """
    words = WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words).encode()} if words else {b""}
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def _image_keys(ds: Dataset) -> list[str]:
    """What "the same images" means per row: their bytes' hash, else their paths; ``""`` for none."""
    if "images" not in ds.column_names:
        return [""] * len(ds)
    out = []
    for row in image_refs(ds):  # the bytes of one batch of rows at a time
        h = row_hash(row) if row else None
        if not row:
            out.append("")
        elif h is not None:
            out.append(h)
        else:  # a file not at hand: its path stands for it
            out.append("paths:" + "|".join(str((r or {}).get("path")) for r in row))
    return out


def near_duplicates(
    ds: Dataset,
    *,
    threshold: float = 0.8,
    ngram: int = 3,
    num_perm: int = 128,
    seed: int = 1,
) -> Split:
    """Split ``ds`` into kept rows and near duplicates of earlier kept rows (see the module docstring).

    ``threshold``: the Jaccard similarity of word ``ngram`` shingles over which two rows with
    the same images are duplicates; ``num_perm``: MinHash permutations (more: a closer
    estimate, slower); ``seed``: the MinHash seed (same seed, same result). The first row of
    each group is kept; the others are rejected with ``reject_reason="near_duplicate"`` and
    ``duplicate_of`` = the kept row's id.
    """
    from datasketch import MinHash, MinHashLSH

    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"threshold is a Jaccard similarity in (0, 1], got {threshold}")
    if ngram < 1 or num_perm < 16:
        raise ConfigError(f"ngram must be >= 1 and num_perm >= 16, got ngram={ngram}, num_perm={num_perm}")
    if "conversations" not in ds.column_names:
        raise missing_column("conversations", ds.column_names, what="text column")
    texts = ["\n".join(t["value"] or "" for t in conv or []) for conv in list_column(ds, "conversations")]
    keys, ids = _image_keys(ds), row_ids(ds)
    hashes = MinHash.bulk([shingles(t, ngram) for t in texts], num_perm=num_perm, seed=seed)
    # LSH bands tuned below the threshold find candidates (few misses near it); the estimate confirms them.
    lsh = MinHashLSH(threshold=max(0.1, min(threshold, 0.99) - 0.15), num_perm=num_perm)
    reasons: dict[int, str] = {}
    of: dict[int, str] = {}
    detail: dict[int, str] = {}
    for i, m in enumerate(hashes):
        best = None
        for j in lsh.query(m):
            if keys[j] == keys[i] and (sim := hashes[j].jaccard(m)) >= threshold and (best is None or sim > best[1]):
                best = (j, sim)
        if best is None:
            lsh.insert(i, m)  # only kept rows are originals
            continue
        reasons[i], of[i] = "near_duplicate", ids[best[0]]
        detail[i] = f"text {best[1]:.2f} similar to {ids[best[0]]} with the same images"
    return split_duplicates(ds, reasons, of, detail, step="near_duplicates",
                            params={"threshold": threshold, "ngram": ngram, "num_perm": num_perm, "seed": seed})
