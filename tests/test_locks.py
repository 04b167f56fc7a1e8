"""locks.hold: a second holder is refused at once with the first one's PID; a killed holder leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hf_vitcurate.errors import LockedError, RunError
from hf_vitcurate.locks import hold, holder

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
HOLDER = "import sys, time\nfrom hf_vitcurate.locks import hold\nwith hold(sys.argv[1], what='test holder'):\n" \
         "    print('held', flush=True)\n    time.sleep(120)\n"


def start_holder(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], env=ENV, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_in_the_same_process_is_refused(tmp_path):
    with hold(tmp_path, what="first") as info:
        assert info["pid"] == os.getpid() and holder(tmp_path)["what"] == "first"
        with pytest.raises(LockedError, match="in use by process"):
            with hold(tmp_path, what="second"):
                pass
    assert holder(tmp_path) is None
    with hold(tmp_path, what="again"):  # released: free again
        pass


def test_other_process_is_named_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    proc = start_holder(tmp_path)
    try:
        t0 = time.perf_counter()
        with pytest.raises(RunError) as err:  # LockedError is a RunError (and a RuntimeError)
            with hold(tmp_path, what="second"):
                pass
        assert time.perf_counter() - t0 < 0.5  # non-blocking
        message = str(err.value)
        assert isinstance(err.value, LockedError) and "\n" not in message
        assert f"in use by process {proc.pid} (started " in message and "test holder" in message
        assert "wait for it or stop it" in message
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert holder(tmp_path)["pid"] == proc.pid  # its record outlives it ...
    with hold(tmp_path, what="after kill") as info:  # ... but the lock does not
        assert info["pid"] == os.getpid()


def test_a_lock_on_a_file_whose_folder_was_removed_is_taken_again(tmp_path, monkeypatch):
    """A holder may remove its lock folder (models.cache does): a process that opened the old lock file first
    gets a lock nobody else will see, so hold() checks the locked file is the one at the path and locks anew."""
    import shutil

    import filelock

    folder = tmp_path / "lock"
    real = filelock.FileLock.acquire
    locked = []

    def acquire_then_folder_removed(self, *args, **kwargs):
        got = real(self, *args, **kwargs)
        if not locked:  # as if the last holder removed the folder between our open and our lock
            shutil.rmtree(folder)
        locked.append(self)
        return got

    monkeypatch.setattr(filelock.FileLock, "acquire", acquire_then_folder_removed)
    with hold(folder, what="first"):
        assert len(locked) == 2 and holder(folder)["what"] == "first"
        with pytest.raises(LockedError, match="in use by process"):  # the file at the path is held: refused
            with hold(folder, what="second"):
                pass
