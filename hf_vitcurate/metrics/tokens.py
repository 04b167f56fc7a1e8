"""COCO-style tokenization shared by every caption metric: lowercase, PTB-style split, punctuation removed.

The COCO caption evaluation (``pycocoevalcap``) runs Stanford's PTB tokenizer (Java)
with ``-lowerCase`` and then drops punctuation tokens. No Java here, so this module
reproduces that behaviour with one compiled regular expression (REVO-LION computes
all its metrics on the same tokens); the metrics never see raw text:

- text is lowercased, typographic quotes/apostrophes become ASCII;
- clitics are split the PTB way: ``don't`` → ``do n't``, ``cat's`` → ``cat 's``
  (``'s 're 've 'll 'd 'm``);
- a word is a run of letters/digits, with ``- . / & _`` kept *inside* it (``well-known``,
  ``3.5``, ``u.s``, ``and/or``) and thousands separators kept in numbers (``1,000``);
- ``<...>`` tags without spaces stay one token (``<st>``, ``<image>``), as Stanford keeps SGML tags;
- every other non-space character is a token of its own; those in :data:`PUNCTUATION`
  (COCO's list ``'' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ;`` written as
  characters, plus quotes and square brackets) are removed. Symbols such as ``$ % + =``
  stay, as in COCO.

Known differences from Stanford's tokenizer (documented, deliberate): a trailing
abbreviation period is dropped (``u.s.`` → ``u.s``), and square brackets are removed
(COCO keeps ``-LSB-``/``-RSB-`` tokens; box coordinates ``[x1, y1, ...]`` are then
compared as numbers only). Other readings can be plugged in: every metric accepts
pre-tokenized input (:func:`hf_vitcurate.metrics.mq_scores` with ``tokenizer=``).

Example:
    >>> coco_tokenize("The cat's on the mat, isn't it? [10, 20]")
    ['the', 'cat', "'s", 'on', 'the', 'mat', 'is', "n't", 'it', '10', '20']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Characters whose one-character tokens are removed (COCO's punctuation list, as characters,
# plus double quotes and brackets). Typographic variants are normalised before splitting.
PUNCTUATION = frozenset(".?!,:;-'`\"()[]{}")
_NORMALISE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...",
                            "\u2013": "-", "\u2014": "-"})
_TOKEN = re.compile(
    r"n't(?![^\W_])"                      # the clitic of "don't" (split off below)
    r"|'(?:s|re|ve|ll|d|m)(?![^\W_])"     # 's 're 've 'll 'd 'm
    r"|<[^<>\s]+>"                        # <st>, <image>: one token
    r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![^\W_])"  # 1,000 / 12,345.6
    r"|[^\W_]+(?:[-./&_][^\W_]+)*"        # words, with - . / & _ inside
    rf"|[^\s{re.escape(''.join(sorted(PUNCTUATION)))}]"  # any other character on its own, but PUNCTUATION
)
_NT = re.compile(r"([^\W_])n't(?![^\W_])")


def coco_tokenize(text: str | None) -> list[str]:
    """Tokens of ``text`` (``None`` and empty text give ``[]``); see the module docstring."""
    if not text:
        return []
    text = text.lower().translate(_NORMALISE)
    if "n't" in text:  # "don't" -> "do n't" before the word regex would swallow the "n"
        text = _NT.sub(r"\1 n't", text)
    # A lone punctuation character is no token: the last alternative never matches one
    # (the same tokens as keeping ``\S`` and dropping one-character PUNCTUATION tokens).
    return _TOKEN.findall(text)


def tokenize_batch(texts: Iterable[str | None]) -> list[list[str]]:
    """:func:`coco_tokenize` over many texts."""
    return [coco_tokenize(t) for t in texts]


def joined(tokens: list[str]) -> str:
    """Tokens as the space-joined string the COCO scorers read (``pycocoevalcap`` input)."""
    return " ".join(tokens)


class Vocabulary:
    """Token → integer id, growing as new tokens come (ids are stable for the object's life).

    The metrics compare integers, not strings: n-gram counting is then numpy work and
    per-word caches (stems, synonyms) are lists indexed by id.

    >>> v = Vocabulary()
    >>> v.encode(["a", "cat", "a"]), v.encode(["cat"])
    ([0, 1, 0], [1])
    """

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = []

    def __len__(self) -> int:
        return len(self.words)

    def id(self, word: str) -> int:
        i = self.ids.get(word)
        if i is None:
            i = self.ids[word] = len(self.words)
            self.words.append(word)
        return i

    def encode(self, tokens: list[str]) -> list[int]:
        get = self.ids.get
        out = [get(t) for t in tokens]
        if None in out:  # only new words take the slow path
            out = [self.id(t) for t in tokens]
        return out
