"""Every error hf_vitcurate raises on purpose, under one base class.

Each class also derives from the standard exception it stands for (a bad option is also a
``ValueError``, a missing column also a ``KeyError``), so ``except ValueError`` keeps
working, while ``except VitCurateError`` (what the CLI does) catches every error about the
user's data, settings or state and prints it as one line. Errors about one row name the
row id, the field and the problem, so a user finds the row without a debugger.

Example:
    >>> try:
    ...     raise ConfigError("n must be positive, got -1")
    ... except ValueError as err:
    ...     print(type(err).__name__, isinstance(err, VitCurateError))
    ConfigError True
"""

from __future__ import annotations

import os


class VitCurateError(Exception):
    """Base class of the package's own errors."""


class ConfigError(VitCurateError, ValueError):
    """An option's value, or a combination of options, is not valid (the message names the option)."""


class MissingColumnError(VitCurateError, KeyError):
    """A step needs a column the dataset does not have (for example a score not computed yet).

    >>> str(MissingColumnError("no column 'necessity': run `vitcurate score necessity` first"))
    "no column 'necessity': run `vitcurate score necessity` first"
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotFoundError(VitCurateError, FileNotFoundError):
    """A local file or folder the user named does not exist ("no such file or folder").

    >>> str(NotFoundError("no such file or folder: runs/scored"))
    'no such file or folder: runs/scored'
    """

    def __str__(self) -> str:  # one argument: the message (OSError would add "[Errno ...]" for two)
        return str(self.args[0]) if self.args else ""


class RunError(VitCurateError, RuntimeError):
    """A run cannot go on as asked (unfinished chunks, inconsistent state); the message says what to do."""


class StaleStateError(RunError):
    """A ``work_dir`` or ``output_dir`` holds results of other inputs (model, data or parameters).

    The message says what changed; reusing the old result would be wrong, so the run stops
    unless told to start over (``restart=True``) or given another folder. ``changed`` holds
    what changed alone (``"params changed: learning_rate 0.001 -> 123"``), for callers that word
    the message their own way.
    """

    def __init__(self, message: str, changed: str = ""):
        super().__init__(message)
        self.changed = changed


class LockedError(RunError):
    """Another live process holds the lock of a work folder or a local repo folder."""


class BackendError(VitCurateError, RuntimeError):
    """A generation backend (an HTTP API, a local model) failed in a way retrying does not fix."""


class ValidationError(VitCurateError, ValueError):
    """A row does not follow the canonical schema (raised by ``validate(strict=True)``).

    Example:
        >>> err = ValidationError("row-7", "conversations", "last turn is not 'gpt'", code="last_not_gpt")
        >>> str(err)
        "row id='row-7' field='conversations': last turn is not 'gpt' [last_not_gpt]"
    """

    def __init__(self, row_id: str | None, field: str, problem: str, code: str = "invalid"):
        self.row_id = row_id
        self.field = field
        self.problem = problem
        self.code = code
        super().__init__(f"row id={row_id!r} field={field!r}: {problem} [{code}]")


class FormatError(VitCurateError, ValueError):
    """An input file cannot be read in the format it claims (names file, row and field)."""


class RowError(VitCurateError, ValueError):
    """One input record cannot be converted; ``field`` and ``code`` say where and why."""

    def __init__(self, field: str, code: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.code, self.problem = field, code, problem


class ParseError(VitCurateError, ValueError):
    """A whole generator output does not parse (``code`` is the reject reason)."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code


class ShortfallError(VitCurateError, ValueError):
    """A recipe cannot return the requested number of rows; the message says what is short.

    ``short`` maps what is short (a task name, ``"pool"``, ``"non-yes rows"``) to how many rows.
    """

    def __init__(self, message: str, short: dict[str, int]):
        self.short = dict(short)
        super().__init__(message)


class VersionExistsError(VitCurateError, FileExistsError):
    """A version (tag) is already published; versions are never overwritten."""


class WordNetMissingError(VitCurateError, LookupError):
    """WordNet could not be found; the message says how to install it."""


class MissingExtraError(VitCurateError, ImportError):
    """An optional dependency is missing; the message says which extra installs it."""

    def __init__(self, package: str, extra: str):
        super().__init__(
            f"{package!r} is required for this feature: pip install 'hf_vitcurate[{extra}]'"
        )


