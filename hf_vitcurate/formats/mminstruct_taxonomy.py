"""The MMInstruct taxonomy as package data: 24 domains, 4 instruction types, caption; and the published end prompts.

Read from ``engine/data/taxonomy.yaml`` (MMInstruct, arXiv:2407.15838, Table 3 with its typos fixed, each
domain's Table 5 caption requirement, keywords for the domain tagger). A user may load
their own file with :func:`load_taxonomy` and pass it wherever a taxonomy is taken.
:func:`load_end_prompts` reads the release's ``end_prompt.json`` (the published indicator
suffixes of each type) from the packaged seed folder (:func:`seeds_dir`).

It lives with the MMInstruct format, below both the data engine (:mod:`hf_vitcurate.engine`,
which re-exports it as ``engine.taxonomy``) and the tagging stage
(:func:`hf_vitcurate.stages.taxonomy`), so that neither imports the other.

Example:
    >>> tax = load_taxonomy()
    >>> len(tax.domains), tax.types
    (24, ('judgement', 'multiple_choice', 'short_vqa', 'long_vqa'))
    >>> tax.domain("Socli Relation").caption_requirement
    'Try to identify the relationship between the people in the image.'
    >>> TYPE_SUFFIX["short_vqa"]
    'Answer the question using a single word or phrase.'
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources

import yaml

from ..errors import FormatError

# One copy of the type names and indicator suffixes (docs/methods.md): the format parser's.
from .mminstruct import LANGUAGES, TYPE_ALIASES, TYPE_SUFFIX, TYPES, normalize_type

CAPTION = "caption"
MULTI_ROUND = "multi_round_long_vqa"
INSTRUCTION_TYPES = (*TYPES, CAPTION)
GROUPS = ("perception", "reasoning", "multi_round")

# Misspellings found in the paper (and common variants) -> domain key.
TYPO_FIXES = {
    "socli_relation": "social_relation",
    "feature_prediction": "future_prediction",
    "spatial_relation": "spatial_relationship",
    "multi_round": MULTI_ROUND,
    "multi_round_long_visual_question_answering": MULTI_ROUND,
    "multi_round_vqa": MULTI_ROUND,
    "optical_character_recognition": "ocr",
    "poster": "posters",
    "meme": "meme_comprehension",
}


@dataclass(frozen=True)
class Domain:
    """One domain: key, the paper's title, Table 3 group, Table 5 caption line, tagger keywords."""

    name: str
    title: str
    group: str
    caption_requirement: str = ""
    keywords: tuple[str | tuple[str, ...], ...] = ()  # a tuple is a synonym group that scores once
    generic: bool = False  # a broad domain: loses keyword ties to specific ones


@dataclass(frozen=True)
class Taxonomy:
    """Domains (in Table 3 order), types, and which domains have no seed questions."""

    domains: dict[str, Domain]
    types: tuple[str, ...] = TYPES
    caption_instruction: str = "Describe the image in as much detail as possible."
    no_seed_domains: tuple[str, ...] = ()
    extra_seed_domains: tuple[str, ...] = ()
    source: str = ""
    _aliases: dict[str, str] = field(default_factory=dict, repr=False)

    def domain(self, name: str) -> Domain:
        """The domain of any spelling: title, key, numeric seed-file prefix, known typo."""
        return self.domains[self.key(name)]

    def key(self, name: str) -> str:
        """Domain key of a spelling (``"Socli Relation"`` -> ``"social_relation"``); KeyError if unknown."""
        k = domain_key(name)
        k = TYPO_FIXES.get(k, k)
        if k in self.domains:
            return k
        raise KeyError(f"unknown domain {name!r}; known: {sorted(self.domains)}")

    def names(self, group: str | None = None) -> list[str]:
        """Domain keys in Table 3 order, optionally of one group."""
        return [d.name for d in self.domains.values() if group is None or d.group == group]


def domain_key(name: str) -> str:
    """Lower case, underscores, a numeric file prefix dropped (``"00017_artwork"`` -> ``"artwork"``)."""
    key = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")
    return re.sub(r"^\d+_", "", key)


