"""Errors raised by hf_vitcurate.

Every error that concerns one row names the row id, the field and the problem, so a
user can find the row in their source file without a debugger.
"""

from __future__ import annotations


class VitCurateError(Exception):
    """Base class of the package's own errors."""


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
