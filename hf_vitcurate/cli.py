"""``vitcurate``: the command line, one subcommand per stage, mirroring the Python API.

Each subcommand lives in ``hf_vitcurate/commands/<name>.py`` and exposes
``register(subparsers)``; this file only assembles them, so adding a stage means adding
one module and one name to :data:`COMMANDS` (the module's name; the command spells ``_`` as
``-``). ``vitcurate score STAGE`` and ``vitcurate select METHOD`` hold one subcommand per
stage and per selection; ``svit``, ``revolion`` and ``engine`` group a paper's steps.

Every command takes its input rows first and options as flags named like the Python
keyword arguments (``work_dir`` is ``--work-dir``), with the Python defaults, and ends
with a JSON summary on stdout; ``-q`` leaves only that summary (and warnings).

Errors: every :class:`~hf_vitcurate.errors.VitCurateError` (and a usage error) is one line on
stderr, ``vitcurate CMD: error: ...``, exit status 2, with the Python option names spelled
as the subcommand's flags (:func:`spell_flags`); ``-v`` adds the traceback. Other exceptions
are bugs and keep their traceback.

Example:
    $ vitcurate validate pool.jsonl --output kept.jsonl --rejected rejected.jsonl
    $ vitcurate -q score leakage kept.jsonl --output tagged/
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import traceback

from . import __version__
from .errors import VitCurateError, check_path

# Order is the order shown in ``vitcurate --help``.
COMMANDS = [
    "demo",
    "curate",
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
    "space",
    "space_export",
]


class Parser(argparse.ArgumentParser):
    """``argparse``'s parser whose usage errors are one line naming the flag, exit code 2.

    argparse prints the whole usage before the error; here the error alone, with the
    subcommand, as every other error of the CLI.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Every (sub)command's parser records itself: argparse copies a chosen subparser's
        # defaults over its parent's, so ``args.command_parser`` ends as the innermost one
        # (subparsers are built with the parent's class, this one, unless told otherwise).
        self.set_defaults(command_parser=self)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vitcurate",
        description="Curate visual instruction tuning data: score, select, publish.",
    )
    parser.add_argument("--version", action="version", version=f"hf_vitcurate {__version__}")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level; errors show their traceback")
    loud.add_argument("-q", "--quiet", action="store_true", help="warnings and the closing summary only; no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


def chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)subcommand's parser that ``args`` came from (``vitcurate select nbgs``'s, say):
    the ``command_parser`` each :class:`Parser` sets as a default; ``parser`` for other parsers.

    >>> p = build_parser()
    >>> chosen(p, p.parse_args(["select", "nbgs", "pool/", "--n", "5", "--output", "o/"])).prog
    'vitcurate select nbgs'
    """
    return getattr(args, "command_parser", parser)


# A Python name, maybe in backquotes, then what follows it; a whole word: not inside another
# name, a flag, a quoted string or a path.
_NAME = re.compile(r"(?<![\w.'\"/-])(`?)([A-Za-z_]\w*)\1(=True\b|=False\b|=(?!=)| must\b|(?![\w'\"`-]))")
_ROW_REF = re.compile(r"\bid=\S+\s*$")  # "row id='r7' field='x'": a row's field, not --field


def spell_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with the Python names of ``parser``'s options spelled as their flags.

    ``per_task=True`` becomes ``--per-task`` (``=False`` its ``--no-`` flag), ``n=5``
    ``--n 5``, and a bare name with an underscore (``allow_short``) its flag; one-word names
    are changed only in ``name=`` form, in backquotes (```n```) or before "must" (``tau must
    be >= 0``): ``by``, ``column`` are also plain words. Only the options of this subcommand.

    Example:
        >>> p = Parser(prog="x"); _ = p.add_argument("--per-task", action=argparse.BooleanOptionalAction)
        >>> _ = p.add_argument("--n", type=int)
        >>> spell_flags("n=5 is too many with per_task=True; or set per_task", p)
        '--n 5 is too many with --per-task; or set --per-task'
        >>> spell_flags("n must be >= 0; row id='r1' field='n': null", p)
        "--n must be >= 0; row id='r1' field='n': null"
    """
    flags = {a.dest: [o for o in a.option_strings if o.startswith("--")] for a in parser._actions}
    flags = {dest: spelled for dest, spelled in flags.items() if spelled and dest != "help"}

    def spell(m: re.Match) -> str:
        quoted, name, after = m.group(1), m.group(2), m.group(3) or ""
        spelled = flags.get(name)
        if not spelled or not (quoted or after or "_" in name):
            return m.group(0)
        if after == "=True":
            return spelled[0]
        if after == "=False":
            return next((o for o in spelled if o.startswith("--no-")), m.group(0))
        if after == "=":
            if _ROW_REF.search(message[: m.start()]):
                return m.group(0)
            return spelled[0] + ("" if message[m.end() : m.end() + 1] in ("", " ", ",", ";", ")") else " ")  # "pass by=, or"
        return spelled[0] + after

    return _NAME.sub(spell, message)


def report(command: argparse.ArgumentParser, message: str, exc: BaseException | None = None) -> int:
    """Print an error as one line ``vitcurate CMD: error: ...`` (``exc``'s traceback first, for ``-v``); 2."""
    if exc is not None:
        traceback.print_exception(exc, file=sys.stderr)
    prefix = f"{command.prog}: error: "
    print(prefix + " ".join(spell_flags(message, command).split()), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: one line, exit 2 (Parser.error)
    command = chosen(parser, args)
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
        if any(a.dest == "input" and not a.option_strings for a in command._actions):
            check_path(args.input)  # a typo'd local path is "no such file or folder", not a bad Hub id
        return int(args.func(args) or 0)
    except VitCurateError as err:
        # Errors about the user's data or settings: one clear line, no traceback (-v shows it).
        # Anything else is a bug and keeps its traceback.
        return report(command, str(err), err if args.verbose else None)
    finally:
        if args.quiet:  # main() may run inside a longer process (tests, notebooks): leave it as found
            if previous is None:
                os.environ.pop("HF_VITCURATE_QUIET", None)
            else:
                os.environ["HF_VITCURATE_QUIET"] = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
