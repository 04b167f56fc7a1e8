"""``vitcurate stats``: rows per source and task, turns, question/answer words, question types.

Mirrors :func:`hf_vitcurate.stats.stats`; prints Markdown (default) or JSON, and can
write the question-type chart (SVIT's Figure 3 analogue). With ``--json`` the report is
the closing summary; otherwise the Markdown is followed by a short summary.

Example:
    $ vitcurate stats curated/ --by task --chart question_types.png
"""

from __future__ import annotations

from .common import add_input_args, load_input, option, print_summary, quiet_if_small


def register(sub) -> None:
    from ..stats import stats

    p = sub.add_parser("stats", help="statistics: rows per source/task, words, question types, images")
    add_input_args(p)
    option(p, stats, "by", "group rows by", choices=["task", "source"])
    option(p, stats, "top", "question prefixes kept per group")
    option(p, stats, "map_batch_size", "rows per Arrow batch")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of Markdown")
    p.add_argument("--chart", default=None, metavar="PNG", help="write the question-type chart (Figure 3 analogue)")
    p.add_argument("--markdown", default=None, metavar="MD", help="also write the Markdown report to this file")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..stats import plot_first_words, stats, to_markdown

    ds = load_input(args)
    quiet_if_small(len(ds))
    report = stats(ds, by=args.by, top=args.top, map_batch_size=args.map_batch_size)
    text = to_markdown(report)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    if args.chart:
        plot_first_words(report, args.chart)
    if args.json:
        print_summary(report)
        return 0
    print(text)
    print_summary({"rows": report["rows"], "by": args.by, "groups": len(report["groups"]),
                   "markdown": args.markdown, "chart": args.chart})
    return 0
