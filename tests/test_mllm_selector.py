"""MLLM-Selector's work_dir: the seed model is reused only for the same pool, model and recipe (issue 19)."""

from __future__ import annotations

import shutil

import pytest

from hf_vitcurate.errors import StaleStateError
from hf_vitcurate.select import mllm_selector

RECIPE = {"max_steps": 1, "batch_size": 4, "warmup_ratio": 0.0, "progress": False}
OPTIONS = dict(n=8, n_seed=2, k=4, batch_size=16, dtype="float32", max_length=128)


def test_same_work_dir_never_reuses_a_stale_seed_model(tiny_model_path, toy_vit, tmp_path, monkeypatch):
    from hf_vitcurate.models import training

    work = tmp_path / "mllm"
    first = mllm_selector(toy_vit, model=tiny_model_path, work_dir=work, recipe=RECIPE, **OPTIONS)

    def no_training(*a, **k):
        raise AssertionError("the same inputs must reuse f_seed")

    monkeypatch.setattr(training, "_run", no_training)
    again = mllm_selector(toy_vit, model=tiny_model_path, work_dir=work, recipe=RECIPE, **OPTIONS)
    assert again.f_seed == first.f_seed and again.manifest["ids"] == first.manifest["ids"]

    hint = r"; use restart=True or another work_dir$"
    reordered = toy_vit.select(range(len(toy_vit) - 1, -1, -1))  # other seed rows are drawn
    with pytest.raises(StaleStateError, match=r"^work_dir .*f_seed.* data changed \(sha256:.*" + hint):
        mllm_selector(reordered, model=tiny_model_path, work_dir=work, recipe=RECIPE, **OPTIONS)
    with pytest.raises(StaleStateError, match=r"params changed: learning_rate 2e-05 -> 123" + hint):
        mllm_selector(toy_vit, model=tiny_model_path, work_dir=work, recipe={**RECIPE, "learning_rate": 123}, **OPTIONS)
    other = shutil.copytree(tiny_model_path, tmp_path / "other-base")
    (other / "config.json").write_text((other / "config.json").read_text() + "\n")
    with pytest.raises(StaleStateError, match=r"model changed \(sha256:.*" + hint):
        mllm_selector(toy_vit, model=other, work_dir=work, recipe=RECIPE, **OPTIONS)
    monkeypatch.undo()
    fresh = mllm_selector(reordered, model=tiny_model_path, work_dir=work, recipe=RECIPE, restart=True, **OPTIONS)
    assert fresh.manifest["seed_rows"]["ids_sha256"] != first.manifest["seed_rows"]["ids_sha256"]
