"""``vitcurate stats``: rows per source and task, turns, question/answer words, question types.

Mirrors :func:`hf_vitcurate.stats.stats`; prints Markdown (default) or JSON, and can
write the Figure 3 analogue chart.

Example:
    $ vitcurate stats curated/ --by task --chart question_types.png
"""

from __future__ import annotations

import json

from .common import add_input_args, load_input


def register(sub) -> None:
    p = sub.add_parser("stats", help="statistics: rows per source/task, words, question types, images")
    add_input_args(p)
    p.add_argument("--by", default="task", choices=["task", "source"], help="group rows by (default: task)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of Markdown")
    p.add_argument("--chart", default=None, metavar="PNG", help="write the question-type chart (Figure 3 analogue)")
    p.add_argument("--markdown", default=None, metavar="MD", help="also write the Markdown report to this file")
    p.add_argument("--top", type=int, default=20, help="question prefixes kept per group (default: 20)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..stats import plot_first_words, stats, to_markdown

    ds = load_input(args.input, args.format, args.image_root, args.source)
    report = stats(ds, by=args.by, top=args.top)
    text = to_markdown(report)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    if args.chart:
        plot_first_words(report, args.chart)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else text)
    return 0
