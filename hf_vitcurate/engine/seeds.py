"""Seed questions (MMInstruct, arXiv:2407.15838, §3.3) and answer-style suffixes, from a folder in the published layout.

The folder holds ``000NN_<domain>.json`` files ``{kind: {language: [questions]}}`` with
``kind`` spelled judge/choice/select/sentence/shortsentence/longsentence (four files are
published empty) and ``end_prompt.json`` (``{kind: {language: [suffixes]}}``). The
package ships the English part of the published files (Apache-2.0, see the folder's
``LICENSE`` and ``NOTICE.md``); nothing reads outside the package at run time.

Reading the files is the format module's job (:func:`hf_vitcurate.formats.mminstruct.load_seeds`);
this module adds the default folder, the lookup the engine needs, and users' own seeds
(:func:`as_seed_bank`: a folder or file in the published layout, or a mapping
``{domain: seed file | {type or kind: [questions]}}``), which replace the packaged seeds of
each (domain, type) they give. Where a domain that should have seeds has none for a type
(the published attribute-recognition file is empty), the engine falls back to Table 7's
no-seed prompt: :meth:`SeedBank.note_fallbacks` warns once per (domain, type) and the
engine's provenance step lists them (``no_seed_fallbacks``).

Example:
    >>> bank = SeedBank.load()
    >>> bank.questions("landmark", "judgement")[:1]
    ['Is this a photo of <landmark_building/attraction>?']
    >>> bank.questions("complex_reasoning", "judgement")  # no seeds: the engine uses the no-seed prompt
    []
    >>> load_end_prompts()["multiple_choice"][0]
    'Please select a correct choice.'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Union

from datasets import Dataset

from ..errors import ConfigError
from ..formats.mminstruct import SEED_KINDS
from ..formats.mminstruct import load_seeds as _load_seed_files
from ..formats.mminstruct_taxonomy import load_end_prompts, seeds_dir
from .taxonomy import TYPES, Taxonomy, as_taxonomy, domain_key

log = logging.getLogger(__name__)


def load_seeds(path: str | os.PathLike | None = None, *, languages: tuple[str, ...] = ("English",)) -> Dataset:
    """One row per seed question (``id, domain, seed_kind, instruction_types, language, question``).

    ``path``: a folder in the published layout or one seed file; default the packaged copy.
    """
    return _load_seed_files(os.fspath(path) if path is not None else seeds_dir(), languages=languages)


class SeedBank:
    """Seed questions by ``(domain, instruction_type)``; a ``sentence`` seed serves short and long VQA.

    Example:
        >>> bank = SeedBank.load()
        >>> len(bank.pick("landmark", "multiple_choice", 3, seed=0, key="img-1"))
        3
    """

    def __init__(self, seeds: Dataset, *, taxonomy: Taxonomy | str | None = None, source: str = "packaged"):
        tax = as_taxonomy(taxonomy)
        self.by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.unknown_domains: set[str] = set()
        self.source = source
        self.fallbacks: set[tuple[str, str]] = set()  # (domain, type) planned with the no-seed prompt for want of seeds
        cols = seeds.select_columns(["domain", "instruction_types", "question"]).to_dict()
        for dom, kinds, q in zip(cols["domain"], cols["instruction_types"], cols["question"]):
            try:
                dom = tax.key(dom)
            except KeyError:
                # Published files outside Table 3 (celebrity recognition, ...) stay usable by their own name.
                dom = domain_key(dom)
                self.unknown_domains.add(dom)
            for kind in kinds:
                if q not in self.by_key[(dom, kind)]:
                    self.by_key[(dom, kind)].append(q)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, taxonomy: Taxonomy | str | None = None) -> SeedBank:
        """Bank of the English seeds in ``path`` (default: the packaged copy)."""
        return cls(load_seeds(path), taxonomy=taxonomy)

    def questions(self, domain: str, instruction_type: str) -> list[str]:
        """All seeds of a domain and type (empty when none were published)."""
        return list(self.by_key.get((domain, instruction_type), ()))

    def pick(self, domain: str, instruction_type: str, n: int, *, seed: int = 0, key: str = "") -> list[str]:
        """``n`` seeds drawn without replacement, the same for the same ``(seed, key)`` (all if fewer).

        The draw is keyed, not sequential, so a rerun builds the very same prompts and the
        request cache recognises them (a finished request is never paid twice).
        """
        pool = self.questions(domain, instruction_type)
        if len(pool) <= n:
            return pool
        rng = random.Random(f"{seed}:{key}:{domain}:{instruction_type}")
        return rng.sample(pool, n)

    def updated(self, other: SeedBank) -> SeedBank:
        """This bank with ``other``'s seeds replacing its own for each (domain, type) ``other`` holds."""
        bank = SeedBank.__new__(SeedBank)
        bank.by_key = defaultdict(list, {k: list(v) for k, v in self.by_key.items()})
        bank.by_key.update({k: list(v) for k, v in other.by_key.items()})
        bank.unknown_domains = self.unknown_domains | other.unknown_domains
        bank.source, bank.fallbacks = f"{self.source} + {other.source}", set()
        return bank

    def digest(self) -> str:
        """A short hash of the seeds (the engine's settings record it: other seeds, other prompts)."""
        data = json.dumps(sorted((list(k), v) for k, v in self.by_key.items() if v), ensure_ascii=False)
        return hashlib.sha256(data.encode()).hexdigest()[:12]

    def note_fallbacks(self, domains: Iterable[str], types: Iterable[str], *, no_seed_domains: Iterable[str] = ()) -> list[str]:
        """The ``"domain/type"`` pairs that get the no-seed prompt for want of seeds; warns once per pair.

        Domains meant to have no seeds (``no_seed_domains``, Table 7's "no seed" line) are not fallbacks.
        """
        skip = set(no_seed_domains)
        found = {(d, t) for d in domains if d not in skip for t in types if not self.by_key.get((d, t))}
        for dom, kind in sorted(found - self.fallbacks):
            log.warning("no seed questions for domain %r, type %r (source: %s): its calls use the no-seed prompt; "
                        "give seeds with Engine(seeds=...) or --seeds", dom, kind, self.source)
        self.fallbacks |= found
        return [f"{d}/{t}" for d, t in sorted(found)]

    def fallback_list(self) -> list[str]:
        """Every ``"domain/type"`` that fell back to the no-seed prompt so far (for provenance)."""
        return [f"{d}/{t}" for d, t in sorted(self.fallbacks)]


