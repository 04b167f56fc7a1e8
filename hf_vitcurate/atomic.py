"""JSON files that a kill never leaves half-written: write through a temporary file and a rename.

State files (``train_log.json``, a step's ``trainer_state.json``, a cache entry's
``identity.json``, the file-hash cache) are read by the next run to decide what to reuse.
:func:`write_json` writes a temporary file beside the target and renames it into place
(``os.replace``, atomic on one filesystem), so a reader sees the old file or the new one,
never a truncated one; :func:`read_json` treats a missing, unreadable or non-object file
as absent (``None``), which is what a write cut short before the rename leaves.
(huggingface_hub, datasets and filelock have no such public helper; each keeps its own.)

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "state.json")
    >>> read_json(path) is None
    True
    >>> write_json(path, {"step": 3})
    >>> read_json(path)
    {'step': 3}
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping
from typing import Any


def write_json(path: str | os.PathLike, value: Mapping[str, Any], *, indent: int | None = None) -> None:
    """Write ``value`` as JSON to ``path`` through ``<path>.<pid>.<thread>.tmp`` and a rename.

    The temporary name is private to the process and thread, so two writers never share one;
    the last rename wins. Values JSON cannot encode are written as ``str``. An error (a
    read-only folder) removes the temporary file and is raised.
    """
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=indent, default=str)
        os.replace(tmp, path)
    except BaseException:  # a kill (KeyboardInterrupt) too: leave no temporary file behind
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def read_json(path: str | os.PathLike) -> dict | None:
    """The JSON object in ``path``; ``None`` when it is missing, unreadable or not an object.

    >>> read_json("/no/such/file.json") is None
    True
    """
    try:
        with open(os.fspath(path), encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError):  # ValueError: a file cut short (only writers that bypass write_json)
        return None
    return value if isinstance(value, dict) else None
