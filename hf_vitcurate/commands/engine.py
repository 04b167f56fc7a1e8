"""``vitcurate engine``: the MMInstruct data engine (mirrors :mod:`hf_vitcurate.engine`) and domain/type tagging.

Example:
    $ vitcurate engine caption shapesworld:24 --backend local --model ckpt/tiny --output captioned/
    $ vitcurate engine questions captioned/ --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model gpt-3.5-turbo-1106 --cache cache/ --ledger ledger.jsonl --output rows/ --rejected rejected/
    $ vitcurate engine review-export rows/ --output review.csv --image-dir review_images/
    $ vitcurate engine review-import rows/ review.csv --output reviewed/ --rejected review_rejected/
    $ vitcurate engine cost ledger.jsonl --images 24 --instructions 300
    $ vitcurate engine tag pool/ --output tagged/
"""

from __future__ import annotations

import json
import logging
import os

from .common import add_input_args, load_input, save_output

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("engine", help="MMInstruct data engine: captions, questions, review, cost; domain/type tags")
    verbs = p.add_subparsers(dest="engine_command", metavar="STEP", required=True)

    c = verbs.add_parser("caption", help="(b) caption images with Table 5's prompt")
    c.add_argument("images", help="images saved with save_to_disk (id, images|image, domain) or shapesworld[:N]")
    c.add_argument("--domain", default=None, help="domain of every image (default: the 'domain' column)")
    _backend_args(c)
    c.add_argument("--max-tokens", type=int, default=512)
    c.add_argument("--output", required=True, help="where to write the captioned images")
    c.set_defaults(func=run_caption)

    q = verbs.add_parser("questions", help="(c)-(e) questions of each type with seeds, and multi-round long VQA")
    q.add_argument("captioned", help="output of `vitcurate engine caption`")
    q.add_argument("--types", nargs="+", default=["judgement", "multiple_choice", "short_vqa", "long_vqa"])
    q.add_argument("--n", type=int, default=3, help="questions per call (default: 3)")
    q.add_argument("--seeds", type=int, default=3, help="seed questions per call (default: 3)")
    q.add_argument("--long-vqa", type=int, default=5, metavar="N", help="linked questions per multi-round row (0: none)")
    q.add_argument("--caption-rows", action="store_true", help="also emit each caption as a row (type caption)")
    q.add_argument("--format", dest="output_format", default="tags", choices=["tags", "json"], help="output format asked for")
    q.add_argument("--suffixes", default="spec", choices=["spec", "end_prompt"], help="indicator suffixes (default: SPEC §4)")
    q.add_argument("--prompts", default=None, metavar="DIR", help="folder of <name>.j2 templates overriding the packaged ones")
    _backend_args(q)
    q.add_argument("--max-tokens", type=int, default=1024)
    q.add_argument("--output", required=True, help="where to write kept rows")
    q.add_argument("--rejected", default=None, help="where to write rejected rows (with reasons)")
    q.set_defaults(func=run_questions)

    e = verbs.add_parser("review-export", help="(f) write rows to a review file (.jsonl or .csv)")
    add_input_args(e)
    e.add_argument("--output", required=True, help="review file (.jsonl or .csv)")
    e.add_argument("--image-dir", default=None, help="write each row's image here for the reviewers")
    e.set_defaults(func=run_review_export)

    i = verbs.add_parser("review-import", help="(f) apply accept/reject/edit decisions from a review file")
    add_input_args(i)
    i.add_argument("review", help="the review file with decisions")
    i.add_argument("--undecided", default="keep", choices=["keep", "reject", "error"])
    i.add_argument("--output", required=True)
    i.add_argument("--rejected", default=None)
    i.set_defaults(func=run_review_import)

    k = verbs.add_parser("cost", help="cost report of a ledger against the paper's manual-annotation model")
    k.add_argument("ledger", help="ledger.jsonl written by the engine")
    k.add_argument("--images", type=int, required=True, help="images captioned")
    k.add_argument("--instructions", type=int, required=True, help="instructions (QA pairs) kept")
    k.add_argument("--correction", type=float, default=None, help="manual correction USD per instruction (default 0.13)")
    k.add_argument("--manual", type=float, default=None, help="manual construction USD per instruction (default 0.84)")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=run_cost)

    t = verbs.add_parser("tag", help="add domain and instruction_type to rows of any source")
    add_input_args(t)
    t.add_argument("--no-task", action="store_true", help="ignore a `task` that already names a type")
    t.add_argument("--fallback", default="image_description", help="domain when no keyword matches")
    t.add_argument("--overwrite", action="store_true", help="replace existing domain/instruction_type values")
    t.add_argument("--output", required=True)
    t.set_defaults(func=run_tag)


