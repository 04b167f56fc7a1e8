"""Fine-tunes through the model cache (hf_vitcurate.models.cache): reused only for the very same inputs.

REVO-LION's per-source models and MLLM-Selector's seed model are cached by default; a run into
a new work_dir copies them instead of training. The key must hold everything that decides the
weights: these tests change one input at a time and require a new training.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

RECIPE = {"max_steps": 1, "batch_size": 4, "warmup_ratio": 0.0, "progress": False}
# A changed value for every Recipe field that is not neutral: a new field must be added here (and so be keyed).
CHANGED = {"train_parts": ("language",), "learning_rate": 1e-3, "part_lr": {"vision": 1e-6}, "epochs": 2.0,
           "max_steps": 3, "batch_size": 8, "grad_accum": 2, "warmup_ratio": 0.1, "lr_schedule": "linear",
           "min_lr_ratio": 0.1, "weight_decay": 0.1, "adam_betas": (0.8, 0.99), "max_grad_norm": None,
           "max_length": 64, "group_by_length": False, "seed": 1, "mixed_precision": "bf16", "dtype": "float32",
           "gradient_checkpointing": True}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder with the cache switched on."""
    monkeypatch.setenv("HF_VITCURATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_VITCURATE_TINY_CACHE", raising=False)
    return tmp_path / "cache" / "tiny_models"


def _key(ds, model, recipe):
    from hf_vitcurate.models.cache import train_key
    from hf_vitcurate.models.training import train_identity

    return train_key(train_identity(ds, model=model, recipe=recipe))


def _edit_first_answer(ds):
    def edit(row, i):
        if i == 0:
            row["conversations"] = [dict(t, value=t["value"] + "!") if t["from"] == "gpt" else t
                                    for t in row["conversations"]]
        return row

    return ds.map(edit, with_indices=True)


def test_the_key_changes_with_every_recipe_field_the_rows_the_model_and_the_code(tiny_model_path, toy_vit,
                                                                                 tmp_path, monkeypatch):
    from hf_vitcurate.models import cache as model_cache
    from hf_vitcurate.models.recipes import NEUTRAL_FIELDS, Recipe

    rows = toy_vit.select(range(8))
    base = _key(rows, tiny_model_path, RECIPE)
    assert set(CHANGED) | set(NEUTRAL_FIELDS) == {f.name for f in dataclasses.fields(Recipe)}
    for name, value in CHANGED.items():
        assert _key(rows, tiny_model_path, {**RECIPE, name: value}) != base, f"recipe field {name} is not keyed"
    for name in NEUTRAL_FIELDS:  # how a run is watched or how fast it goes: the same model
        value = {"progress": True, "log_steps": 3, "save_steps": 7, "num_threads": 1, "num_workers": 1}[name]
        assert _key(rows, tiny_model_path, {**RECIPE, name: value}) == base, name
    assert _key(_edit_first_answer(rows), tiny_model_path, RECIPE) != base  # one row's text
    swapped = rows.select([1, 0] + list(range(2, 8)))
    assert _key(swapped, tiny_model_path, RECIPE) != base  # the order of the rows
    other = shutil.copytree(tiny_model_path, tmp_path / "other-base")
    (other / "config.json").write_text((other / "config.json").read_text() + "\n")
    assert _key(rows, other, RECIPE) != base  # another base model
    assert _key(rows.remove_columns(["id"]), tiny_model_path, RECIPE) == base  # columns training never reads
    monkeypatch.setattr(model_cache, "code_version", lambda: {"source": "changed"})
    assert _key(rows, tiny_model_path, RECIPE) != base  # another version of the training code


