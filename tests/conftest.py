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
