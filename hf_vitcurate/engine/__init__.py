"""The MMInstruct data engine (MMInstruct, arXiv:2407.15838; docs/methods.md): captions → questions of four types → review.

Modules, by responsibility:

- what the engine knows: ``taxonomy`` (24 domains, 4 types + caption, as data), ``seeds``
  (published seed questions, packaged), ``prompts`` (Tables 5 and 7 as Jinja2 templates);
- whom it asks: ``request`` (:class:`Request`, :class:`Response`), ``cache`` (the request
  cache), ``local`` (:class:`LocalBackend`, a ``transformers`` checkpoint), ``http_backend``
  (:class:`OpenAIBackend`), ``backends`` (all of them, and :class:`EchoBackend`);
- the steps: ``collection`` (a: :func:`collect`, images gathered per domain by nearest-neighbour
  search over an image repository), ``engine`` (:class:`Engine`, settings and steps), ``captions`` (b), ``plan``
  (c), ``generate`` (d, e: parse, check, regenerate, reject), ``calls`` (one round of calls,
  one process or resumable chunks), ``parser`` (tags/JSON → items with reject reasons),
  ``rows`` (the row schema, kept/rejected assembly, :class:`EngineResult`);
- around them: ``ledger`` (tokens and cost, Table 2 comparison), ``review`` (manual
  correction round trip), ``output`` (one config per domain, splits by type), ``shapes``
  (ShapesWorld images and labelled questions for the defaults).

Example:
    >>> from hf_vitcurate.engine import Engine, LocalBackend, load_taxonomy
    >>> engine = Engine(LocalBackend("ckpt/tiny"), batch_size=8)      # doctest: +SKIP
    >>> kept, rejected = result = engine.run(images)                  # doctest: +SKIP
    >>> result.ledger.summary()["total"]["cost_usd"]                  # doctest: +SKIP
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
    "Backend": "request",
    "Request": "request",
    "Response": "request",
    "RequestCache": "cache",
    "EchoBackend": "backends",
    "LocalBackend": "local",
    "OpenAIBackend": "http_backend",
    "parse": "parser",
    "REASONS": "parser",
    "Ledger": "ledger",
    "Price": "ledger",
    "DEFAULT_PRICES": "ledger",
    "PAPER_TABLE2": "ledger",
    "load_prices": "ledger",
    "cost_report": "ledger",
    "Engine": "engine",
    "collect": "collection",
    "EngineResult": "rows",
    "export_review": "review",
    "import_review": "review",
    "mminstruct_configs": "output",
    "shapes_images": "shapes",
    "labelled_questions": "shapes",
}

# Lazy: importing the package stays cheap (no torch until a name is used).
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