def test_a_fine_tune_is_trained_once_and_never_returned_for_other_inputs(cache, tiny_model_path, toy_vit, tmp_path):
    from safetensors.torch import load_file

    from hf_vitcurate.models.cache import train_or_reuse

    rows = toy_vit.select(range(8))

    def run(name, ds=rows, model=tiny_model_path, **recipe):
        return train_or_reuse(ds, model=model, output_dir=tmp_path / name, **{**RECIPE, **recipe})[1]

    assert run("a") == "trained" and run("a") == "found" and run("b") == "cached"
    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("a", "b"))
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert run("row", ds=_edit_first_answer(rows)) == "trained"
    assert run("lr", learning_rate=1e-3) == "trained"
    other = shutil.copytree(tiny_model_path, tmp_path / "other-base")
    (other / "config.json").write_text((other / "config.json").read_text() + "\n")
    assert run("model", model=other) == "trained"
    assert run("off", ds=rows, model=tiny_model_path) == "cached"
    assert train_or_reuse(rows, model=tiny_model_path, output_dir=tmp_path / "uncached", cache=False,
                          **RECIPE)[1] == "trained"
    assert not (cache / "locks").exists() or not list((cache / "locks").iterdir())


def test_mllm_selector_in_a_new_work_dir_takes_f_seed_from_the_cache(cache, tiny_model_path, toy_vit, tmp_path,
                                                                     monkeypatch):
    from hf_vitcurate.models import training
    from hf_vitcurate.select import mllm_selector

    options = dict(n=8, n_seed=2, k=4, batch_size=16, dtype="float32", max_length=128, recipe=RECIPE)
    first = mllm_selector(toy_vit, model=tiny_model_path, work_dir=tmp_path / "a", **options)
    def no_training(*args, **kwargs):
        raise AssertionError("f_seed trained although cached")

    monkeypatch.setattr(training, "_run", no_training)
    second = mllm_selector(toy_vit, model=tiny_model_path, work_dir=tmp_path / "b", **options)
    assert not first.manifest["f_seed_cached"] and second.manifest["f_seed_cached"]
    same = {k: v for k, v in first.manifest.items() if k not in ("f_seed", "f_seed_cached")}
    assert same == {k: v for k, v in second.manifest.items() if k not in ("f_seed", "f_seed_cached")}
    with pytest.raises(AssertionError, match="trained although cached"):  # cache=False: trained anew
        mllm_selector(toy_vit, model=tiny_model_path, work_dir=tmp_path / "c", cache=False, **options)


def test_revolion_in_a_new_work_dir_copies_its_models_from_the_cache(cache, tiny_model_path, toy_vit, tmp_path,
                                                                      monkeypatch):
    from hf_vitcurate.columns import numpy_column
    from hf_vitcurate.models import training
    from hf_vitcurate.select.revolion_driver import tune_cross_evaluate

    sources = {"a": toy_vit.select(range(4)), "b": toy_vit.select(range(4, 8))}

    def run(work, **options):
        return tune_cross_evaluate(sources, model=tiny_model_path, work_dir=tmp_path / work, recipe=RECIPE,
                                   max_new_tokens=2, batch_size=4, chunk_size=4, **options)

    first = run("one")
    assert first.manifest["trained"] == ["a", "b"] and first.manifest["cached"] == []

    def no_training(*args, **kwargs):
        raise AssertionError("trained although cached")

    monkeypatch.setattr(training, "_run", no_training)
    second = run("two")
    # The manifest says where the models came from; nothing else differs but the work_dir's paths.
    assert second.manifest["trained"] == ["a", "b"] and second.manifest["cached"] == ["a", "b"]
    np.testing.assert_array_equal(numpy_column(second.dataset, "sq"), numpy_column(first.dataset, "sq"))
    assert second.manifest["dq"] == first.manifest["dq"] and second.manifest["ids_sha256"] == first.manifest["ids_sha256"]
    with pytest.raises(AssertionError, match="trained although cached"):
        run("three", cache=False)


