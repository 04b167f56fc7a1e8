"""``vitcurate engine``: the MMInstruct data engine (mirrors :mod:`hf_vitcurate.engine`) and domain/type tagging.

Flags carry the names and defaults of the Python signatures they feed (``Engine``,
``Engine.instructions``, ``LocalBackend``, ``OpenAIBackend``, ``import_review``,
``cost_report``, ``stages.taxonomy``).

Example:
    $ vitcurate engine caption shapesworld:24 --backend local --model ckpt/tiny --output captioned/
    $ vitcurate engine questions captioned/ --backend openai --base-url http://127.0.0.1:8000/v1 \\
          --model gpt-3.5-turbo-1106 --cache-dir cache/ --ledger ledger.jsonl --output rows/ --rejected rejected/
    $ vitcurate engine review-export rows/ --output review.csv --image-dir review_images/
    $ vitcurate engine review-import rows/ review.csv --output reviewed/ --rejected review_rejected/
    $ vitcurate engine cost ledger.jsonl --n-images 24 --n-instructions 300
    $ vitcurate engine tag pool/ --output tagged/
    $ vitcurate engine collect repo_images/ --seeds seeds/ --per-domain 500 --model ckpt/clip --output collected/
"""

from __future__ import annotations

import logging
import os

from ..errors import ConfigError, NotFoundError, check_path
from .common import add_input_args, load_input, option, print_summary, quiet_if_small, save_output

log = logging.getLogger(__name__)


def register(sub) -> None:
    from ..engine.engine import Engine
    from ..engine.prompts import OUTPUT_FORMATS, SUFFIX_STYLES

    p = sub.add_parser("engine", help="MMInstruct data engine: captions, questions, review, cost; domain/type tags")
    verbs = p.add_subparsers(dest="engine_command", metavar="STEP", required=True)

    c = verbs.add_parser("caption", help="(b) caption images with Table 5's prompt")
    c.add_argument("images", help="images saved with save_to_disk (id, images|image, domain) or shapesworld[:N[:SEED]]")
    option(c, Engine.caption, "domain", "domain of every image (none: the 'domain' column)", type=str)
    _backend_args(c)
    option(c, Engine, "caption_max_tokens", "generation limit per caption call")
    c.add_argument("--output", required=True, help="where to write the captioned images")
    c.set_defaults(func=run_caption)

    q = verbs.add_parser("questions", help="(c)-(e) questions of each type with seeds, and multi-round long VQA")
    q.add_argument("captioned", help="output of `vitcurate engine caption`")
    option(q, Engine.instructions, "types", "instruction types to ask for", type=str, nargs="+")
    option(q, Engine.instructions, "n_questions", "questions per call")
    option(q, Engine.instructions, "n_seeds", "seed questions per call")
    option(q, Engine.instructions, "long_vqa", "also make one multi-round long VQA row per image")
    option(q, Engine.instructions, "n_long", "linked questions per multi-round row")
    option(q, Engine.instructions, "captions", "also emit each caption as a row (type caption)")
    option(q, Engine, "output_format", "output format the prompts ask for", choices=list(OUTPUT_FORMATS))
    option(q, Engine, "suffixes", "indicator suffixes: one fixed sentence per type, or the published end prompts",
           choices=list(SUFFIX_STYLES))
    q.add_argument("--prompts", default=None, metavar="DIR", help="folder of <name>.j2 templates overriding the packaged ones")
    q.add_argument("--seeds", default=None, nargs="+", metavar="PATH|DOMAIN=FILE",
                   help="your seed questions over the packaged ones: a folder or file in the published layout "
                        "(000NN_<domain>.json), or DOMAIN=FILE pairs")
    _backend_args(q)
    option(q, Engine, "max_tokens", "generation limit per question call")
    q.add_argument("--output", required=True, help="where to write kept rows")
    q.add_argument("--rejected", default=None, help="where to write rejected rows (with reasons)")
    q.set_defaults(func=run_questions)

    _register_review(verbs)
    _register_cost(verbs)
    _register_tag(verbs)
    from .engine_collect import register_collect

    register_collect(verbs)


def _register_review(verbs) -> None:
    from ..engine.review import export_review, import_review

    e = verbs.add_parser("review-export", help="(f) write rows to a review file (.jsonl or .csv)")
    add_input_args(e)
    e.add_argument("--output", required=True, help="review file (.jsonl or .csv)")
    option(e, export_review, "image_dir", "write each row's image here for the reviewers", type=str)
    e.set_defaults(func=run_review_export)

    i = verbs.add_parser("review-import", help="(f) apply accept/reject/edit decisions from a review file")
    add_input_args(i)
    i.add_argument("review", help="the review file with decisions")
    option(i, import_review, "undecided", "rows without a decision", choices=["keep", "reject", "error"])
    i.add_argument("--output", required=True, help="where to write kept rows")
    i.add_argument("--rejected", default=None, help="where to write rejected rows (with reasons)")
    i.set_defaults(func=run_review_import)


