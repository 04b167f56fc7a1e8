"""``vitcurate revolion``: REVO-LION's tune-cross-evaluation, DQ table, S1/S2/S3, release and splits.

Mirrors :mod:`hf_vitcurate.select.revolion` and :mod:`hf_vitcurate.select.revolion_driver`;
``revolion select s1|s2|s3`` and ``revolion release`` are ``vitcurate select s1|s2|s3|release``
under the paper's name. A model's answers and their MQ alone are ``vitcurate score generate``
and ``vitcurate score mq``.

Example:
    $ vitcurate revolion cross --work-dir runs/revo --output scored/          # ShapesWorld, a tiny model
    $ vitcurate revolion cross --source conv=conv.jsonl --source detail=detail.jsonl \\
          --model llava-hf/llava-1.5-7b-hf --work-dir runs/revo --output scored/
    $ vitcurate revolion sq answered/ --output scored/     # DQ and SQ from mq__* columns, no training
    $ vitcurate revolion select s1 scored/ --fraction 0.5 --output s1/ --manifest s1.json
    $ vitcurate revolion release scored/ --output release/
    $ vitcurate revolion split pool/ --seed SPLIT2 --output split2/
    $ vitcurate revolion mq-score --predictions "a red circle" --references "a red circle on the left"
    $ vitcurate revolion mq-score --predictions-file answers.txt --references-file references.txt
"""

from __future__ import annotations

import argparse

import os

from ..errors import ConfigError, check_path
from .common import add_input_args, load_input, option, print_summary, quiet_if_small, save_output
from .select import add_method, json_value, strip_ids, write_manifest


