"""Toy pools for model-stage tests: one picture per row and the question "What colour is it?"."""

from __future__ import annotations

from datasets import Dataset

from hf_vitcurate import FEATURES


def colour_rows(images: list[bytes], answers: list[str]) -> Dataset:
    """Canonical rows ``row-<i>``: image ``images[i]`` (encoded bytes), the colour question, ``answers[i]``."""
    n = len(images)
    return Dataset.from_dict({
        "id": [f"row-{i}" for i in range(n)],
        "images": [[{"bytes": b, "path": None}] for b in images],
        "conversations": [[{"from": "human", "value": "<image>\nWhat colour is it?"}, {"from": "gpt", "value": a}]
                          for a in answers],
        "source": ["toy"] * n,
        "task": ["conversation"] * n,
    }, features=FEATURES)
