"""The MMInstruct data engine (MMInstruct, arXiv:2407.15838, §3.2-3.5): its settings and its steps, each a ``datasets.map``.

(b) :meth:`Engine.caption`: one call per image with Table 5's prompt, on an image-text
    backend (module :mod:`.captions`);
(c) :meth:`Engine.plan`: one call per image and instruction type, seed questions of the
    domain drawn per call (module :mod:`.plan`);
(d) :meth:`Engine.generate`: the planned calls sent, every item parsed and checked,
    broken calls regenerated, then rejected with their reason (module :mod:`.generate`);
(e) :meth:`Engine.plan_long_vqa`: 5 linked questions per call, one multi-turn row.

:meth:`Engine.run` does them all and returns an :class:`~.rows.EngineResult`, a
:class:`~hf_vitcurate.results.Split` (``kept, rejected = result``) that also carries the
captioned images and the call ledger. Every step returning rows returns a ``Split``; for
every step *rows requested = rows kept + rows rejected*: a call for 3 questions is 3 rows,
one way or the other. The row schema is in :mod:`.rows`; docs/methods.md describes the
method.

Input: a ``Dataset`` of images with ``id``, ``images`` (a list of images; ``image`` is
accepted) and ``domain`` (or ``domain=`` for all rows); optional ``image_tag`` (related
information, Table 5's <Image Tag>) and ``ocr_text``.

Example:
    >>> from hf_vitcurate.engine import Engine, EchoBackend, shapes_images   # doctest: +SKIP
    >>> result = Engine(text_backend, caption_backend=vision_backend).run(images, domain="landmark")  # doctest: +SKIP
    >>> kept, rejected = result                                               # doctest: +SKIP
    >>> result.ledger.summary()["total"]["cost_usd"]                          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from ..errors import ConfigError
from .. import provenance
from ..columns import list_column
from ..results import Split
from . import captions as caption_step
from . import generate as generate_step
from . import plan as plan_step
from .ledger import Ledger
from .prompts import OUTPUT_FORMATS, Prompts, load_prompts, suffix_for
from .request import Backend
from .rows import REJECTED_FEATURES, ROW_FEATURES, EngineResult, attach_images, concat
from .seeds import SeedSource, as_seed_bank, load_end_prompts
from .taxonomy import TYPES, Taxonomy, as_taxonomy


class Engine:
    """The data engine: backends, prompts, seeds and settings shared by the steps.

    Args:
        backend: text backend for steps (d) and (e) (GPT-3.5 in the paper).
        caption_backend: image-text backend for step (b) (GPT-4V); default ``backend``.
        prompts: :class:`~.prompts.Prompts` (default the packaged templates).
        seeds: :class:`~.seeds.SeedBank`, or your seeds over the packaged English ones: a folder or file in
            the published layout, or ``{domain: file | {type: [questions]}}`` (:func:`~.seeds.as_seed_bank`).
        taxonomy: a :class:`~.taxonomy.Taxonomy` or YAML path (default packaged).
        ledger: where calls are recorded (default a new in-memory :class:`~.ledger.Ledger`).
        output_format: ``"tags"`` or ``"json"``, the format the prompts ask for (both are parsed).
        suffixes: ``"fixed"`` (one indicator sentence per type) or ``"end_prompt"`` (the published ones).
        max_attempts: calls per request at most (first try + regenerations).
        retry_temperature: sampling temperature of regenerations (the first try is greedy).
        batch_size: calls handed to the backend at once (the HTTP backend runs them concurrently).
        seed: seed of the seed-question draws.
        leak_phrases: phrases that reject an answer (``stages.cleanup.leakage``); ``()`` disables.
        caption_max_tokens, max_tokens: generation limits per call.
        work_dir: run each round of calls with :func:`hf_vitcurate.distributed.run_sharded`
            (chunks of ``batch_size`` calls split across the processes of ``accelerate
            launch``, finished chunks kept in ``work_dir`` and skipped by a rerun); for a
            local model on several GPUs. Default: one process, ``Dataset.map``.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        caption_backend: Backend | None = None,
        prompts: Prompts | None = None,
        seeds: SeedSource = None,
        taxonomy: Taxonomy | str | None = None,
        ledger: Ledger | None = None,
        output_format: str = "tags",
        suffixes: str = "fixed",
        max_attempts: int = 3,
        retry_temperature: float = 0.7,
        batch_size: int = 32,
        seed: int = 0,
        leak_phrases: Sequence[str] | None = None,
        caption_max_tokens: int = 512,
        max_tokens: int = 1024,
        work_dir: str | None = None,
    ):
        from ..stages.cleanup import DEFAULT_LEAK_PHRASES

        if max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        if output_format not in OUTPUT_FORMATS:
            raise ConfigError(f"output_format {output_format!r} is not one of {OUTPUT_FORMATS}")
        self.backend = backend
        self.caption_backend = caption_backend or backend
        self.taxonomy = as_taxonomy(taxonomy)
        self.prompts = prompts or load_prompts(taxonomy=self.taxonomy)
        self.seeds = as_seed_bank(seeds, taxonomy=self.taxonomy)
        self.ledger = ledger if ledger is not None else Ledger()
        self.output_format = output_format
        self.suffixes = suffixes
        self.end_prompts = load_end_prompts() if suffixes == "end_prompt" else {}
        suffix_for("judgement", suffixes, self.end_prompts)  # fail early on a bad style
        self.max_attempts = max_attempts
        self.retry_temperature = retry_temperature
        self.batch_size = batch_size
        self.seed = seed
        self.leak_phrases = tuple(DEFAULT_LEAK_PHRASES if leak_phrases is None else leak_phrases)
        self.caption_max_tokens = caption_max_tokens
        self.max_tokens = max_tokens
        self.work_dir = work_dir

    # ------------------------------------------------------------------ the steps

    def prepare(self, images: Dataset, *, domain: str | None = None) -> Dataset:
        """Images with ``id``, ``images``, ``domain`` (canonical keys), ``image_tag``, ``ocr_text``."""
        return caption_step.prepare(self, images, domain=domain)

    def caption(self, images: Dataset, *, domain: str | None = None) -> Dataset:
        """Step (b): add ``caption`` (``""`` when it failed), ``caption_ok`` and the call's reason, attempts, tokens, cost."""
        return caption_step.caption(self, images, domain=domain)

    def caption_rows(self, captioned: Dataset) -> Split:
        """Captions as canonical rows (``instruction_type == "caption"``), without images yet."""
        return caption_step.caption_rows(self, captioned)

    def plan(self, captioned: Dataset, *, types: Sequence[str] = TYPES, n_questions: int = 3, n_seeds: int = 3) -> Dataset:
        """Step (c): one call per image and type, with its seed questions and prompt."""
        return plan_step.plan(self, captioned, types=types, n_questions=n_questions, n_seeds=n_seeds)

    def plan_long_vqa(self, captioned: Dataset, *, n_questions: int = 5) -> Dataset:
        """Step (e)'s calls: one per image, ``n_questions`` linked questions."""
        return plan_step.plan_long_vqa(self, captioned, n_questions=n_questions)

    def generate(self, calls: Dataset) -> Split:
        """Steps (d)/(e): run the planned calls, parse, check, regenerate; kept and rejected rows (no images yet)."""
        return generate_step.generate(self, calls)

    def attach_images(self, split: tuple[Dataset, Dataset], captioned: Dataset) -> Split:
        """Attach each row's images (from ``captioned``) and order columns canonically."""
        return attach_images(split, captioned)

    def questions(self, captioned: Dataset, *, types: Sequence[str] = TYPES, n_questions: int = 3, n_seeds: int = 3) -> Split:
        """Steps (c)+(d): plan and generate ``n_questions`` questions per type per image, with images."""
        calls = self.plan(captioned, types=types, n_questions=n_questions, n_seeds=n_seeds)
        return attach_images(self.generate(calls), captioned)

    def long_vqa(self, captioned: Dataset, *, n_questions: int = 5) -> Split:
        """Step (e): one multi-round long VQA row of ``n_questions`` linked QA pairs per image, with images."""
        return attach_images(self.generate(self.plan_long_vqa(captioned, n_questions=n_questions)), captioned)

    def instructions(
        self,
        captioned: Dataset,
        *,
        types: Sequence[str] = TYPES,
        n_questions: int = 3,
        n_seeds: int = 3,
        long_vqa: bool = True,
        n_long: int = 5,
        captions: bool = True,
    ) -> Split:
        """Steps (c)-(e) on captioned images, plus caption rows (``captions``): kept and rejected rows with images."""
        parts = [self.caption_rows(captioned)] if captions else []
        parts.append(self.generate(self.plan(captioned, types=types, n_questions=n_questions, n_seeds=n_seeds)))
        if long_vqa:
            parts.append(self.generate(self.plan_long_vqa(captioned, n_questions=n_long)))
        kept = concat([p.kept for p in parts], ROW_FEATURES)
        rejected = concat([p.rejected for p in parts], REJECTED_FEATURES)
        kept, rejected = attach_images((kept, rejected), captioned)
        counts = dict(Counter(list_column(rejected, "reject_reason"))) if len(rejected) else {}
        params = {**self.params(), "types": list(types), "n_questions": n_questions, "n_seeds": n_seeds,
                  "long_vqa": long_vqa, "n_long": n_long, "captions": captions, "no_seed_fallbacks": self.seeds.fallback_list()}
        record = dict(kind="engine", rows_in=len(kept) + len(rejected), rejected=counts, params=params, seed=self.seed,
                      model=f"caption: {self.caption_backend.model}; questions: {self.backend.model}", parent=captioned)
        return Split(provenance.record(kept, "mminstruct_engine", **record),
                     provenance.record(rejected, "mminstruct_engine", **record))

    def run(
        self,
        images: Dataset,
        *,
        domain: str | None = None,
        types: Sequence[str] = TYPES,
        n_questions: int = 3,
        n_seeds: int = 3,
        long_vqa: bool = True,
        n_long: int = 5,
        captions: bool = True,
        seed_images: Dataset | None = None,
        per_domain: int | None = None,
        k: int = 50,
        collect_options: dict[str, Any] | None = None,
    ) -> EngineResult:
        """All steps: :meth:`caption`, then :meth:`instructions` (same options); unpacks as ``(kept, rejected)``.

        With ``seed_images`` (rows with ``domain`` and ``image_embedding``), step (a) runs first:
        ``images`` is the repository (with ``image_embedding``) and :func:`~hf_vitcurate.engine.collect`
        picks at most ``per_domain`` images per domain (``k`` neighbours per seed) to caption;
        ``collect_options`` are :func:`~hf_vitcurate.engine.collect`'s other options (``index_path``,
        ``string_factory``, ``nprobe``, ``ef_search``: a saved or approximate index for a large repository).
        Step (f), the manual correction, is a round trip through a person: ``review-export`` and
        ``review-import`` on the result.
        """
        if seed_images is not None:
            from .collection import collect

            if per_domain is None:
                raise ConfigError("seed_images needs per_domain: how many images to collect per domain")
            images = collect(images, seed_images, per_domain=per_domain, k=k, **_collect_options(collect_options))
        captioned = self.caption(images, domain=domain)
        kept, rejected = self.instructions(captioned, types=types, n_questions=n_questions, n_seeds=n_seeds,
                                           long_vqa=long_vqa, n_long=n_long, captions=captions)
        return EngineResult.of(kept, rejected, captioned=captioned, ledger=self.ledger)

    # ------------------------------------------------------------------ settings

    def params(self) -> dict[str, Any]:
        """The settings that determine the engine's calls (recorded in provenance, keying resumable chunks)."""
        templates = [getattr(self.prompts, n) for n in ("caption", "with_seed", "no_seed", "multi_round", "format_tags", "format_json")]
        return {"output_format": self.output_format, "suffixes": self.suffixes, "max_attempts": self.max_attempts,
                "retry_temperature": self.retry_temperature, "seed": self.seed, "seeds": f"{self.seeds.source} {self.seeds.digest()}", "leak_phrases": list(self.leak_phrases),
                "caption_backend": self.caption_backend.model, "backend": self.backend.model,
                "prompts": hashlib.sha256(json.dumps(templates).encode()).hexdigest()[:12]}


def _collect_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` when each names one of :func:`~hf_vitcurate.engine.collect`'s other options; else a one-line error.

    >>> _collect_options({"bad": 1})
    Traceback (most recent call last):
    ...
    hf_vitcurate.errors.ConfigError: collect_options has an unknown option 'bad'; accepted: column, ef_search, index_path, nprobe, string_factory
    """
    import inspect

    from .collection import collect

    # per_domain and k are run()'s own arguments: giving them twice would be ambiguous.
    accepted = sorted(name for name, p in inspect.signature(collect).parameters.items()
                      if p.kind is p.KEYWORD_ONLY and name not in ("per_domain", "k"))
    unknown = sorted(set(options or {}) - set(accepted))
    if unknown:
        raise ConfigError(f"collect_options has an unknown option {', '.join(map(repr, unknown))}; "
                          f"accepted: {', '.join(accepted)}")
    return dict(options or {})


__all__ = ["Engine", "EngineResult"]