def register(sub) -> None:
    from ..metrics import mq_scores
    from ..select.revolion import add_sq, dq_table, split_protocol
    from ..select.revolion_driver import tune_cross_evaluate

    p = sub.add_parser("revolion", help="REVO-LION: tune-cross-evaluation, DQ/SQ, S1/S2/S3, release splits")
    verbs = p.add_subparsers(dest="revolion_command", metavar="STEP", required=True)

    c = verbs.add_parser("cross", help="tune on each source, answer every other source, MQ/DQ/SQ columns")
    c.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                   help="a protocol dataset (repeat); default: ShapesWorld's training sources")
    c.add_argument("--images", type=int, default=300, help="ShapesWorld images when no --source (default: 300)")
    c.add_argument("--data-seed", type=int, default=0, help="ShapesWorld seed when no --source (default: 0)")
    c.add_argument("--model", default=None,
                   help="checkpoint to fine-tune on each source (default: a tiny one built in WORK_DIR/base by "
                        "testing.train_tiny: vision tower pretrained, stage 1 on the sources' captions)")
    c.add_argument("--work-dir", required=True, help="models, answer chunks, DQ table and plots go here")
    option(c, tune_cross_evaluate, "recipe", "training options as JSON (None: the tiny recipe for tiny models)",
           type=json_value)
    for name, help in (("max_new_tokens", "tokens per answer at most"), ("batch_size", "rows per generate call"),
                       ("chunk_size", "rows per resumable chunk"), ("seed", "training seed"),
                       ("restart", "discard the answer chunks in --work-dir"),
                       ("explode", "cut multi-turn rows into single-turn triplets first (the paper's unit)")):
        option(c, tune_cross_evaluate, name, help)
    option(c, tune_cross_evaluate, "cache", "reuse fine-tunes and answers from the model cache when inputs, options "
           "and code are the same (--no-cache: compute them here; None: on unless HF_VITCURATE_TINY_CACHE=0)",
           action=argparse.BooleanOptionalAction)
    option(c, tune_cross_evaluate, "variant", "MQ variant", choices=["C1", "C2", "C3"])
    option(c, tune_cross_evaluate, "reduce", "MQ^D of the DQ matrix", choices=["mean", "sum"])
    c.add_argument("--output", required=True, help="where to write the scored pool (answer__*, mq__*, sq)")
    c.set_defaults(func=run_cross)

    d = verbs.add_parser("dq", help="DQ matrix/vector of a scored pool (mq__* columns) as Markdown/CSV")
    add_input_args(d)
    option(d, dq_table, "by", "column naming each row's dataset (None: `dataset` when present, else `source`)", type=str)
    option(d, dq_table, "reduce", "MQ^D of the DQ matrix", choices=["mean", "sum"])
    d.add_argument("--csv", default=None, help="also write the table as CSV")
    d.add_argument("--heatmap", default=None, help="also draw the heat map PNG")
    d.set_defaults(func=run_dq)

    q2 = verbs.add_parser("sq", help="DQ of a pool's mq__* columns, then each row's SQ (no training)")
    add_input_args(q2)
    option(q2, dq_table, "by", "column naming each row's dataset (None: `dataset` when present, else `source`)", type=str)
    option(q2, dq_table, "reduce", "MQ^D of the DQ matrix", choices=["mean", "sum"])
    option(q2, add_sq, "column", "the SQ column to add")
    q2.add_argument("--output", required=True, help="where to write the pool with the SQ column")
    q2.set_defaults(func=run_sq)

    s = verbs.add_parser("select", help="S1 (top SQ), S2 (random, same counts), S3 (Gaussian band)")
    strategies = s.add_subparsers(dest="strategy", metavar="STRATEGY", required=True)
    for name in ("s1", "s2", "s3"):
        add_method(strategies, name)
    add_method(verbs, "release")

    sp = verbs.add_parser("split", help="per dataset: 80%% tuning pool / Eval600 (SPLIT1, SPLIT2 or an int seed)")
    add_input_args(sp)
    option(sp, split_protocol, "seed", "SPLIT1, SPLIT2 or an integer", type=str)
    option(sp, split_protocol, "eval_size", "Eval rows per dataset")
    option(sp, split_protocol, "tune_fraction", "share of each dataset in the tuning pool")
    option(sp, split_protocol, "by", "column naming each row's dataset (None: `dataset` when present, else `source`)",
           type=str)
    sp.add_argument("--output", required=True, help="folder of a DatasetDict with splits tune and eval")
    sp.add_argument("--manifest", default=None, help="where to write the manifest JSON")
    sp.set_defaults(func=run_split)

    q = verbs.add_parser("mq-score", help="MQ and its components of predictions against references (text)")
    q.add_argument("--predictions", nargs="+", default=None, help="prediction texts")
    q.add_argument("--references", nargs="+", default=None, help="reference texts, one per prediction")
    q.add_argument("--predictions-file", default=None,
                   help="predictions, one per line (.txt) or a JSON list (.json) (instead of --predictions)")
    q.add_argument("--references-file", default=None, help="references, like --predictions-file")
    option(q, mq_scores, "variant", "MQ variant", choices=["C1", "C2", "C3"])
    q.set_defaults(func=run_mq_score)


def _sources(args) -> dict:
    if args.source:
        out = {}
        for item in args.source:
            name, sep, path = item.partition("=")
            if not sep:
                raise ConfigError(f"--source expects NAME=PATH, got {item!r}")
            check_path(path, flag="--source")
            out[name] = load_input(path, source=name)
        return out
    from ..synthetic import shapesworld

    dd = shapesworld(args.images, args.data_seed)
    # No method may read the ground truth.
    return {k: v.remove_columns([c for c in v.column_names if c.startswith("_")]) for k, v in dd.items() if k != "benchmark"}