@pytest.mark.slow
def test_revolion_hashes_each_source_once(cache, tiny_model_path, toy_vit, tmp_path, monkeypatch):
    """Training and answering fingerprint each source's images and conversations: once per source, not per pair."""
    from hf_vitcurate import columns
    from hf_vitcurate.select.revolion_driver import tune_cross_evaluate

    sources = {k: toy_vit.select(range(3 * i, 3 * i + 3)) for i, k in enumerate("abc")}
    hashed = []
    real = columns.content_sha256

    def counting(ds, *args, **kwargs):
        hashed.append(tuple(ds.column_names))
        return real(ds, *args, **kwargs)

    monkeypatch.setattr(columns, "content_sha256", counting)
    tune_cross_evaluate(sources, model=tiny_model_path, work_dir=tmp_path / "w", recipe=RECIPE, max_new_tokens=2,
                        batch_size=4, chunk_size=4)
    assert hashed.count(("images", "conversations")) == 3  # one per source
    # A source that changed, even a view of the same buffers with its rows in another order, is another model
    # and other answers; the unchanged sources' models come from the cache.
    hashed.clear()
    view = {**sources, "a": sources["a"].select([2, 1, 0])}
    again = tune_cross_evaluate(view, model=tiny_model_path, work_dir=tmp_path / "w2", recipe=RECIPE,
                                max_new_tokens=2, batch_size=4, chunk_size=4)
    assert again.manifest["cached"] == ["b", "c"] and hashed.count(("images", "conversations")) == 3


def test_a_stage_s_chunks_are_computed_once_per_key(cache, tiny_model_path, toy_vit, tmp_path, monkeypatch):
    """cached_stage: a new work_dir with the same model, rows and options loads no model; any other input does."""
    import importlib

    from hf_vitcurate.columns import arrow_column
    from hf_vitcurate.models.cache import cached_stage

    generate_module = importlib.import_module("hf_vitcurate.stages.generate")
    generate = generate_module.generate

    rows = toy_vit.select(range(4))
    options = dict(max_new_tokens=2, batch_size=4, chunk_size=2, dtype="float32")
    first = cached_stage(generate, rows, model=tiny_model_path, work_dir=tmp_path / "a", **options)
    real = generate_module._load

    def no_load(*args, **kwargs):
        raise AssertionError("model loaded although cached")

    monkeypatch.setattr(generate_module, "_load", no_load)
    second = cached_stage(generate, rows, model=tiny_model_path, work_dir=tmp_path / "b", **options)
    assert arrow_column(second, "answer").to_pylist() == arrow_column(first, "answer").to_pylist()
    assert (tmp_path / "b").is_dir()  # the run's own folder holds the chunks (a later resume finds them there)
    other = shutil.copytree(tiny_model_path, tmp_path / "other-base")
    (other / "config.json").write_text((other / "config.json").read_text() + "\n")
    changed = {"row": dict(ds=_edit_first_answer(rows)), "option": dict(max_new_tokens=3),
               "model": dict(model=other), "off": dict(cache=False)}
    for what, change in changed.items():
        call = {"ds": rows, "model": tiny_model_path, **options, **change}
        with pytest.raises(AssertionError, match="loaded although cached"):
            cached_stage(generate, call.pop("ds"), work_dir=tmp_path / what, **call)
    monkeypatch.setattr(generate_module, "_load", real)
    monkeypatch.setenv("HF_VITCURATE_TINY_CACHE", "0")
    cached_stage(generate, rows, model=tiny_model_path, work_dir=tmp_path / "env", **options)
    # One entry: the failed builds above left no partial folder, and nothing is added with the cache off.
    assert len(list((cache / "stages").iterdir())) == 1


def test_selection_drivers_never_import_testing():
    """select/ caches its fine-tunes through models.cache; testing/ (tiny models for tests and the demo) stays above it."""
    import ast
    from pathlib import Path

    import hf_vitcurate

    for path in (Path(hf_vitcurate.__file__).parent / "select").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                relative = node.level >= 2 and module.startswith("testing")  # from ..testing
                assert not (module.startswith("hf_vitcurate.testing") or relative), f"{path.name} imports {module}"