# What adds each score or tag column (the function, the command): a "missing column" error says it.
ADDED_BY = {
    "necessity": ("stages.necessity", "vitcurate score necessity"),
    "informativeness": ("stages.concepts", "vitcurate score concepts"),
    "yes_no": ("stages.yes_no", "vitcurate score yes-no"),
    "leakage": ("stages.leakage", "vitcurate score leakage"),
    "qa_short": ("stages.qa_count", "vitcurate score qa-count"),
    "domain": ("stages.taxonomy", "vitcurate score taxonomy"),
    "instruction_type": ("stages.taxonomy", "vitcurate score taxonomy"),
    "sq": ("select.tune_cross_evaluate", "vitcurate revolion cross"),
    "mq__": ("stages.mq", "vitcurate score mq"),
    "answer__": ("stages.generate", "vitcurate score generate"),
}


def missing_column(column: str, columns: list[str], *, what: str = "column", hint: str | None = None) -> MissingColumnError:
    """A :class:`MissingColumnError` naming ``column``, the columns there are, and what adds it.

    ``hint`` is what to do when :data:`ADDED_BY` knows nothing that adds ``column``.

    >>> str(missing_column("necessity", ["id", "conversations"], what="score column"))
    "score column 'necessity' not in the dataset (columns: id, conversations); run hf_vitcurate.stages.necessity (`vitcurate score necessity`) first"
    """
    adder = ADDED_BY.get(column) or next((v for k, v in ADDED_BY.items() if k.endswith("__") and column.startswith(k)), None)
    hint = f"run hf_vitcurate.{adder[0]} (`{adder[1]}`) first" if adder else hint or "add it first, or name another column"
    return MissingColumnError(f"{what} {column!r} not in the dataset (columns: {', '.join(columns)}); {hint}")


# Suffixes that make a name a local file, never a Hub repo id.
_FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".arrow", ".csv", ".tsv", ".txt", ".yaml", ".yml",
                  ".gz", ".bz2", ".xz", ".zst", ".tar", ".zip")


def first_line(err: BaseException) -> str:
    """The first line of ``err``'s message (its class name when it has none): an error quoted in one line.

    >>> first_line(OSError("404 Client Error\\nRequest ID: x")), first_line(KeyError())
    ('404 Client Error', 'KeyError')
    """
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def looks_local(path: str) -> bool:
    """True when ``path`` can only be a local file or folder, not a Hub repo id (``org/name``).

    A path starts with ``.``, ``/`` or ``~``, has no ``/`` or two or more, ends in a data
    file's suffix, or its first part is a local folder (``runs/scored`` where ``runs/``
    exists). A Hub repo id is ``org/name`` (the Hub's old ids without an org, such as
    ``squad``, read as local names: give ``rajpurkar/squad``).

    >>> looks_local("org/name"), looks_local("./pool"), looks_local("pool.jsonl"), looks_local("a/b/c"), looks_local("pool")
    (False, True, True, True, True)
    """
    if "://" in path:  # hf://, https://: a URL, not a path
        return False
    if path.startswith((".", "/", "~")) or (os.sep != "/" and os.sep in path) or path.count("/") != 1:
        return True
    if path.lower().endswith(_FILE_SUFFIXES):
        return True
    return "/" in path and os.path.isdir(path.split("/", 1)[0])


def check_path(path: str | None, *, flag: str | None = None, hub: bool = True) -> None:
    """Raise :class:`NotFoundError` ("no such file or folder: PATH") when a local ``path`` does not exist.

    ``hub=True``: a name that may be a Hub repo id (:func:`looks_local` is false) is left to
    the Hub. ``flag`` starts the message (``--core: no such file or folder: x``).

    >>> check_path("org/name")
    >>> check_path("./no/such/pool.jsonl", flag="--core")
    Traceback (most recent call last):
    ...
    hf_vitcurate.errors.NotFoundError: --core: no such file or folder: ./no/such/pool.jsonl
    """
    if path is None or os.path.exists(os.path.expanduser(path)) or (hub and not looks_local(path)):
        return
    raise NotFoundError(f"{flag + ': ' if flag else ''}no such file or folder: {path}")


def require(module: str, extra: str):
    """Import an optional module or raise :class:`MissingExtraError` naming the extra.

    Example:
        >>> json = require("json", "dev")
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(module, extra) from exc
