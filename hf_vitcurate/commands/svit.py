"""``vitcurate svit``: SVIT tagging, clean-up and recipes (mirrors stages.concepts/yes_no/leakage/qa_count
and select.diversity/balance/core/mix).

Example:
    $ vitcurate svit tag pool/ --output tagged/
    $ vitcurate svit core tagged/ -n 2000 --seed 0 --output core/ --manifest core.json
    $ vitcurate svit mix mixture/ --replace-source llava_instruct --core core/ --output mix/
"""

from __future__ import annotations

import json
import logging

from .common import add_input_args, load_input, save_output

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("svit", help="SVIT: concept/yes-no tags, clean-up flags, diversity/balance/core/mix recipes")
    verbs = p.add_subparsers(dest="svit_command", metavar="STEP", required=True)

    t = verbs.add_parser("tag", help="add concepts, concept_counts, informativeness and yes_no columns")
    add_input_args(t)
    _tag_args(t)
    t.add_argument("--output", required=True, help="where to write the tagged rows")
    t.set_defaults(func=run_tag)

    c = verbs.add_parser("clean", help="flag (or drop) answers leaking the annotation source / rows with too few QA pairs")
    add_input_args(c)
    c.add_argument("--phrases", default=None, help="file with one leak phrase per line (default: the built-in list)")
    c.add_argument("--no-leakage", action="store_true", help="skip the leakage check")
    c.add_argument("--expected-qa", nargs="*", default=None, metavar="N|TASK=N",
                   help="expected QA pairs: one number, or TASK=N pairs (tasks not named are not checked)")
    c.add_argument("--drop", action="store_true", help="drop flagged rows (written to --rejected with reasons)")
    c.add_argument("--output", required=True, help="where to write the (kept) rows")
    c.add_argument("--rejected", default=None, help="where to write rejected rows (with --drop)")
    c.set_defaults(func=run_clean)

    for name, helptext in (("diversity", "recipe D: informative half, equal draw per task"),
                           ("balance", "recipe B: random draw with yes:no <= ratio, exact size"),
                           ("core", "SVIT-core: D then B")):
        r = verbs.add_parser(name, help=helptext)
        add_input_args(r)
        r.add_argument("-n", "--n", type=int, required=name != "core", default=None,
                       help="rows to select" + (" (default: 157712, SVIT-core-150K)" if name == "core" else ""))
        r.add_argument("--seed", type=int, default=0)
        r.add_argument("--allow-short", action="store_true", help="return fewer rows with a warning instead of failing")
        if name in ("diversity", "core"):
            r.add_argument("--per-task", action="store_true", help="drop the less informative half of each task")
        if name in ("balance", "core"):
            r.add_argument("--ratio", type=float, default=8.0, help="largest yes:no ratio (default: 8)")
        _tag_args(r)
        r.add_argument("--output", required=True, help="where to write the selection")
        r.add_argument("--manifest", default=None, help="where to write the manifest (JSON, with ids)")
        r.set_defaults(func=run_recipe, recipe=name)

    m = verbs.add_parser("mix", help="replace one source of a mixture by a core selection")
    add_input_args(m)
    m.add_argument("--replace-source", required=True, nargs="+", help="source(s) of the mixture to replace")
    m.add_argument("--core", required=True, help="the core selection (folder or file)")
    m.add_argument("--output", required=True)
    m.add_argument("--manifest", default=None)
    m.set_defaults(func=run_mix)


def _tag_args(p) -> None:
    p.add_argument("--concepts", default=None, metavar="YAML|JSON", help="concept sets (default: SVIT Table 4)")
    p.add_argument("--measure", default="keywords", choices=["keywords", "concepts", "occurrences"],
                   help="what informativeness counts (default: distinct key words)")


def _tag(ds, args, need: tuple[str, ...] = ("informativeness", "yes_no")):
    """Add the tag columns a step needs when they are missing (and say so)."""
    from ..stages import concepts, yes_no

    if "informativeness" in need and "informativeness" not in ds.column_names:
        log.info("tagging concepts (no informativeness column yet)")
        ds = concepts(ds, concept_sets=args.concepts, measure=args.measure)
    if "yes_no" in need and "yes_no" not in ds.column_names:
        log.info("tagging yes_no (no yes_no column yet)")
        ds = yes_no(ds)
    return ds


