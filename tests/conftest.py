"""Shared fixtures. Tests never use the network; real third-party data is in tests/data."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The package's cache (file hashes, cached tiny models) goes to a folder of this test session,
# never the user's ~/.cache: tests must neither read a model a user built nor leave theirs.
_CACHE = tempfile.mkdtemp(prefix="vitcurate-test-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ["HF_VITCURATE_CACHE"] = _CACHE

REAL = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of small real data written by others, with their licenses (tests/data/README.md)."""
    return REAL


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it).

    Fixed ports collide when two test suites run on one host; a port the OS hands out
    is free at the time. A server that can bind port 0 itself should do that instead.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    """A free TCP port, e.g. for ``accelerate launch --main_process_port``."""
    return free_tcp_port()


# --- models: a tiny checkpoint built once per session (hf_vitcurate.models) -----------------


@pytest.fixture(scope="session")
def toy_vit():
    """32 canonical rows (color questions about a square; a text-only and a two-turn row)."""
    from hf_vitcurate.testing import toy_dataset

    return toy_dataset(32)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, toy_vit) -> str:
    """A tiny LLaVA checkpoint folder (random weights, tokenizer trained on ``toy_vit``), in ~1 s.

    Load it like any checkpoint: ``AutoModelForImageTextToText.from_pretrained(path)``.
    Tests that write must copy it or write elsewhere (it is shared by the session).
    """
    from hf_vitcurate.testing import TOY_ARCHITECTURE, tiny_checkpoint

    return tiny_checkpoint(toy_vit, output_dir=tmp_path_factory.mktemp("tiny") / "base", architecture=TOY_ARCHITECTURE)


@pytest.fixture
def crash_after_step(monkeypatch):
    """Make ``models.training`` save step ``n``'s state, then raise KeyboardInterrupt (a kill).

    Call ``crash_after_step(n)`` before a ``train`` that should die; call the returned ``restore()``
    (or nothing: the fixture undoes it at the end of the test) before the run that resumes.

        restore = crash_after_step(1)
        with pytest.raises(KeyboardInterrupt):
            train(ds, model=path, output_dir=out, max_steps=2, save_steps=1)
        restore()
        train(ds, model=path, output_dir=out, max_steps=2, save_steps=1)  # resumes from step 1
    """
    from hf_vitcurate.models import training

    real_save = training._save_state

    def arm(n: int):
        def save_then_crash(accelerator, out_dir, step, *args):
            real_save(accelerator, out_dir, step, *args)
            if step == n:
                raise KeyboardInterrupt(f"simulated crash after step {n}")

        monkeypatch.setattr(training, "_save_state", save_then_crash)
        return lambda: monkeypatch.setattr(training, "_save_state", real_save)

    return arm
