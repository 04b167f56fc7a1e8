"""Prompt templates of the data engine (MMInstruct, arXiv:2407.15838, Tables 5 and 7), Jinja2, overridable.

Templates (``engine/data/prompts/*.j2``):

- ``caption``: Table 5's universal prompt, with the image's related information (tag),
  OCR text and the domain's special requirement when it has them;
- ``with_seed`` / ``no_seed``: Table 7 lines 2 and 3, ``n`` questions of one type;
- ``multi_round``: Table 7 line 4, ``n`` (5) linked questions with long answers;
- ``format_tags`` / ``format_json``: the output format the generator must follow
  (``<Qn>..</Qn><Cn>..</Cn><An>..</An>`` or a JSON list), inserted into the prompts above.

The paper prints only the key parts ("..."); the gaps are filled with the constraints
its text states (§3.4: answers generated with the questions, correct and derived from
the image information, exactly one right option, styles close to the seeds).

Override any template with :func:`load_prompts` (a folder of ``<name>.j2`` files, or
template text / a file path per name).

Example:
    >>> p = load_prompts()
    >>> text = p.questions("landmark", "judgement", caption="A tall tower.", seeds=["Is this <landmark>?"])
    >>> text.splitlines()[0][:60]
    'Given a description of the image and a list of questions, yo'
    >>> "<Q3> question </Q3> <A3> Yes or No </A3>" in text
    True
    >>> instruction("Is it red?", "judgement")
    'Is it red?\\nPlease answer yes or no.'
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, fields, replace
from importlib import resources

import jinja2

from ..errors import ConfigError
from .taxonomy import MULTI_ROUND, TYPE_SUFFIX, Taxonomy, as_taxonomy, instruction_type

TEMPLATE_NAMES = ("caption", "with_seed", "no_seed", "multi_round", "format_tags", "format_json")
OUTPUT_FORMATS = ("tags", "json")
SUFFIX_STYLES = ("fixed", "end_prompt")

# How a type is named in the prompt, the rule its answers follow, and the answer slot of the format.
TYPE_WORDING = {
    "judgement": ("judgement", "Each question must be answered with Yes or No.", "Yes or No"),
    "multiple_choice": (
        "multiple-choice",
        "Each question has four options A, B, C and D, exactly one of which is correct; the answer is the letter of the correct option.",
        "letter of the correct option",
    ),
    "short_vqa": ("short-answer", "Each answer is a single word or a short phrase.", "a single word or phrase"),
    "long_vqa": ("long-answer", "Each answer is a detailed explanation of a few sentences.", "a detailed answer"),
}

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def prompts_dir() -> str:
    """Folder of the packaged templates."""
    return str(resources.files("hf_vitcurate.engine") / "data" / "prompts")


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


@dataclass(frozen=True)
class Prompts:
    """The engine's templates (Jinja2 sources) and the rendering of each step's prompt."""

    caption: str
    with_seed: str
    no_seed: str
    multi_round: str
    format_tags: str
    format_json: str
    taxonomy: Taxonomy = field(default_factory=as_taxonomy, compare=False, repr=False)

    def render(self, name: str, **values) -> str:
        """Render template ``name`` with ``values`` (a missing variable is an error, not an empty string)."""
        return _ENV.from_string(getattr(self, name)).render(**values).strip()

    def format_block(self, instruction_type: str, n: int, output_format: str = "tags") -> str:
        """The format block for ``n`` items of a type (``output_format``: ``"tags"`` or ``"json"``)."""
        if output_format not in OUTPUT_FORMATS:
            raise ConfigError(f"output format {output_format!r} is not one of {OUTPUT_FORMATS}")
        hint = TYPE_WORDING.get(instruction_type, TYPE_WORDING["long_vqa"])[2]
        return self.render(f"format_{output_format}", n=n, instruction_type=instruction_type, answer_hint=hint)

    def caption_prompt(self, domain: str, image_tag: str = "", ocr_text: str = "") -> str:
        """Table 5: the universal caption prompt plus the domain's special requirement."""
        requirement = self.taxonomy.domain(domain).caption_requirement if domain else ""
        return self.render("caption", image_tag=image_tag or "", ocr_text=ocr_text or "", requirement=requirement)

    def questions(
        self,
        domain: str,
        instruction_type: str,
        *,
        caption: str,
        seeds: list[str] | None = None,
        n: int = 3,
        ocr_text: str = "",
        output_format: str = "tags",
    ) -> str:
        """Table 7: ``with_seed`` when seeds are given, else ``no_seed``."""
        title, rule, _ = TYPE_WORDING[instruction_type]
        values = dict(
            n=n,
            type_title=title,
            type_rule=rule,
            domain_title=self.taxonomy.domain(domain).title,
            caption=caption,
            ocr_text=ocr_text or "",
            output_format=self.format_block(instruction_type, n, output_format),
        )
        if seeds:
            return self.render("with_seed", seeds=list(seeds), **values)
        return self.render("no_seed", **values)

    def multi_round_prompt(self, *, caption: str, n: int = 5, ocr_text: str = "", output_format: str = "tags") -> str:
        """Table 7 line 4: ``n`` linked questions with long answers."""
        return self.render(
            "multi_round", n=n, caption=caption, ocr_text=ocr_text or "", fmt=output_format,
            output_format=self.format_block("long_vqa", n, output_format),
        )


