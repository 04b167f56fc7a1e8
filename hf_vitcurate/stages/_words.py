"""Words of many strings at once, for the concept tagger (:mod:`.concepts`).

Both tokenisers return ``(words, turn_of, joinable)``: one flat Arrow string array of the
words of all strings, a function from word positions to the string they come from, and
a function telling whether ``n`` words from each start may form a phrase (one string,
only white space between them).

Example:
    >>> import numpy as np, pyarrow as pa
    >>> words, turn_of, joinable = ascii_words(pa.array(["In back, LEFT", "red_car"]))
    >>> words.to_pylist(), turn_of(np.array([0, 3])).tolist(), joinable(np.array([0, 1]), 2).tolist()
    (['in', 'back', 'left', 'red_car'], [0, 1], [True, False])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# ASCII white space (the only separator allowed between the words of a phrase).
_SPACE = np.zeros(256, dtype=bool)
_SPACE[list(b" \t\n\v\f\r")] = True


def _word_bytes(low: np.ndarray) -> np.ndarray:
    """Which bytes of lowercase ASCII text are word characters (a-z, 0-9, ``_``), as for a regex ``\\b``."""
    word = np.subtract(low, ord("a"), dtype=np.uint8) < 26  # wraps below "a": one compare per range
    word |= np.subtract(low, ord("0"), dtype=np.uint8) < 10
    word |= low == ord("_")
    return word


def ascii_words(values: pa.Array):
    """Words of ASCII strings, found in numpy on their bytes: ``(words, turn_of, joinable)``.

    The strings are lowercased by Arrow; words are the runs of word bytes inside one
    string, found where the word/non-word class changes, and their bytes copied end to end
    into one Arrow string array (no per-string split, no regex). ``turn_of(positions)``
    gives the string of word positions, ``joinable(starts, n)`` whether the ``n`` words
    from each start lie in one string with only ASCII white space between them (what a
    phrase needs).
    """
    low = pc.ascii_lower(values)
    _, offset_buf, data_buf = low.buffers()
    offsets = np.frombuffer(offset_buf, dtype=np.int32)[low.offset : low.offset + len(low) + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    raw = data[offsets[0] : offsets[-1]]
    offsets -= offsets[0]
    n = len(raw)
    is_word = _word_bytes(raw)
    edges = [np.flatnonzero(is_word[1:] != is_word[:-1]) + 1]
    if n and is_word[0]:
        edges.insert(0, np.zeros(1, np.int64))
    if n and is_word[-1]:
        edges.append(np.full(1, n, np.int64))
    edges = np.concatenate(edges)
    starts, ends = edges[0::2].copy(), edges[1::2].copy()  # contiguous: searched and indexed below
    cuts = offsets[1:-1]
    cuts = cuts[(cuts > 0) & (cuts < n)]
    cuts = cuts[is_word[cuts] & is_word[cuts - 1]]  # one string ends and the next begins inside a word run
    if len(cuts):
        starts, ends = np.sort(np.concatenate((starts, cuts))), np.sort(np.concatenate((ends, cuts)))
    word_offsets = np.zeros(len(starts) + 1, dtype=np.int32)
    np.cumsum(ends - starts, out=word_offsets[1:])
    words = pa.StringArray.from_buffers(len(starts), pa.py_buffer(word_offsets), pa.py_buffer(np.compress(is_word, raw)))
    first_word = np.searchsorted(starts, offsets, side="left")  # per string: its first word's position

    def turn_of(pos: np.ndarray) -> np.ndarray:
        return np.searchsorted(first_word, pos, side="right") - 1

    def joinable(first: np.ndarray, n_words: int) -> np.ndarray:
        ok = turn_of(first) == turn_of(first + n_words - 1)
        for k in range(n_words - 1):
            a, b = first + k, first + k + 1
            gap_start, gap_len = ends[a], starts[b] - ends[a]
            # Every byte of every gap at once: are they all white space?
            spans = np.repeat(gap_start - np.cumsum(gap_len) + gap_len, gap_len) + np.arange(int(gap_len.sum()))
            bad = np.bincount(np.repeat(np.arange(len(first)), gap_len), weights=~_SPACE[raw[spans]], minlength=len(first))
            ok &= bad == 0
        return ok

    return words, turn_of, joinable


def split_words(text: pa.Array):
    """Words of each string (ASCII white space): ``(words, turn_of, joinable)`` as for :func:`ascii_words`.

    Punctuation is already a ``|`` token here, so words of one string next to each other
    are joinable.
    """
    tokens = pc.ascii_split_whitespace(text)
    offsets = np.asarray(tokens.offsets, dtype=np.int64)

    def turn_of(pos: np.ndarray) -> np.ndarray:
        return np.searchsorted(offsets, pos, side="right") - 1

    def joinable(first: np.ndarray, n: int) -> np.ndarray:
        return turn_of(first + n - 1) == turn_of(first)

    return pc.list_flatten(tokens), turn_of, joinable
