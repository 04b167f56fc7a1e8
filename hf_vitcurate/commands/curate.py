"""``vitcurate curate``: run a curation recipe (mirrors :func:`hf_vitcurate.curation.job.run_recipe`).

Example:
    $ vitcurate curate --print-recipe shapesworld > recipe.yaml     # the built-in recipe, commented
    $ vitcurate curate recipe.yaml --output vitcurate_out
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from .common import default_of, print_summary


def register(sub) -> None:
    from ..curation.job import run_recipe

    p = sub.add_parser("curate", help="run a recipe: every curated config in one Hub-layout repo, with its report")
    p.add_argument("recipe", nargs="?", metavar="RECIPE", help="a recipe YAML file (or a built-in name: shapesworld)")
    default = default_of(run_recipe, "output_dir")  # output_dir is --output, as everywhere
    p.add_argument("--output", default=default, help=f"output folder (default: {default})")
    p.add_argument("--work-dir", dest="work_dir", default=None,
                   help="models, answers and scores, reused by reruns (default: OUTPUT/work)")
    p.add_argument("--print-recipe", metavar="NAME", default=None,
                   help="print a built-in recipe (shapesworld) to copy and edit, and stop")
    p.set_defaults(func=run)


def closing(summary: dict[str, Any], output: str) -> dict[str, Any]:
    """Print the short table and the verdicts (not under ``-q``); return the closing JSON summary's fields."""
    from ..progress import quiet

    if not quiet():
        print("\n" + summary["table"])
        for line in summary["verdicts"]:
            print(f"- {line}")
    return {
        "output": output,
        "published_to": summary["published_to"],
        "rows_in": summary["rows_in"],
        "kept": summary["kept"],
        "rejected": summary["rejected"],
        "configs": {c: v["rows"] for c, v in summary["configs"].items()},
        "load_with": summary["load_with"],
        "rerun_with": summary["rerun_with"],
        "seconds": summary["seconds"],
    }


@contextlib.contextmanager
def one_line_per_stage(args):
    """Library bars and the stages' INFO logs off while the job runs (``-v`` keeps the logs): one line per stage.

    Restored afterwards, so that a caller of ``cli.main`` in the same process keeps its settings.
    """
    import logging

    from datasets.utils import logging as ds_logging
    from transformers.utils import logging as hf_logging

    package = logging.getLogger("hf_vitcurate")
    before = (ds_logging.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled(), package.level)
    ds_logging.disable_progress_bar()
    hf_logging.disable_progress_bar()
    if not getattr(args, "verbose", False):
        package.setLevel(logging.WARNING)
    try:
        yield
    finally:
        if before[0]:
            ds_logging.enable_progress_bar()
        if before[1]:
            hf_logging.enable_progress_bar()
        package.setLevel(before[2])


def run(args) -> int:
    from ..curation import builtin
    from ..curation.job import run_recipe
    from ..errors import ConfigError
    from ..progress import say

    if args.print_recipe:
        sys.stdout.write(builtin(args.print_recipe))
        return 0
    if not args.recipe:
        raise ConfigError("name a RECIPE file (vitcurate curate --print-recipe shapesworld prints one to start from)")
    with one_line_per_stage(args):
        summary = run_recipe(args.recipe, output_dir=args.output, work_dir=args.work_dir, say=say("vitcurate curate"))
    print_summary(closing(summary, args.output))
    return 0