def load_prompts(
    folder: str | os.PathLike | None = None,
    *,
    taxonomy: Taxonomy | str | None = None,
    **overrides: str,
) -> Prompts:
    """The packaged templates, replaced by ``folder/<name>.j2`` files and by ``overrides``.

    An override is template text or a path to a file holding it, e.g.
    ``load_prompts(caption="Describe this {{ requirement }}")``.
    """
    unknown = set(overrides) - set(TEMPLATE_NAMES)
    if unknown:
        raise ConfigError(f"unknown prompt template(s) {sorted(unknown)}; known: {list(TEMPLATE_NAMES)}")
    texts = {}
    for name in TEMPLATE_NAMES:
        own = os.path.join(os.fspath(folder), f"{name}.j2") if folder is not None else None
        if name in overrides:
            value = overrides[name]
            texts[name] = _read(value) if os.path.isfile(value) else value
        elif own and os.path.isfile(own):
            texts[name] = _read(own)
        else:
            texts[name] = _read(os.path.join(prompts_dir(), f"{name}.j2"))
        _ENV.parse(texts[name])  # a syntax error surfaces here, naming no row
    return Prompts(**texts, taxonomy=as_taxonomy(taxonomy))


def suffix_for(kind: str, style: str = "fixed", end_prompts: dict[str, list[str]] | None = None, key: str = "") -> str:
    """The indicator suffix of a type.

    ``style="fixed"`` (default): the one sentence per type of :data:`TYPE_SUFFIX` (none
    for long VQA; see docs/methods.md). ``style="end_prompt"``: one of the published
    ``end_prompt.json`` sentences of the type, chosen by ``key`` (stable across runs).
    """
    kind = instruction_type(kind)
    if style == "fixed":
        return TYPE_SUFFIX.get(kind, "")
    if style == "end_prompt":
        options = (end_prompts or {}).get(kind, [])
        return random.Random(f"suffix:{key}:{kind}").choice(options) if options else TYPE_SUFFIX.get(kind, "")
    raise ConfigError(f"suffix style {style!r} is not one of {SUFFIX_STYLES}")


def instruction(question: str, kind: str, options: list[str] | None = None, suffix: str | None = None) -> str:
    """The human turn: question, options one a line, indicator suffix (not repeated if already there)."""
    suffix = TYPE_SUFFIX.get(instruction_type(kind), "") if suffix is None else suffix
    question = question.strip()
    if suffix and question.endswith(suffix):
        question = question[: -len(suffix)].rstrip()
    return "\n".join(p for p in [question, *(options or []), suffix] if p)


def with_templates(prompts: Prompts, **templates: str) -> Prompts:
    """A copy of ``prompts`` with some templates replaced (text)."""
    bad = set(templates) - {f.name for f in fields(Prompts)}
    if bad:
        raise ConfigError(f"unknown prompt template(s) {sorted(bad)}")
    return replace(prompts, **templates)


__all__ = ["MULTI_ROUND", "OUTPUT_FORMATS", "SUFFIX_STYLES", "TEMPLATE_NAMES", "Prompts", "instruction", "load_prompts", "suffix_for"]
