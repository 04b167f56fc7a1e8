"""Fixtures of the research tests (``python -m pytest research/tests`` from the repository root)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def toy_vit():
    """32 canonical rows (color questions about a square; a text-only and a two-turn row)."""
    from hf_vitcurate.testing import toy_dataset

    return toy_dataset(32)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
