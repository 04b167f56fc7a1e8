"""Seed questions (MMInstruct, arXiv:2407.15838, §3.3) and answer-style suffixes, from a folder in the published layout.

The folder holds ``000NN_<domain>.json`` files ``{kind: {language: [questions]}}`` with
``kind`` spelled judge/choice/select/sentence/shortsentence/longsentence (four files are
published empty) and ``end_prompt.json`` (``{kind: {language: [suffixes]}}``). The
package ships the English part of the published files (Apache-2.0, see the folder's
``LICENSE`` and ``NOTICE.md``); nothing reads outside the package at run time.

Reading the files is the format module's job (:func:`hf_vitcurate.formats.mminstruct.load_seeds`);
this module adds the default folder and the lookup the engine needs.

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

import os
import random
from collections import defaultdict

from datasets import Dataset

from ..formats.mminstruct import SEED_KINDS
from ..formats.mminstruct import load_seeds as _load_seed_files
from ..formats.mminstruct_taxonomy import load_end_prompts, seeds_dir
from .taxonomy import Taxonomy, as_taxonomy, domain_key


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

    def __init__(self, seeds: Dataset, *, taxonomy: Taxonomy | str | None = None):
        tax = as_taxonomy(taxonomy)
        self.by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.unknown_domains: set[str] = set()
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


__all__ = ["SEED_KINDS", "SeedBank", "load_end_prompts", "load_seeds", "seeds_dir"]
