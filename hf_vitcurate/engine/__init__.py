"""The MMInstruct data engine (papers/004, SPEC §4): captions → questions of four types → review.

Modules: ``taxonomy`` (24 domains, 4 types + caption, as data), ``seeds`` (published seed
questions, packaged), ``prompts`` (Tables 5 and 7 as Jinja2 templates), ``backends``
(local ``transformers`` and OpenAI-compatible HTTP, one interface, request cache),
``parser`` (tags/JSON → items with reject reasons), ``ledger`` (tokens and cost, Table 2
comparison), ``engine`` (the steps as ``datasets.map``), ``review`` (manual correction
round trip), ``output`` (one config per domain, splits by type), ``shapes`` (ShapesWorld
images and labelled questions for the defaults).

Example:
    >>> from hf_vitcurate.engine import Engine, LocalBackend, load_taxonomy
    >>> engine = Engine(LocalBackend("ckpt/tiny"), batch_size=8)      # doctest: +SKIP
    >>> result = engine.run(images)                                   # doctest: +SKIP
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "Domain": "taxonomy",
    "Taxonomy": "taxonomy",
    "load_taxonomy": "taxonomy",
    "TYPES": "taxonomy",
    "TYPE_SUFFIX": "taxonomy",
    "INSTRUCTION_TYPES": "taxonomy",
    "SeedBank": "seeds",
    "load_seeds": "seeds",
    "load_end_prompts": "seeds",
    "seeds_dir": "seeds",
    "Prompts": "prompts",
    "load_prompts": "prompts",
    "Request": "backends",
    "Response": "backends",
    "RequestCache": "backends",
    "EchoBackend": "backends",
    "LocalBackend": "backends",
    "OpenAIBackend": "backends",
    "parse": "parser",
    "REASONS": "parser",
    "Ledger": "ledger",
    "Price": "ledger",
    "DEFAULT_PRICES": "ledger",
    "PAPER_TABLE2": "ledger",
    "load_prices": "ledger",
    "cost_report": "ledger",
    "Engine": "engine",
    "EngineResult": "engine",
    "export_review": "review",
    "import_review": "review",
    "mminstruct_configs": "output",
    "shapes_images": "shapes",
    "labelled_questions": "shapes",
}

# Lazy: importing the package stays cheap (no torch until a name is used).
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