def _summary(manifest: dict) -> str:
    return json.dumps({k: v for k, v in manifest.items() if k != "ids"}, indent=2, default=str)


def _write_manifest(manifest: dict, path: str | None) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, default=str)


def run_tag(args) -> int:
    from ..stages import concepts, yes_no

    ds = load_input(args.input, args.format, args.image_root, args.source)
    ds = yes_no(concepts(ds, concept_sets=args.concepts, measure=args.measure))
    save_output(ds, args.output)
    yn = ds.with_format("arrow")["yes_no"].to_pylist()
    info = ds.with_format("arrow")["informativeness"].to_numpy()
    print(json.dumps({"rows": len(ds), "mean_informativeness": float(info.mean()) if len(ds) else None,
                      "yes": yn.count("yes"), "no": yn.count("no"), "none": yn.count("none")}, indent=2))
    return 0


def _expected(values: list[str]) -> int | dict[str, int]:
    if len(values) == 1 and "=" not in values[0]:
        return int(values[0])
    out = {}
    for v in values:
        task, _, n = v.partition("=")
        if not n:
            raise SystemExit(f"--expected-qa: give one number or TASK=N pairs, got {v!r}")
        out[task] = int(n)
    return out


def run_clean(args) -> int:
    from ..stages import DEFAULT_LEAK_PHRASES, leakage, qa_count

    ds = load_input(args.input, args.format, args.image_root, args.source)
    rows_in = len(ds)
    rejected = []
    if not args.no_leakage:
        phrases = DEFAULT_LEAK_PHRASES
        if args.phrases:
            with open(args.phrases, encoding="utf-8") as f:
                phrases = [line.strip() for line in f if line.strip()]
        out = leakage(ds, phrases=phrases, drop=args.drop)
        ds, rej = out if args.drop else (out, None)
        rejected += [rej] if rej is not None else []
    if args.expected_qa:
        out = qa_count(ds, expected=_expected(args.expected_qa), drop=args.drop)
        ds, rej = out if args.drop else (out, None)
        rejected += [rej] if rej is not None else []
    save_output(ds, args.output)
    reasons: dict[str, int] = {}
    for rej in rejected:
        for r in rej.with_format("arrow")["reject_reason"].to_pylist():
            reasons[r] = reasons.get(r, 0) + 1
    if args.rejected and rejected:
        from datasets import concatenate_datasets

        common = [c for c in rejected[0].column_names if all(c in r.column_names for r in rejected)]
        save_output(concatenate_datasets([r.select_columns(common) for r in rejected]), args.rejected)
    summary = {"rows_in": rows_in, "kept": len(ds), "rejected": sum(reasons.values()), "reasons": reasons}
    if not args.drop:
        summary["flagged"] = {c: int(sum(ds.with_format("arrow")[c].to_pylist()))
                              for c in ("leakage", "qa_short") if c in ds.column_names}
    print(json.dumps(summary, indent=2))
    return 0


def run_recipe(args) -> int:
    from .. import select

    ds = load_input(args.input, args.format, args.image_root, args.source)
    need = {"diversity": ("informativeness",), "balance": ("yes_no",), "core": ("informativeness", "yes_no")}[args.recipe]
    ds = _tag(ds, args, need)
    kwargs = {"seed": args.seed, "allow_short": args.allow_short}
    if args.n is not None:
        kwargs["n"] = args.n
    if args.recipe in ("diversity", "core"):
        kwargs["per_task"] = args.per_task
    if args.recipe in ("balance", "core"):
        kwargs["ratio"] = args.ratio
    try:
        selection, manifest = getattr(select, args.recipe)(ds, **kwargs)
    except select.ShortfallError as err:
        raise SystemExit(f"error: {err}") from err
    save_output(selection, args.output)
    _write_manifest(manifest, args.manifest)
    print(_summary(manifest))
    return 0


def run_mix(args) -> int:
    from ..select import mix

    mixture = load_input(args.input, args.format, args.image_root, args.source)
    core_ds = load_input(args.core)
    mixed, manifest = mix(mixture, args.replace_source, core_ds)
    save_output(mixed, args.output)
    _write_manifest(manifest, args.manifest)
    print(_summary(manifest))
    return 0