def _register_cost(verbs) -> None:
    from ..engine.ledger import cost_report

    k = verbs.add_parser("cost", help="cost report of a ledger against the paper's manual-annotation model")
    k.add_argument("ledger", help="ledger.jsonl written by the engine")
    k.add_argument("--n-images", type=int, required=True, help="images captioned")
    k.add_argument("--n-instructions", type=int, required=True, help="instructions (QA pairs) kept")
    option(k, cost_report, "correction_per_instruction", "manual correction USD per instruction")
    option(k, cost_report, "manual_per_instruction", "manual construction USD per instruction")
    k.add_argument("--json", action="store_true", help="the whole report as the closing JSON summary (no table)")
    k.set_defaults(func=run_cost)


def _register_tag(verbs) -> None:
    from ..stages.taxonomy import taxonomy

    t = verbs.add_parser("tag", help="add domain and instruction_type to rows of any source")
    add_input_args(t)
    option(t, taxonomy, "use_task", "read the type from a `task` that already names one")
    option(t, taxonomy, "fallback", "domain when no keyword matches")
    option(t, taxonomy, "replace_columns", "replace existing domain/instruction_type values")
    t.add_argument("--output", required=True, help="where to write the tagged rows")
    t.set_defaults(func=run_tag)


def _backend_args(p) -> None:
    from ..engine.backends import LocalBackend, OpenAIBackend
    from ..engine.engine import Engine

    g = p.add_argument_group("backend")
    g.add_argument("--backend", default="local", choices=["local", "openai"], help="local transformers or OpenAI-compatible HTTP")
    g.add_argument("--model", required=True, help="checkpoint folder or Hub id (local), or model name (openai)")
    g.add_argument("--base-url", default="https://api.openai.com/v1", help="server root for --backend openai")
    option(g, OpenAIBackend, "api_key_env", "environment variable holding the API key (openai)")
    option(g, OpenAIBackend, "max_concurrency", "requests in flight (openai)")
    option(g, OpenAIBackend, "timeout_s", "seconds per request attempt (openai)")
    option(g, OpenAIBackend, "max_retries", "retries on 429/5xx/timeouts (openai)")
    option(g, LocalBackend, "max_new_tokens", "generation cap (local)")
    option(g, Engine, "batch_size", "calls handed to the backend at once")
    option(g, Engine, "max_attempts", "tries per call before its broken items are rejected")
    option(g, Engine, "seed", "seed of the seed-question draws")
    option(g, Engine, "work_dir", "keep each round's finished chunks here; a rerun skips them (for accelerate launch)", type=str)
    g.add_argument("--cache-dir", default=None, help="request cache folder: a rerun pays for nothing twice")
    g.add_argument("--ledger", default=None, help="append one JSON line per call (tokens, cost) here")
    g.add_argument("--prices", default=None, help="YAML/JSON price table {model: {input_per_1k, output_per_1k, image_tokens}}")


def make_backend(args):
    """The backend the arguments describe (the API key stays in the environment)."""
    from ..engine.backends import LocalBackend, OpenAIBackend

    if args.backend == "local":
        # A local model batches its forward passes; more than 16 rows rarely fit next to the prompts.
        return LocalBackend(args.model, max_new_tokens=args.max_new_tokens, batch_size=min(args.batch_size, 16),
                            cache_dir=args.cache_dir)
    return OpenAIBackend(args.base_url, args.model, api_key_env=args.api_key_env, max_concurrency=args.max_concurrency,
                         timeout_s=args.timeout_s, max_retries=args.max_retries, cache_dir=args.cache_dir)


def _engine(args, **kwargs):
    from ..engine.engine import Engine
    from ..engine.ledger import Ledger, load_prices

    ledger = Ledger(load_prices(args.prices), path=args.ledger)
    return Engine(make_backend(args), ledger=ledger, batch_size=args.batch_size, max_attempts=args.max_attempts,
                  seed=args.seed, work_dir=args.work_dir, **kwargs)


