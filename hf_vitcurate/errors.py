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
    """A local file or folder the user named does not exist ("no such file or folder")."""


class RunError(VitCurateError, RuntimeError):
    """A run cannot go on as asked (unfinished chunks, inconsistent state); the message says what to do."""


class StaleStateError(RunError):
    """A ``work_dir`` or ``output_dir`` holds results of other inputs (model, data or parameters).

    The message says what changed; reusing the old result would be wrong, so the run stops
    unless told to start over (``restart=True``) or given another folder.
    """


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