def _with_image_files(ds, folder):
    """``ds`` with its images written to files and stored as paths (no bytes), as the LLaVA converter stores them."""
    from datasets import Dataset

    folder.mkdir()
    paths = []
    for i, row in enumerate(ds):
        paths.append([])
        for k, image in enumerate(row["images"]):
            image.save(folder / f"{i}-{k}.png")
            paths[-1].append(str(folder / f"{i}-{k}.png"))
    return Dataset.from_dict({**ds.remove_columns(["images"]).to_dict(), "images": paths}, features=ds.features)


def _edit_image(path):
    from PIL import Image

    image = Image.open(path).convert("RGB")
    image.putpixel((0, 0), tuple(255 - v for v in image.getpixel((0, 0))))
    image.save(path)


def test_an_image_edited_at_its_path_is_answered_anew(cache, tiny_model_path, toy_vit, tmp_path, monkeypatch):
    """Images stored as paths: the data fingerprint holds their paths only; the cache key also holds what the
    files are (size, mtime), so a fixed image is never answered from the cache (it was, before)."""
    import importlib

    generate_module = importlib.import_module("hf_vitcurate.stages.generate")
    from hf_vitcurate.models.cache import cached_stage

    rows = _with_image_files(toy_vit.select(range(2)), tmp_path / "images")
    options = dict(max_new_tokens=2, batch_size=2, chunk_size=2, dtype="float32")
    cached_stage(generate_module.generate, rows, model=tiny_model_path, work_dir=tmp_path / "a", **options)
    loads, real = [], generate_module._load
    monkeypatch.setattr(generate_module, "_load", lambda *a, **k: loads.append(1) or real(*a, **k))
    cached_stage(generate_module.generate, rows, model=tiny_model_path, work_dir=tmp_path / "b", **options)
    assert not loads  # the same files: answered from the cache
    _edit_image(rows[0]["images"][0].filename)
    cached_stage(generate_module.generate, rows, model=tiny_model_path, work_dir=tmp_path / "c", **options)
    assert loads  # a changed image: answered anew


def test_an_image_edited_at_its_path_is_trained_on_anew(cache, tiny_model_path, toy_vit, tmp_path):
    from hf_vitcurate.models.cache import train_or_reuse

    rows = _with_image_files(toy_vit.select(range(4)), tmp_path / "images")

    def run(name):
        return train_or_reuse(rows, model=tiny_model_path, output_dir=tmp_path / name, **RECIPE)[1]

    assert run("a") == "trained" and run("b") == "cached"
    _edit_image(rows[0]["images"][0].filename)
    assert run("c") == "trained"


def test_a_resume_after_an_image_was_edited_at_its_path_is_refused(tiny_model_path, toy_vit, tmp_path):
    """The same work_dir (generate's chunks) or output_dir (train) after an image file was fixed at its path
    holds results of other data: StaleStateError naming the files (they were reused)."""
    import importlib

    from hf_vitcurate.errors import StaleStateError
    from hf_vitcurate.models import training

    generate_module = importlib.import_module("hf_vitcurate.stages.generate")
    rows = _with_image_files(toy_vit.select(range(4)), tmp_path / "images")
    options = dict(model=tiny_model_path, max_new_tokens=2, batch_size=4, chunk_size=4, dtype="float32")
    generate_module.generate(rows, work_dir=tmp_path / "answers", **options)
    training.train(rows, model=tiny_model_path, output_dir=tmp_path / "ft", **RECIPE)
    _edit_image(rows[0]["images"][0].filename)
    with pytest.raises(StaleStateError, match="files"):
        generate_module.generate(rows, work_dir=tmp_path / "answers", **options)
    with pytest.raises(StaleStateError, match="files"):
        training.train(rows, model=tiny_model_path, output_dir=tmp_path / "ft", **RECIPE)
