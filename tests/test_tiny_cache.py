"""hf_vitcurate.models.cache (re-exported as testing.cache): each tiny model and fine-tune is built once per identity."""

from __future__ import annotations

import json
import os

import pytest

# Small enough to build in a few seconds: 2 tower steps, 1 stage-1 step on 4 captions.
FAST = {"vision_steps": 2, "max_steps": 1, "batch_size": 4, "progress": False}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder (never the user's) with the cache switched on."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("HF_VITCURATE_CACHE", str(folder))
    monkeypatch.delenv("HF_VITCURATE_TINY_CACHE", raising=False)
    return folder / "tiny_models"


def _build(work_dir, pool_seed: int = 0, **options):
    from hf_vitcurate.testing import toy_dataset, train_tiny

    return train_tiny(toy_dataset(8, seed=pool_seed), work_dir=work_dir, captions=toy_dataset(4, seed=pool_seed),
                      **{**FAST, **options})


def _no_training(monkeypatch, *, tower: bool = True, stage_1: bool = True) -> None:
    """Make the training functions fail if entered: a cache hit must not train."""
    from hf_vitcurate.models import training
    from hf_vitcurate.testing import vision

    def refuse(*args, **kwargs):
        raise AssertionError("trained although the cache holds this model")

    if tower:
        monkeypatch.setattr(vision, "pretrain_vision_tower", refuse)
    if stage_1:
        monkeypatch.setattr(training, "pretrain", refuse)


def _entries(cache, kind: str) -> list[str]:
    folder = cache / kind
    return sorted(os.listdir(folder)) if folder.exists() else []


def _tower_state(path):
    from safetensors.torch import load_file

    weights = load_file(os.path.join(path, "model.safetensors"))
    return {k: v for k, v in weights.items() if "vision_tower" in k}


def test_second_run_reuses_the_cached_model_without_training(cache, tmp_path, monkeypatch, capsys):
    first = _build(tmp_path / "a")
    assert first == str(tmp_path / "a" / "f_pre")
    assert len(_entries(cache, "f_pre")) == 1 and len(_entries(cache, "towers")) == 1
    assert capsys.readouterr().err.count(f"models: cache in {cache}") == 1

    _no_training(monkeypatch)
    second = _build(tmp_path / "b")
    assert second == str(tmp_path / "b" / "f_pre")
    for name in ("model.safetensors", "train_log.json"):
        assert (tmp_path / "a" / "f_pre" / name).read_bytes() == (tmp_path / "b" / "f_pre" / name).read_bytes()
    assert (tmp_path / "b" / "tiny" / "vision_pretraining.json").exists()
    assert len(_entries(cache, "f_pre")) == 1
    # The work_dir is self-contained: a copy, not a link into the cache.
    assert os.stat(tmp_path / "b" / "f_pre" / "model.safetensors").st_nlink == 1
    assert "cache in" not in capsys.readouterr().err  # printed once per process
    # Same work_dir again: nothing to do.
    assert _build(tmp_path / "b") == second


def test_another_pool_or_recipe_gets_a_new_entry_and_reuses_the_tower(cache, tmp_path, monkeypatch):
    import torch

    _build(tmp_path / "a")
    _no_training(monkeypatch, stage_1=False)  # the tower is pool-independent: never pretrained again
    _build(tmp_path / "b", pool_seed=1)
    assert len(_entries(cache, "f_pre")) == 2 and len(_entries(cache, "towers")) == 1
    a, b = _tower_state(tmp_path / "a" / "tiny"), _tower_state(tmp_path / "b" / "tiny")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    a_log = json.loads((tmp_path / "a" / "f_pre" / "train_log.json").read_text())
    b_log = json.loads((tmp_path / "b" / "f_pre" / "train_log.json").read_text())
    assert a_log["identity"]["data"] != b_log["identity"]["data"]  # trained on its own captions

    _build(tmp_path / "c", max_steps=2)  # another stage-1 recipe
    assert len(_entries(cache, "f_pre")) == 3
    assert json.loads((tmp_path / "c" / "f_pre" / "train_log.json").read_text())["steps"] == 2


def test_a_killed_or_partial_entry_is_never_used(cache, tmp_path, monkeypatch):
    _build(tmp_path / "a")
    (key,) = _entries(cache, "f_pre")
    entry = cache / "f_pre" / key
    # A build cut short: no identity.json (written last), a broken weight file, a leftover partial folder.
    (entry / "identity.json").unlink()
    (entry / "f_pre" / "model.safetensors").write_bytes(b"cut short")
    (cache / "f_pre" / f"{key}.partial-999999").mkdir()

    _build(tmp_path / "b")
    assert _entries(cache, "f_pre") == [key]  # rebuilt in place; the leftover is gone
    assert (entry / "identity.json").exists()
    assert (tmp_path / "a" / "f_pre" / "model.safetensors").read_bytes() == \
        (tmp_path / "b" / "f_pre" / "model.safetensors").read_bytes()


def test_cache_off_by_option_or_environment(cache, tmp_path, monkeypatch):
    path = _build(tmp_path / "a", cache=False)
    assert path == str(tmp_path / "a" / "f_pre") and not cache.exists()
    monkeypatch.setenv("HF_VITCURATE_TINY_CACHE", "0")
    _build(tmp_path / "b")
    assert not cache.exists()
    assert (tmp_path / "a" / "f_pre" / "model.safetensors").read_bytes() == \
        (tmp_path / "b" / "f_pre" / "model.safetensors").read_bytes()


def test_cached_and_uncached_builds_are_the_same_model(cache, tmp_path):
    _build(tmp_path / "a", cache=False)
    _build(tmp_path / "warm", pool_seed=1)  # puts the tower in the cache from another pool
    _build(tmp_path / "b")  # this pool's model with the cached tower
    for part in ("tiny", "f_pre"):
        assert (tmp_path / "a" / part / "model.safetensors").read_bytes() == \
            (tmp_path / "b" / part / "model.safetensors").read_bytes(), part


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_work_dir_holding_another_model_is_refused(cache, tmp_path, use_cache):
    from hf_vitcurate.errors import StaleStateError

    _build(tmp_path / "a", cache=use_cache)
    assert json.loads((tmp_path / "a" / "tiny_model.json").read_text())["key"]
    with pytest.raises(StaleStateError, match="data changed"):
        _build(tmp_path / "a", pool_seed=1, cache=use_cache)
    with pytest.raises(StaleStateError, match="params changed: stage_1"):
        _build(tmp_path / "a", max_steps=2, cache=use_cache)


def test_a_run_waits_for_another_building_the_same_entry_then_reuses_it(cache, monkeypatch):
    """Concurrent runs: the second waits on the key's lock and uses the first's entry (no second build)."""
    import threading

    from hf_vitcurate.locks import hold
    from hf_vitcurate.models import cache as tiny_cache

    monkeypatch.setattr(tiny_cache.time, "sleep", lambda s: threading.Event().wait(0.05))
    built, got = [], []

    def build(folder):
        built.append(folder)

    with hold(cache / "locks" / "f_pre-k1", what="another run building"):  # as another process would
        waiter = threading.Thread(target=lambda: got.append(tiny_cache.cached("f_pre", "k1", {"params": {}}, build)))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and not got  # waiting, not building beside the holder
        entry = cache / "f_pre" / "k1"
        entry.mkdir(parents=True)
        tiny_cache.write_json(str(entry / "identity.json"), {"key": "k1"})  # the holder finished
    waiter.join(10)
    assert got == [str(entry)] and not built


def test_an_entry_appears_only_when_complete(cache):
    from hf_vitcurate.models import cache as tiny_cache

    seen = []

    def build(folder):
        seen.append(os.path.exists(cache / "f_pre" / "k2"))
        raise KeyboardInterrupt  # killed mid-build

    with pytest.raises(KeyboardInterrupt):
        tiny_cache.cached("f_pre", "k2", {"params": {}}, build)
    assert seen == [False] and not (cache / "f_pre" / "k2").exists()
    assert tiny_cache.cached("f_pre", "k2", {"params": {}}, lambda folder: None) == str(cache / "f_pre" / "k2")
    assert _entries(cache, "f_pre") == ["k2"]  # the killed build's partial folder is gone


def test_cached_train_trains_once_per_identity(cache, tmp_path, monkeypatch):
    from hf_vitcurate.models import training
    from hf_vitcurate.testing import toy_dataset
    from hf_vitcurate.testing.cache import cached_train

    f_pre = _build(tmp_path / "m")
    rows = toy_dataset(6)
    first = cached_train(rows, model=f_pre, output_dir=tmp_path / "ft1", max_steps=1, batch_size=4, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    real = training.train
    _no_training(monkeypatch)
    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("trained although cached"))
    second = cached_train(rows, model=f_pre, output_dir=tmp_path / "ft2", max_steps=1, batch_size=4, progress=False)
    assert (tmp_path / "ft1" / "model.safetensors").read_bytes() == (tmp_path / "ft2" / "model.safetensors").read_bytes()
    assert first != second and len(_entries(cache, "train")) == 1
    monkeypatch.setattr(training, "train", real)
    cached_train(rows, model=f_pre, output_dir=tmp_path / "ft3", max_steps=2, batch_size=4, progress=False)
    assert len(_entries(cache, "train")) == 2  # another recipe: another entry
    # A folder holding other files is never replaced: trained in place, the files kept.
    cached_train(rows, model=f_pre, output_dir=tmp_path / "other", max_steps=1, batch_size=4, progress=False)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine" and (tmp_path / "other" / "config.json").exists()


def test_the_code_version_covers_every_module_the_training_reads():
    """A change in any package module that training, the tower or the tiny checkpoint imports is a new model:
    each such module is hashed (a missing one would reuse a stale model), and every hashed file exists."""
    import ast

    import hf_vitcurate
    from hf_vitcurate.models.cache import CODE_FILES, code_version

    package = os.path.dirname(hf_vitcurate.__file__)
    assert all(os.path.isfile(os.path.join(package, name)) for name in CODE_FILES)
    # Modules that only report, lock or name errors never change the weights.
    neutral = {"errors.py", "progress.py", "distributed.py", "identity.py", "atomic.py"}
    for name in ("models/training.py", "models/loss.py", "testing/tiny.py", "testing/vision.py", "testing/recipes.py"):
        here = os.path.dirname(name)
        with open(os.path.join(package, name)) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = here.split("/")[:len(here.split("/")) - (node.level - 1)]  # from . / from ..
                target = "/".join(parts + (node.module or "").split("."))
                if os.path.isfile(os.path.join(package, target + ".py")) and target + ".py" not in neutral:
                    assert target + ".py" in CODE_FILES, f"{name} imports {target}.py, which the cache key misses"
    assert "tokenizers" in code_version()


def test_the_cache_folder_is_named_once_and_not_under_quiet(cache, monkeypatch, capsys):
    """The folder is printed on stderr once per process; ``vitcurate -q`` (HF_VITCURATE_QUIET=1) silences it."""
    from hf_vitcurate.models import cache as tiny_cache

    monkeypatch.setattr(tiny_cache, "_ANNOUNCED", set())
    monkeypatch.setenv("HF_VITCURATE_QUIET", "1")
    assert tiny_cache.cache_root() == str(cache)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(tiny_cache, "_ANNOUNCED", set())
    monkeypatch.delenv("HF_VITCURATE_QUIET")
    tiny_cache.cache_root(), tiny_cache.cache_root()
    assert capsys.readouterr().err.count(f"models: cache in {cache}") == 1


def test_the_lock_folder_goes_once_the_entry_is_built(cache):
    """A built entry leaves no lock folder behind; a run finding the entry complete leaves none either."""
    from hf_vitcurate.models import cache as tiny_cache

    assert tiny_cache.cached("f_pre", "k3", {"params": {}}, lambda folder: None) == str(cache / "f_pre" / "k3")
    assert not (cache / "locks" / "f_pre-k3").exists()
    # A run that opened the lock before its folder went finds the entry complete and never builds.
    assert tiny_cache.cached("f_pre", "k3", {"params": {}}, lambda folder: pytest.fail("built twice")) == \
        str(cache / "f_pre" / "k3")
    assert not (cache / "locks" / "f_pre-k3").exists()


def test_a_failed_build_leaves_no_lock_folder_and_no_partial_entry(cache):
    """A builder that raises: the cache root holds neither its lock folder nor a partial entry, and the next
    call builds afresh."""
    from hf_vitcurate.models import cache as tiny_cache

    def fail(folder):
        with open(os.path.join(folder, "half.bin"), "wb") as f:
            f.write(b"half")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        tiny_cache.cached("f_pre", "k4", {"params": {}}, fail)
    assert _entries(cache, "locks") == [] and _entries(cache, "f_pre") == []
    built = []
    assert tiny_cache.cached("f_pre", "k4", {"params": {}}, built.append) == str(cache / "f_pre" / "k4")
    assert len(built) == 1 and _entries(cache, "f_pre") == ["k4"] and _entries(cache, "locks") == []
