"""``vitcurate revolion``: REVO-LION's tune-cross-evaluation, DQ/SQ, S1/S2/S3 and the release.

Mirrors :mod:`hf_vitcurate.select.revolion`, :mod:`hf_vitcurate.select.revolion_driver`,
:func:`hf_vitcurate.stages.generate` and :func:`hf_vitcurate.stages.mq`.

Example:
    $ vitcurate revolion cross --base-model ckpt/tiny --work-dir runs/revo --output scored/   # ShapesWorld
    $ vitcurate revolion cross --source conv=conv.jsonl --source detail=detail.jsonl \\
          --base-model llava-hf/llava-1.5-7b-hf --work-dir runs/revo --output scored/
    $ vitcurate revolion select s1 scored/ --p 0.5 --output s1/ --manifest s1.json
    $ vitcurate revolion release scored/ --p 0.7 --output release/
    $ vitcurate revolion split pool/ --seed SPLIT2 --output split2/
    $ vitcurate revolion mq-score --predictions "a red circle" --references "a red circle on the left"
"""

from __future__ import annotations

import json
import os

from .common import add_input_args, load_input, save_output


def _write_manifest(manifest: dict, path: str | None) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(manifest, f, indent=2, default=str)


def _summary(manifest: dict) -> dict:
    """The manifest without id lists (they go to ``--manifest``)."""
    if isinstance(manifest, dict):
        return {k: _summary(v) for k, v in manifest.items() if k != "ids"}
    return manifest


def _by(args, ds) -> str:
    """``--by``, else ``dataset`` when ``cross`` added that column, else ``source``."""
    if args.by:
        return args.by
    return "dataset" if "dataset" in ds.column_names else "source"


def register(sub) -> None:
    p = sub.add_parser("revolion", help="REVO-LION: tune-cross-evaluation, DQ/SQ, S1/S2/S3, release splits")
    verbs = p.add_subparsers(dest="revolion_command", metavar="STEP", required=True)

    c = verbs.add_parser("cross", help="tune on each source, answer every other source, MQ/DQ/SQ columns")
    c.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                   help="a protocol dataset (repeat); default: ShapesWorld's training sources")
    c.add_argument("--images", type=int, default=300, help="ShapesWorld images when no --source (default: 300)")
    c.add_argument("--data-seed", type=int, default=0, help="ShapesWorld seed when no --source")
    c.add_argument("--base-model", default=None,
                   help="checkpoint to fine-tune (default: models.train_tiny in WORK_DIR/base: "
                        "tiny checkpoint, vision tower pretrained, stage 1 on the sources' captions)")
    c.add_argument("--work-dir", required=True, help="models, answer chunks, DQ table and plots go here")
    c.add_argument("--recipe", default=None, help="training options as JSON (default: the tiny recipe for tiny models)")
    c.add_argument("--max-new-tokens", type=int, default=64)
    c.add_argument("--batch-size", type=int, default=16)
    c.add_argument("--chunk-size", type=int, default=256)
    c.add_argument("--variant", default="C1", choices=["C1", "C2", "C3"])
    c.add_argument("--reduce", default="mean", choices=["mean", "sum"], help="MQ^D of the DQ matrix")
    c.add_argument("--seed", type=int, default=0, help="training seed")
    c.add_argument("--output", required=True, help="where to write the scored pool (answer__*, mq__*, sq)")
    c.set_defaults(func=run_cross)

    d = verbs.add_parser("dq", help="DQ matrix/vector of a scored pool (mq__* columns) as Markdown/CSV")
    add_input_args(d)
    d.add_argument("--by", default=None, help="column naming each row's dataset (default: dataset or source)")
    d.add_argument("--csv", default=None, help="also write the table as CSV")
    d.add_argument("--heatmap", default=None, help="also draw the heat map PNG")
    d.set_defaults(func=run_dq)

    s = verbs.add_parser("select", help="S1 (top SQ), S2 (random, same counts), S3 (Gaussian band)")
    s.add_argument("strategy", choices=["s1", "s2", "s3"])
    add_input_args(s)
    s.add_argument("--p", type=float, default=0.7, help="portion P per dataset (S1, S2)")
    s.add_argument("--lam", type=float, default=1.0, help="lambda (S3)")
    s.add_argument("--seed", type=int, default=0, help="S2's seed")
    s.add_argument("--by", default=None, help="column naming each row's dataset (default: dataset or source)")
    s.add_argument("--output", required=True)
    s.add_argument("--manifest", default=None)
    s.set_defaults(func=run_select)

    r = verbs.add_parser("release", help="S1 at P, then REVO-LION-Eval (600 per dataset) and REVO-LION-Tune")
    add_input_args(r)
    r.add_argument("--p", type=float, default=0.7)
    r.add_argument("--eval-size", type=int, default=600)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--by", default=None, help="column naming each row's dataset (default: dataset or source)")
    r.add_argument("--output", required=True, help="folder of a DatasetDict with splits tune and eval")
    r.add_argument("--manifest", default=None)
    r.set_defaults(func=run_release)

    sp = verbs.add_parser("split", help="per dataset: 80%% tuning pool / Eval600 (SPLIT1, SPLIT2 or an int seed)")
    add_input_args(sp)
    sp.add_argument("--seed", default="SPLIT1")
    sp.add_argument("--eval-size", type=int, default=600)
    sp.add_argument("--tune-fraction", type=float, default=0.8)
    sp.add_argument("--by", default=None, help="column naming each row's dataset (default: dataset or source)")
    sp.add_argument("--output", required=True, help="folder of a DatasetDict with splits tune and eval")
    sp.add_argument("--manifest", default=None)
    sp.set_defaults(func=run_split)

    g = verbs.add_parser("answers", help="greedy answers of a model to each row's last question (a column)")
    add_input_args(g)
    g.add_argument("--model", required=True)
    g.add_argument("--column", default="answer")
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--chunk-size", type=int, default=512)
    g.add_argument("--work-dir", default=None, help="chunk folder for resuming (default: temporary)")
    g.add_argument("--output", required=True)
    g.set_defaults(func=run_answers)

    m = verbs.add_parser("mq", help="mq__MODEL column: MQ of an answer column against the last gpt turn")
    add_input_args(m)
    m.add_argument("--answer-column", default="answer")
    m.add_argument("--model-name", default=None, help="column suffix (default: from the answer column)")
    m.add_argument("--variant", default="C1", choices=["C1", "C2", "C3"])
    m.add_argument("--components", action="store_true", help="also keep the six component columns")
    m.add_argument("--num-proc", type=int, default=None)
    m.add_argument("--output", required=True)
    m.set_defaults(func=run_mq)

    q = verbs.add_parser("mq-score", help="MQ and its components of predictions against references (text)")
    q.add_argument("--predictions", nargs="+", required=True)
    q.add_argument("--references", nargs="+", required=True)
    q.add_argument("--variant", default="C1", choices=["C1", "C2", "C3"])
    q.set_defaults(func=run_mq_score)


