"""Shared fixtures. Tests never use the network; real third-party data comes from ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL = SHARED / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of small real data written by others (read-only)."""
    if not REAL.is_dir():
        pytest.skip("../shared/data/real is not beside this checkout")
    return REAL


# --- models: a tiny checkpoint built once per session (hf_vitcurate.models) -----------------


@pytest.fixture(scope="session")
def toy_vit():
    """32 canonical rows (color questions about a square; a text-only and a two-turn row)."""
    from hf_vitcurate.models.toy import toy_dataset

    return toy_dataset(32)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, toy_vit) -> str:
    """A tiny LLaVA checkpoint folder (random weights, tokenizer trained on ``toy_vit``), in ~1 s.

    Load it like any checkpoint: ``AutoModelForImageTextToText.from_pretrained(path)``.
    Tests that write must copy it or write elsewhere (it is shared by the session).
    """
    from hf_vitcurate.models import tiny_checkpoint
    from hf_vitcurate.models.toy import TOY_ARCHITECTURE

    return tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "base", toy_vit, architecture=TOY_ARCHITECTURE)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (still runs in CI)")
