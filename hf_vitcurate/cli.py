"""``vitcurate``: the command line, one subcommand per stage, mirroring the Python API.

Each subcommand lives in ``hf_vitcurate/commands/<name>.py`` and exposes
``register(subparsers)``; this file only assembles them, so adding a stage means adding
one module and one name to :data:`COMMANDS` (the module's name; the command spells ``_`` as
``-``). ``vitcurate score STAGE`` and ``vitcurate select METHOD`` hold one subcommand per
stage and per selection; ``svit``, ``revolion`` and ``engine`` group a paper's steps.

Every command takes its input rows first and options as flags named like the Python
keyword arguments (``work_dir`` is ``--work-dir``), with the Python defaults, and ends
with a JSON summary on stdout; ``-q`` leaves only that summary (and warnings).

Example:
    $ vitcurate validate pool.jsonl --output kept.jsonl --rejected rejected.jsonl
    $ vitcurate -q score leakage kept.jsonl --output tagged/
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from . import __version__
from .errors import VitCurateError

# Order is the order shown in ``vitcurate --help``.
COMMANDS = [
    "demo",
    "convert",
    "validate",
    "stats",
    "train",
    "evaluate",
    "score",
    "select",
    "svit",
    "revolion",
    "engine",
    "publish",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitcurate",
        description="Curate visual instruction tuning data: score, select, publish.",
    )
    parser.add_argument("--version", action="version", version=f"hf_vitcurate {__version__}")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    loud.add_argument("-q", "--quiet", action="store_true", help="warnings and the closing summary only; no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    previous = os.environ.get("HF_VITCURATE_QUIET")
    if args.quiet:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
        os.environ["HF_VITCURATE_QUIET"] = "1"  # the package's own bars read it (progress.py)
    try:
        return int(args.func(args) or 0)
    except VitCurateError as err:
        # Errors about the user's data or settings: one clear line, no traceback.
        print(f"vitcurate {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        if args.quiet:  # main() may run inside a longer process (tests, notebooks): leave it as found
            if previous is None:
                os.environ.pop("HF_VITCURATE_QUIET", None)
            else:
                os.environ["HF_VITCURATE_QUIET"] = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