def _sources(args) -> dict:
    if args.source:
        out = {}
        for item in args.source:
            name, sep, path = item.partition("=")
            if not sep:
                raise SystemExit(f"--source expects NAME=PATH, got {item!r}")
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
    base = args.base_model
    if base is None:
        from ..models import train_tiny

        # The tiny default: tokenizer on the sources, tower pretrained, stage 1 on their captions.
        base = train_tiny(concatenate_datasets(list(sources.values())), os.path.join(args.work_dir, "base"), seed=args.seed)
    recipe = json.loads(args.recipe) if args.recipe else None
    result = tune_cross_evaluate(
        sources, base, args.work_dir, recipe=recipe, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
        seed=args.seed, variant=args.variant, reduce=args.reduce, chunk_size=args.chunk_size,
    )
    if state().is_main_process:
        save_output(result.pool, args.output)
        print(result.dq.to_markdown())
        print(json.dumps({"rows": len(result.pool), "trained": result.trained, "reused": result.reused,
                          "output": args.output, "work_dir": args.work_dir}, indent=2))
    return 0


def run_dq(args) -> int:
    from ..select.revolion import dq_table
    from ..select.revolion_report import dq_heatmap, save_png

    ds = load_input(args.input, args.format, args.image_root, args.source)
    table = dq_table(ds, by=_by(args, ds))
    print(table.to_markdown())
    if args.csv:
        table.to_csv(args.csv)
    if args.heatmap:
        save_png(dq_heatmap(table), args.heatmap)
    return 0


def run_select(args) -> int:
    from ..select import revolion

    ds = load_input(args.input, args.format, args.image_root, args.source)
    if args.strategy == "s1":
        sub, manifest = revolion.s1(ds, args.p, by=_by(args, ds))
    elif args.strategy == "s2":
        sub, manifest = revolion.s2(ds, args.p, seed=args.seed, by=_by(args, ds))
    else:
        sub, manifest = revolion.s3(ds, args.lam, by=_by(args, ds))
    save_output(sub, args.output)
    _write_manifest(manifest, args.manifest)
    print(json.dumps(_summary(manifest), indent=2, default=str))
    return 0


def run_release(args) -> int:
    from ..select.revolion import release

    ds = load_input(args.input, args.format, args.image_root, args.source)
    parts, manifest = release(ds, args.p, eval_size=args.eval_size, seed=args.seed, by=_by(args, ds))
    parts.save_to_disk(args.output)
    _write_manifest(manifest, args.manifest)
    print(json.dumps(_summary(manifest)["groups"], indent=2))
    return 0


def run_split(args) -> int:
    from ..select.revolion import split_protocol

    ds = load_input(args.input, args.format, args.image_root, args.source)
    seed = int(args.seed) if str(args.seed).lstrip("-").isdigit() else args.seed
    parts, manifest = split_protocol(ds, seed, eval_size=args.eval_size, tune_fraction=args.tune_fraction,
                                     by=_by(args, ds))
    parts.save_to_disk(args.output)
    _write_manifest(manifest, args.manifest)
    print(json.dumps(manifest["groups"], indent=2))
    return 0


def run_answers(args) -> int:
    from ..distributed import state
    from ..stages.generate import generate

    ds = load_input(args.input, args.format, args.image_root, args.source)
    out = generate(ds, args.model, column=args.column, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                   out_dir=args.work_dir, chunk_size=args.chunk_size)
    if state().is_main_process:
        save_output(out, args.output)
    return 0


def run_mq(args) -> int:
    from ..stages.mq import mq

    ds = load_input(args.input, args.format, args.image_root, args.source)
    out = mq(ds, args.answer_column, model=args.model_name, variant=args.variant, components=args.components,
             num_proc=args.num_proc)
    save_output(out, args.output)
    return 0


def run_mq_score(args) -> int:
    from ..metrics import mq_scores

    if len(args.predictions) != len(args.references):
        raise SystemExit("give as many --references as --predictions")
    print(json.dumps(mq_scores(args.predictions, args.references, args.variant), indent=2))
    return 0
