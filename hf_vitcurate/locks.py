"""One process at a time in a folder: a non-blocking lock that names its holder.

:func:`hold` takes an OS lock (``filelock``, ``flock`` on Unix) on ``<folder>/.lock`` and
writes who holds it (PID, host, start time, what it does) into ``<folder>/.lock.json``.
A second process gets :class:`~hf_vitcurate.errors.LockedError` at once, naming the holder;
it never waits, because a second run that waits would silently redo or interleave the
first one's work. The OS drops the lock when its holder dies (even by SIGKILL), so a
dead holder never leaves a stale lock: the next run takes it and overwrites the old
``.lock.json`` (logged). A holder may remove the folder before it lets go (the model cache
removes a key's lock folder once its build ends): whoever had opened the old lock file then
locks it in vain, sees that it is no longer the file at the path, and locks the new one. Used for a run's ``work_dir`` (:mod:`hf_vitcurate.distributed`)
and a local repo folder while publishing.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with hold(folder, what="scoring"):
    ...     holder(folder)["what"]
    'scoring'
    >>> holder(folder) is None   # released
    True
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

from .atomic import read_json, write_json
from .errors import LockedError

logger = logging.getLogger(__name__)

LOCK = ".lock"
INFO = ".lock.json"
# Tries to lock the file at the path when its folder is removed under us (see _locks_the_path).
RETRIES = 20


def holder(folder: str | os.PathLike) -> dict[str, Any] | None:
    """What ``<folder>/.lock.json`` says about the holder (None when nobody wrote one or it is unreadable).

    The file may outlive a killed holder; only a failed :func:`hold` proves the lock is held.
    """
    return read_json(os.path.join(os.fspath(folder), INFO))


def _locks_the_path(lock, path: str) -> bool:
    """Whether the file ``lock`` holds is still the one at ``path``.

    A lock folder may be removed by its holder (the model cache removes a key's lock folder
    once a build ends): a process that opened the old lock file before the removal gets its
    lock once the holder lets go, on a file nobody else will ever open, while a newcomer
    locks a new file at the same path. Comparing the locked file with the path tells them
    apart. True when this ``filelock`` keeps no descriptor to compare (a soft lock).
    """
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    if not isinstance(fd, int):
        return True
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _acquire(folder: str):
    """The acquired ``FileLock`` of ``<folder>/.lock``, on the file now at that path; LockedError if held."""
    from filelock import FileLock, Timeout

    path = os.path.join(folder, LOCK)
    for _ in range(RETRIES):
        os.makedirs(folder, exist_ok=True)
        lock = FileLock(path, timeout=0, thread_local=False)
        try:
            lock.acquire()
        except FileNotFoundError:  # the folder was removed between makedirs and the lock's open: again
            continue
        except Timeout:
            # The holder writes its record just after locking: give it a moment to appear.
            info = holder(folder)
            for _ in range(20):
                if info:
                    break
                time.sleep(0.05)
                info = holder(folder)
            raise LockedError(_describe(folder, info)) from None
        if _locks_the_path(lock, path):
            return lock
        lock.release()  # a file its last holder removed: lock the one at the path now
    raise LockedError(f"{folder} was removed and made again {RETRIES} times while locking it: "
                      "another process is using it; try again")


def _describe(folder: str, info: dict[str, Any] | None) -> str:
    if not info:
        return f"{folder} is in use by another process: wait for it or stop it"
    where = "" if info.get("host") == socket.gethostname() else f" on {info.get('host')}"
    doing = f", {info['what']}" if info.get("what") else ""
    return (f"{folder} is in use by process {info.get('pid')}{where} (started {info.get('started')}{doing}): "
            "wait for it or stop it")


@contextlib.contextmanager
def hold(folder: str | os.PathLike, *, what: str) -> Iterator[dict[str, Any]]:
    """Hold ``folder``'s lock for the block; :class:`LockedError` at once if another process holds it.

    ``what`` says what the holder does (shown to whoever is refused). The folder is
    created if missing. Yields the holder record written to ``.lock.json``; the record is
    removed on release. Not re-entrant: a second ``hold`` on the same folder, even in the
    same process, is refused (two runs in one folder are a mistake wherever they come from).
    """
    folder = os.fspath(folder)
    lock = _acquire(folder)
    try:
        old = holder(folder)
        if old:  # the OS lock was free, so its last holder died without cleaning up
            logger.info("%s: lock of process %s (started %s) was left by a process that ended; taken over",
                        folder, old.get("pid"), old.get("started"))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        write_json(os.path.join(folder, INFO), info)
        try:
            yield info
        finally:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, INFO))
    finally:
        lock.release()