def instruction_type(name: str) -> str:
    """Canonical type of a spelling, ``caption`` included (``"judgment"`` -> ``"judgement"``)."""
    if domain_key(name) == CAPTION:
        return CAPTION
    return normalize_type(name)


def _engine_data() -> str:
    # The files ship in the engine's data folder; reading them from here imports no engine module.
    return str(resources.files("hf_vitcurate") / "engine" / "data")


def default_path() -> str:
    """Path of the packaged ``taxonomy.yaml``."""
    return os.path.join(_engine_data(), "taxonomy.yaml")


def seeds_dir() -> str:
    """The packaged seed folder (English seeds, ``end_prompt.json``, ``LICENSE``)."""
    return os.path.join(_engine_data(), "mminstruct_seeds")


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Taxonomy:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    domains = {}
    for key, d in data["domains"].items():
        group = d.get("group", "")
        if group not in GROUPS:
            raise ValueError(f"{path}: domain {key!r}: group {group!r} is not one of {GROUPS}")
        domains[domain_key(key)] = Domain(
            name=domain_key(key),
            title=d.get("title", key.replace("_", " ")),
            group=group,
            caption_requirement=(d.get("caption_requirement") or "").strip(),
            keywords=tuple(tuple(str(w).lower() for w in k) if isinstance(k, list) else str(k).lower()
                           for k in d.get("keywords") or ()),
            generic=bool(d.get("generic", False)),
        )
    types = tuple(normalize_type(t) for t in data.get("types", TYPES))
    caption = (data.get("caption") or {}).get("instruction", "Describe the image in as much detail as possible.")
    return Taxonomy(
        domains=domains,
        types=types,
        caption_instruction=caption,
        no_seed_domains=tuple(domain_key(d) for d in data.get("no_seed_domains", ())),
        extra_seed_domains=tuple(domain_key(d) for d in data.get("extra_seed_domains", ())),
        source=path,
    )


def load_taxonomy(path: str | os.PathLike | None = None) -> Taxonomy:
    """The taxonomy in ``path`` (YAML as the packaged one), default the packaged file."""
    path = os.fspath(path) if path is not None else default_path()
    return _load(path, os.path.getmtime(path))


def as_taxonomy(value: Taxonomy | str | os.PathLike | None) -> Taxonomy:
    """A :class:`Taxonomy` from itself, a YAML path, or ``None`` (the packaged one)."""
    return value if isinstance(value, Taxonomy) else load_taxonomy(value)


END_PROMPT_FILE = "end_prompt.json"


def load_end_prompts(path: str | os.PathLike | None = None, *, language: str = "English") -> dict[str, list[str]]:
    """``{instruction_type: [suffixes]}`` from ``end_prompt.json`` (a folder or the file itself).

    Keys are spelled longsentence/shortsentence/judge/select in the published file; the
    suffixes start with a space there, which is stripped.
    """
    path = os.fspath(path) if path is not None else seeds_dir()
    file = os.path.join(path, END_PROMPT_FILE) if os.path.isdir(path) else path
    with open(file, encoding="utf-8") as f:
        text = f.read()
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{file}: not JSON ({exc})") from None
    want = LANGUAGES.get(language.lower(), language)
    out: dict[str, list[str]] = {}
    for kind, by_lang in data.items():
        key = kind.strip().lower()
        if key not in TYPE_ALIASES:
            raise FormatError(f"{file}: field {kind!r}: unknown kind; known: {sorted(TYPE_ALIASES)}")
        for lang, items in (by_lang or {}).items():
            if LANGUAGES.get(lang.strip().lower(), lang.strip()) == want:
                out.setdefault(TYPE_ALIASES[key], []).extend(s.strip() for s in items)
    return out


__all__ = [
    "CAPTION",
    "INSTRUCTION_TYPES",
    "MULTI_ROUND",
    "TYPES",
    "TYPE_SUFFIX",
    "Domain",
    "Taxonomy",
    "as_taxonomy",
    "domain_key",
    "instruction_type",
    "load_end_prompts",
    "load_taxonomy",
    "seeds_dir",
]