def load_images(spec: str):
    """Images: ``shapesworld[:N[:SEED]]`` or a folder saved with ``save_to_disk``."""
    if spec.startswith("shapesworld"):
        from ..engine.shapes import shapes_images

        parts = spec.split(":")
        if not all(p.isdigit() for p in parts[1:3] if p) or len(parts) > 3:
            raise ConfigError(f"IMAGES: shapesworld[:N[:SEED]] takes whole numbers, got {spec!r}")
        n = int(parts[1]) if len(parts) > 1 and parts[1] else 24
        seed = int(parts[2]) if len(parts) > 2 and parts[2] else 0
        return shapes_images(n, seed)
    from datasets import load_from_disk

    if not os.path.isdir(spec):
        raise NotFoundError(f"IMAGES: no such file or folder: {spec} (give a save_to_disk folder or shapesworld[:N[:SEED]])")
    return load_from_disk(spec)


def run_caption(args) -> int:
    images = load_images(args.images)
    quiet_if_small(len(images))
    engine = _engine(args, caption_max_tokens=args.caption_max_tokens)
    captioned = engine.caption(images, domain=args.domain)
    save_output(captioned, args.output)
    failed = sum(1 for ok in captioned.with_format("arrow")["caption_ok"].to_pylist() if not ok)
    print_summary({"output": args.output, "images": len(captioned), "captions_failed": failed,
                   "cost": engine.ledger.summary()["total"]})
    return 0


def run_questions(args) -> int:
    from datasets import load_from_disk

    from ..engine.prompts import load_prompts

    check_path(args.captioned, hub=False)
    captioned = load_from_disk(args.captioned)
    quiet_if_small(len(captioned))
    prompts = load_prompts(args.prompts) if args.prompts else None
    engine = _engine(args, output_format=args.output_format, suffixes=args.suffixes, prompts=prompts, max_tokens=args.max_tokens,
                     seeds=_seeds_arg(args.seeds))
    kept, rejected = engine.instructions(captioned, types=args.types, n_questions=args.n_questions, n_seeds=args.n_seeds,
                                         long_vqa=args.long_vqa, n_long=args.n_long, captions=args.captions)
    save_output(kept, args.output)
    if args.rejected:
        save_output(rejected, args.rejected)
    print_summary({"output": args.output, "rejected_output": args.rejected, "rows_in": len(kept) + len(rejected),
                   "kept": len(kept), "rejected": len(rejected), "no_seed_fallbacks": engine.seeds.fallback_list(),
                   "cost": engine.ledger.summary()["total"]})
    return 0


def _seeds_arg(values: list[str] | None):
    """``--seeds``: one folder or file, or ``DOMAIN=FILE`` pairs (a mapping for :func:`~..engine.seeds.as_seed_bank`)."""
    if not values:
        return None
    pairs = [v.split("=", 1) for v in values if "=" in v and not os.path.exists(v)]
    if len(pairs) == len(values):
        return dict(pairs)
    if len(values) == 1 and not pairs:
        return values[0]
    raise ConfigError(f"--seeds: give one folder or file, or DOMAIN=FILE pairs, not {values}")


def run_review_export(args) -> int:
    from ..engine.review import export_review

    ds = load_input(args)
    quiet_if_small(len(ds))
    path = export_review(ds, args.output, image_dir=args.image_dir)
    print_summary({"output": path, "rows": len(ds), "image_dir": args.image_dir})
    return 0


def run_review_import(args) -> int:
    from ..engine.review import import_review

    check_path(args.review, hub=False)
    ds = load_input(args)
    quiet_if_small(len(ds))
    kept, rejected = import_review(ds, args.review, undecided=args.undecided)
    save_output(kept, args.output)
    if args.rejected:
        save_output(rejected, args.rejected)
    print_summary({"output": args.output, "rejected_output": args.rejected, "rows_in": len(ds),
                   "kept": len(kept), "rejected": len(rejected)})
    return 0


def run_cost(args) -> int:
    from ..engine.ledger import Ledger, cost_report, report_markdown

    check_path(args.ledger, hub=False)
    report = cost_report(Ledger.read(args.ledger).records, n_images=args.n_images, n_instructions=args.n_instructions,
                         correction_per_instruction=args.correction_per_instruction,
                         manual_per_instruction=args.manual_per_instruction)
    if args.json:
        print_summary(report)
        return 0
    print(report_markdown(report))
    print_summary({"ledger": args.ledger, **{k: report["measured"][k] for k in ("per_image_usd", "per_instruction_usd", "calls")},
                   "engine_over_manual": report["this_run"]["engine_over_manual"]})
    return 0


def run_tag(args) -> int:
    from ..stages.taxonomy import taxonomy

    ds = load_input(args)
    quiet_if_small(len(ds))
    out = taxonomy(ds, use_task=args.use_task, fallback=args.fallback, replace_columns=args.replace_columns)
    save_output(out, args.output)
    print_summary({"output": args.output, "rows": len(out)})
    return 0
