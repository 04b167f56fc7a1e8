"""``vitcurate svit``: SVIT tagging, clean-up and recipes under the paper's name.

``tag`` runs :func:`hf_vitcurate.stages.concepts` and :func:`~hf_vitcurate.stages.yes_no`;
``clean`` runs :func:`~hf_vitcurate.stages.leakage` and :func:`~hf_vitcurate.stages.qa_count`
(and with ``--drop`` splits the flagged rows off with :func:`~hf_vitcurate.stages.reject`);
``diversity``, ``balance``, ``core`` and ``mix`` are ``vitcurate select diversity|balance|core|mix``.

Example:
    $ vitcurate svit tag pool/ --output tagged/
    $ vitcurate svit core tagged/ --n 2000 --seed 0 --output core/ --manifest core.json
    $ vitcurate svit mix mixture/ --replace-source llava_instruct --core core/ --output mix/
"""

from __future__ import annotations

from collections import Counter

from ..errors import check_path
from .common import add_input_args, load_input, option, print_summary, quiet_if_small, save_output
from .score import expected_qa
from .select import add_method, tag_args


def register(sub) -> None:
    from ..stages import leakage

    p = sub.add_parser("svit", help="SVIT: concept/yes-no tags, clean-up, diversity/balance/core/mix recipes")
    verbs = p.add_subparsers(dest="svit_command", metavar="STEP", required=True)

    t = verbs.add_parser("tag", help="add concepts, concept_counts, informativeness and yes_no columns")
    add_input_args(t)
    tag_args(t)
    t.add_argument("--output", required=True, help="where to write the tagged rows")
    t.set_defaults(func=run_tag)

    c = verbs.add_parser("clean", help="flag (or drop) answers leaking the annotation source / rows with too few QA pairs")
    add_input_args(c)
    c.add_argument("--phrases", default=None, help="file with one leak phrase per line (default: the built-in list)")
    c.add_argument("--no-leakage", action="store_true", help="skip the leakage check")
    c.add_argument("--expected-qa", nargs="*", default=None, metavar="N|TASK=N",
                   help="expected QA pairs: one number, or TASK=N pairs (tasks not named are not checked)")
    option(c, leakage, "map_batch_size", "rows per Arrow batch")
    c.add_argument("--drop", action="store_true", help="drop flagged rows (written to --rejected with reasons)")
    c.add_argument("--output", required=True, help="where to write the (kept) rows")
    c.add_argument("--rejected", default=None, help="where to write rejected rows (with --drop)")
    c.set_defaults(func=run_clean)

    for name in ("diversity", "balance", "core", "mix"):
        add_method(verbs, name)


def run_tag(args) -> int:
    from ..stages import concepts, yes_no

    ds = load_input(args)
    quiet_if_small(len(ds))
    ds = yes_no(concepts(ds, concept_sets=args.concept_sets, measure=args.measure))
    save_output(ds, args.output)
    yn = Counter(ds.with_format("arrow")["yes_no"].to_pylist())
    info = ds.with_format("arrow")["informativeness"].to_numpy()
    print_summary({"output": args.output, "rows": len(ds), "mean_informativeness": float(info.mean()) if len(ds) else None,
                   "yes": yn["yes"], "no": yn["no"], "none": yn["none"]})
    return 0


def run_clean(args) -> int:
    from datasets import concatenate_datasets

    from ..stages import DEFAULT_LEAK_PHRASES, leakage, qa_count, reject

    ds = load_input(args)
    quiet_if_small(len(ds))
    rows_in = len(ds)
    checks = []
    if not args.no_leakage:
        phrases = DEFAULT_LEAK_PHRASES
        if args.phrases:
            check_path(args.phrases, flag="--phrases", hub=False)
            with open(args.phrases, encoding="utf-8") as f:
                phrases = [line.strip() for line in f if line.strip()]
        ds = leakage(ds, phrases=phrases, map_batch_size=args.map_batch_size)
        checks.append("leakage")
    if args.expected_qa:
        ds = qa_count(ds, expected=expected_qa(args.expected_qa, flag="--expected-qa"), map_batch_size=args.map_batch_size)
        checks.append("qa_short")
    flagged = {c: int(sum(ds.with_format("arrow")[c].to_pylist())) for c in checks}
    rejected = []
    if args.drop:
        for column in checks:
            ds, rej = reject(ds, where=column)
            rejected.append(rej)
    save_output(ds, args.output)
    reasons = Counter(r for rej in rejected for r in rej.with_format("arrow")["reject_reason"].to_pylist())
    if args.rejected and rejected:
        common = [c for c in rejected[0].column_names if all(c in r.column_names for r in rejected)]
        save_output(concatenate_datasets([r.select_columns(common) for r in rejected]), args.rejected)
    print_summary({"output": args.output, "rows_in": rows_in, "kept": len(ds), "rejected": sum(reasons.values()),
                   "reasons": dict(reasons), "flagged": flagged, "rejected_output": args.rejected})
    return 0
