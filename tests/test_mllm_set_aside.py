"""MLLM-Selector's manifest counts set-aside rows per kind of reason, not per reason text."""

from __future__ import annotations

import io

import numpy as np

RECIPE = {"max_steps": 1, "batch_size": 4, "warmup_ratio": 0.0, "progress": False}


def test_set_aside_is_counted_per_kind_of_reason(tiny_model_path, toy_vit, tmp_path):
    from datasets import Dataset
    from PIL import Image

    from hf_vitcurate.select import mllm_selector

    png = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(png, format="PNG")
    bad = [b"junk bytes", png.getvalue()[:60]]  # unidentified; truncated (the reason quotes PIL's message)
    rows = toy_vit.select(range(16)).to_dict()
    seed_row = int(np.random.default_rng(0).choice(16, size=1, replace=False)[0])  # f_seed trains on it: kept good
    for i in range(8, 16):
        if rows["images"][i] and i != seed_row:
            rows["images"][i] = [{"bytes": bad[i % 2], "path": None}]
    pool = Dataset.from_dict(rows, features=toy_vit.features)
    result = mllm_selector(pool, n=4, n_seed=1, k=4, model=tiny_model_path, work_dir=tmp_path / "w", recipe=RECIPE,
                           batch_size=16, dtype="float32", max_length=128)
    reasons = result.set_aside["reject_reason"]
    assert len(set(reasons)) > 1 and all(r.startswith("image_error: ") for r in reasons)  # the texts differ
    assert result.manifest["set_aside"] == {"image_error": len(reasons)} == result.manifest["params"]["set_aside"]