def run_cross(args) -> int:
    from datasets import concatenate_datasets

    from ..distributed import state
    from ..select.revolion_driver import tune_cross_evaluate

    sources = _sources(args)
    quiet_if_small(sum(len(d) for d in sources.values()))
    model = args.model
    if model is None:
        from ..testing import train_tiny

        # The tiny default: tokenizer on the sources, tower pretrained, stage 1 on their captions.
        model = train_tiny(concatenate_datasets(list(sources.values())), work_dir=os.path.join(args.work_dir, "base"),
                           seed=args.seed)
    pool, manifest = result = tune_cross_evaluate(
        sources, model=model, work_dir=args.work_dir, recipe=args.recipe, max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size, seed=args.seed, variant=args.variant, reduce=args.reduce,
        chunk_size=args.chunk_size, explode=args.explode, restart=args.restart, cache=args.cache,
    )
    if state().is_main_process:
        save_output(pool, args.output)
        print(result.dq.to_markdown())
        print_summary({"output": args.output, "work_dir": args.work_dir, "rows": len(pool),
                       "datasets": {k: len(v) for k, v in sources.items()}, "trained": manifest["trained"],
                       "reused": manifest["reused"], "dq": dict(zip(result.dq.names, result.dq.dq.tolist()))})
    return 0


def run_dq(args) -> int:
    from ..select.revolion import dq_table
    from ..select.revolion_report import dq_heatmap, save_png

    ds = load_input(args)
    quiet_if_small(len(ds))
    table = dq_table(ds, by=args.by, reduce=args.reduce)
    print(table.to_markdown())
    if args.csv:
        table.to_csv(args.csv)
    if args.heatmap:
        save_png(dq_heatmap(table), args.heatmap)
    print_summary({"rows": len(ds), "csv": args.csv, "heatmap": args.heatmap, "dq": table.weights()})
    return 0


def run_split(args) -> int:
    from ..select.revolion import split_protocol

    ds = load_input(args)
    quiet_if_small(len(ds))
    seed = int(args.seed) if str(args.seed).lstrip("-").isdigit() else args.seed
    parts, manifest = split_protocol(ds, seed=seed, eval_size=args.eval_size, tune_fraction=args.tune_fraction,
                                     by=args.by)
    save_output(parts, args.output)  # empty splits stay readable
    write_manifest(manifest, args.manifest)
    print_summary({"output": args.output, "manifest": args.manifest, "rows_in": len(ds),
                   "rows_out": {k: len(v) for k, v in parts.items()}, "groups": strip_ids(manifest["groups"])})
    return 0


def run_sq(args) -> int:
    from ..select.revolion import add_sq, dq_table

    ds = load_input(args)
    quiet_if_small(len(ds))
    table = dq_table(ds, by=args.by, reduce=args.reduce)
    out = add_sq(ds, dq=table, by=args.by, column=args.column)
    save_output(out, args.output)
    print(table.to_markdown())
    values = out.with_format("arrow")[args.column].to_pylist()
    print_summary({"output": args.output, "rows": len(out), "dq": table.weights(),
                   f"mean_{args.column}": sum(values) / max(1, len(values))})
    return 0


def read_texts(path: str, flag: str) -> list[str]:
    """Texts of a file: a JSON list of strings (``.json``), else one text per line.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp(), "a.txt"); _ = p.write_text("a cat\\nthe dog\\n")
    >>> read_texts(str(p), "--predictions-file")
    ['a cat', 'the dog']
    """
    import json

    check_path(path, flag=flag)
    with open(path, encoding="utf-8") as f:
        if path.endswith(".json"):
            texts = json.load(f)
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise ConfigError(f"{flag} {path}: a .json file must hold a list of strings")
            return texts
        return f.read().splitlines()


def _texts(args, name: str) -> list[str]:
    given, path = getattr(args, name), getattr(args, f"{name}_file")
    if (given is None) == (path is None):
        raise ConfigError(f"give either --{name} or --{name}-file")
    return given if path is None else read_texts(path, f"--{name}-file")


def run_mq_score(args) -> int:
    from ..metrics import mq_scores

    predictions, references = _texts(args, "predictions"), _texts(args, "references")
    if len(predictions) != len(references):
        raise ConfigError(f"give as many --references as --predictions ({len(references)} and {len(predictions)})")
    scores = mq_scores(predictions, references, variant=args.variant)
    means = {k: sum(v) / max(1, len(v)) for k, v in scores.items()}
    # Per-row scores only while they stay readable; the means always.
    print_summary({"n": len(predictions), "mean": means, **(scores if len(predictions) <= 20 else {})})
    return 0