def _backend_args(p) -> None:
    g = p.add_argument_group("backend")
    g.add_argument("--backend", default="local", choices=["local", "openai"], help="local transformers or OpenAI-compatible HTTP")
    g.add_argument("--model", required=True, help="checkpoint folder (local) or model name (openai)")
    g.add_argument("--base-url", default="https://api.openai.com/v1", help="server root for --backend openai")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--concurrency", type=int, default=16, help="requests in flight (openai)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per request attempt (openai)")
    g.add_argument("--retries", type=int, default=5, help="retries on 429/5xx/timeouts (openai)")
    g.add_argument("--max-new-tokens", type=int, default=256, help="generation cap (local)")
    g.add_argument("--batch-size", type=int, default=32, help="calls per batch")
    g.add_argument("--max-attempts", type=int, default=3, help="tries per call before its broken items are dropped")
    g.add_argument("--cache", default=None, help="request cache folder: a rerun pays for nothing twice")
    g.add_argument("--ledger", default=None, help="append one JSON line per call (tokens, cost) here")
    g.add_argument("--prices", default=None, help="YAML/JSON price table {model: {input_per_1k, output_per_1k, image_tokens}}")
    g.add_argument("--seed", type=int, default=0)


def make_backend(args):
    """The backend the arguments describe (the API key stays in the environment)."""
    from ..engine.backends import LocalBackend, OpenAIBackend

    if args.backend == "local":
        return LocalBackend(args.model, max_new_tokens=args.max_new_tokens, batch_size=min(args.batch_size, 16), cache_dir=args.cache)
    return OpenAIBackend(args.base_url, args.model, api_key_env=args.api_key_env, max_concurrency=args.concurrency,
                         timeout_s=args.timeout, max_retries=args.retries, cache_dir=args.cache)


def _engine(args, **kwargs):
    from ..engine.engine import Engine
    from ..engine.ledger import Ledger, load_prices

    backend = make_backend(args)
    ledger = Ledger(load_prices(args.prices), path=args.ledger)
    return Engine(backend, ledger=ledger, batch_size=args.batch_size, max_attempts=args.max_attempts, seed=args.seed, **kwargs)


def load_images(spec: str):
    """Images: ``shapesworld[:N[:SEED]]`` or a folder saved with ``save_to_disk``."""
    if spec.startswith("shapesworld"):
        from ..engine.shapes import shapes_images

        parts = spec.split(":")
        n = int(parts[1]) if len(parts) > 1 and parts[1] else 24
        seed = int(parts[2]) if len(parts) > 2 else 0
        return shapes_images(n, seed)
    from datasets import load_from_disk

    if not os.path.isdir(spec):
        raise SystemExit(f"{spec}: not a folder saved with save_to_disk, nor shapesworld[:N]")
    return load_from_disk(spec)


def run_caption(args) -> int:
    engine = _engine(args, caption_max_tokens=args.max_tokens)
    captioned = engine.caption(load_images(args.images), domain=args.domain)
    captioned.save_to_disk(args.output)
    failed = sum(1 for ok in captioned.with_format("arrow")["caption_ok"].to_pylist() if not ok)
    log.info("captioned %d images (%d failed) -> %s", len(captioned), failed, args.output)
    print(json.dumps(engine.ledger.summary()["total"], indent=2))
    return 0


def run_questions(args) -> int:
    from datasets import load_from_disk

    from ..engine.prompts import load_prompts

    prompts = load_prompts(args.prompts) if args.prompts else None
    engine = _engine(args, output=args.output_format, suffixes=args.suffixes, prompts=prompts, max_tokens=args.max_tokens)
    captioned = load_from_disk(args.captioned)
    kept, rejected = engine.instructions(captioned, types=args.types, n_questions=args.n, n_seeds=args.seeds,
                                         long_vqa=bool(args.long_vqa), n_long=args.long_vqa or 5, captions=args.caption_rows)
    save_output(kept, args.output)
    if args.rejected:
        save_output(rejected, args.rejected)
    log.info("%d rows kept, %d rejected -> %s", len(kept), len(rejected), args.output)
    print(json.dumps(engine.ledger.summary()["total"], indent=2))
    return 0


def run_review_export(args) -> int:
    from ..engine.review import export_review

    ds = load_input(args.input, args.format, args.image_root, args.source)
    print(export_review(ds, args.output, image_dir=args.image_dir))
    return 0


def run_review_import(args) -> int:
    from ..engine.review import import_review

    ds = load_input(args.input, args.format, args.image_root, args.source)
    kept, rejected = import_review(ds, args.review, undecided=args.undecided)
    save_output(kept, args.output)
    if args.rejected:
        save_output(rejected, args.rejected)
    log.info("%d rows kept, %d rejected by review", len(kept), len(rejected))
    return 0


def run_cost(args) -> int:
    from ..engine.ledger import PAPER_TABLE2, Ledger, cost_report, report_markdown

    ledger = Ledger.read(args.ledger)
    report = cost_report(
        ledger.records, n_images=args.images, n_instructions=args.instructions,
        correction_per_instruction=PAPER_TABLE2["correction_per_instruction_usd"] if args.correction is None else args.correction,
        manual_per_instruction=PAPER_TABLE2["manual_per_instruction_usd"] if args.manual is None else args.manual,
    )
    print(json.dumps(report, indent=2) if args.json else report_markdown(report))
    return 0


def run_tag(args) -> int:
    from ..stages.taxonomy import taxonomy

    ds = load_input(args.input, args.format, args.image_root, args.source)
    out = taxonomy(ds, use_task=not args.no_task, fallback=args.fallback, overwrite=args.overwrite)
    save_output(out, args.output)
    log.info("tagged %d rows -> %s", len(out), args.output)
    return 0