SeedSource = Union[SeedBank, str, os.PathLike, Mapping[str, Any], None]


def as_seed_bank(seeds: SeedSource = None, *, taxonomy: Taxonomy | str | None = None) -> SeedBank:
    """The engine's seed bank: the packaged one, updated with users' seeds.

    ``seeds``: a :class:`SeedBank` (used as is); a folder or one file in the published layout
    (``000NN_<domain>.json``: ``{kind: {language: [questions]}}``); or a mapping
    ``{domain: path to such a file | {type or kind: [questions] | {language: [questions]}}}``.
    Users' seeds replace the packaged ones for each (domain, type) they give.

    Example:
        >>> bank = as_seed_bank({"attribute_recognition": {"judgement": ["Is the <object> <color>?"]}})
        >>> bank.questions("attribute_recognition", "judgement"), len(bank.questions("landmark", "judgement")) > 0
        (['Is the <object> <color>?'], True)
    """
    if isinstance(seeds, SeedBank):
        return seeds
    packaged = SeedBank.load(taxonomy=taxonomy)
    if seeds is None:
        return packaged
    if isinstance(seeds, Mapping):
        user, source = _mapping_seeds(seeds), "mapping"
    else:
        user, source = load_seeds(seeds), os.fspath(seeds)
    return packaged.updated(SeedBank(user, taxonomy=taxonomy, source=source))


def _mapping_seeds(seeds: Mapping[str, Any]) -> Dataset:
    """Rows (``domain, instruction_types, question``) of ``{domain: file | {type or kind: questions}}``."""
    rows: dict[str, list] = {"domain": [], "instruction_types": [], "question": []}
    for domain, value in seeds.items():
        if isinstance(value, (str, os.PathLike)):
            found = load_seeds(value).select_columns(["instruction_types", "question"]).to_dict()
            pairs = zip(found["instruction_types"], found["question"])
        elif isinstance(value, Mapping):
            pairs = ((_types(domain, kind), q) for kind, qs in value.items() for q in _questions(domain, kind, qs))
        else:
            raise ConfigError(f"seeds[{domain!r}]: expected a seed file or {{type: [questions]}}, got {type(value).__name__}")
        for kinds, q in pairs:
            rows["domain"].append(str(domain))
            rows["instruction_types"].append(list(kinds))
            rows["question"].append(str(q).strip())
    return Dataset.from_dict(rows)


def _types(domain: str, kind: str) -> list[str]:
    key = str(kind).strip().lower()
    if key in TYPES:
        return [key]
    if key in SEED_KINDS:
        return list(SEED_KINDS[key])
    raise ConfigError(f"seeds[{domain!r}][{kind!r}]: unknown type; known: {sorted(set(TYPES) | set(SEED_KINDS))}")


def _questions(domain: str, kind: str, value: Any) -> list[str]:
    """``[questions]`` or ``{language: [questions]}`` (English kept, as for the packaged seeds)."""
    if isinstance(value, Mapping):
        value = [q for lang, qs in value.items() if str(lang).strip().lower() in ("english", "en") for q in qs]
    if not isinstance(value, list) or not all(isinstance(q, str) for q in value):
        raise ConfigError(f"seeds[{domain!r}][{kind!r}]: expected a list of questions")
    return value


__all__ = ["SEED_KINDS", "SeedBank", "SeedSource", "as_seed_bank", "load_end_prompts", "load_seeds", "seeds_dir"]
