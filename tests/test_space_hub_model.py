"""A Hub model id given to the Space (a recipe's ``model.checkpoint``, a stage's model) is checked before a job starts.

Against the loopback Hub (tests/hub_server.py): a model that is not there, one without
``config.json``, one that runs its own code, and a Hub that fails are each one line naming
the checkpoint; a plain model passes, and only its ``config.json`` is fetched.
"""

from __future__ import annotations

import json
import os

import pytest

from hf_vitcurate.errors import ConfigError, NotFoundError, RunError
from hf_vitcurate.space import Limits, actions

PLAIN = json.dumps({"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"]}).encode()
CUSTOM = json.dumps({"model_type": "llava", "auto_map": {"AutoModel": "modeling_x.X"}}).encode()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    from hub_server import HubServer, point_clients_at

    with HubServer() as server:
        server.add_repo("me/plain", {"config.json": PLAIN, "model.safetensors": b"\0" * 64}, repo_type="model")
        server.add_repo("me/custom", {"config.json": CUSTOM, "modeling_x.py": b"class X: ..."}, repo_type="model")
        server.add_repo("me/weights-only", {"model.safetensors": b"\0" * 64}, repo_type="model")
        shard = b"\0" * (600 * 1024)  # two shards of 0.6 MB: 1.2 MB of weights in all
        server.add_repo("me/big", {"config.json": PLAIN, "model-00001-of-00002.safetensors": shard,
                                   "model-00002-of-00002.safetensors": shard, "README.md": b"x" * (2 * 1024 * 1024),
                                   "pytorch_model.bin": shard * 2, "original/consolidated.pth": shard * 3},
                        repo_type="model")
        point_clients_at(server.url, monkeypatch, str(tmp_path / "hf-cache"))
        yield server


@pytest.fixture
def limits(tmp_path):
    return Limits(work_dir=str(tmp_path / "space"))


def test_a_hub_model_is_checked_before_a_job_starts(hub, limits):
    limits.check_model("me/plain")
    assert ("GET", "resolve") in hub.requests and ("GET", "tree") not in hub.requests  # config.json only
    with pytest.raises(NotFoundError, match=r"^no checkpoint folder or Hub model me/nope \(a private model needs HF_TOKEN\)$"):
        limits.check_model("me/nope")
    with pytest.raises(NotFoundError, match="^the Hub model me/weights-only has no config.json; it is not a transformers"):
        limits.check_model("me/weights-only")
    with pytest.raises(ConfigError, match=r"^the checkpoint me/custom runs its own code \(auto_map in config.json\)"):
        limits.check_model("me/custom")
    Limits(work_dir=limits.work_dir, trust_remote_code=True).check_model("me/custom")
    with pytest.raises(NotFoundError, match="^no checkpoint folder at ./missing/folder$"):
        limits.check_model("./missing/folder")


def test_a_hub_that_fails_or_is_offline_is_one_line_naming_the_model(hub, limits, monkeypatch):
    import huggingface_hub.constants as hconst

    hub.fail("resolve", 403, skip=1)  # the HEAD passes, the download is refused
    with pytest.raises(RunError, match=r"^the Hub refused config.json of the model me/plain \(") as err:
        limits.check_model("me/plain")
    assert "\n" not in str(err.value)
    hub.fail("resolve", 403)  # the HEAD is refused (a 5xx ends the same, after retries that take 23 s)
    with pytest.raises(NotFoundError, match="^the Hub model me/plain could not be checked: the Hub is offline, unreachable"):
        limits.check_model("me/plain")
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", True)
    with pytest.raises(NotFoundError, match="^the Hub model me/plain could not be checked"):
        limits.check_model("me/plain")
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", False)
    limits.check_model("me/plain")  # now cached: offline reads the cache
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", True)
    limits.check_model("me/plain")


def test_a_recipe_naming_a_missing_hub_model_is_refused_before_the_recipe_runs(hub, limits):
    shapes = actions.load_shapesworld(n_images=4, limits=limits)
    recipe = actions.DEFAULT_RECIPE + "model: {checkpoint: me/nope}\n"
    with pytest.raises(NotFoundError, match="^model.checkpoint: no checkpoint folder or Hub model me/nope"):
        actions.run_recipe(shapes, recipe, limits=limits)
    assert not os.path.isdir(os.path.join(limits.work_dir, "recipes"))  # refused before anything ran
    with pytest.raises(ConfigError, match="^the checkpoint me/custom runs its own code"):
        actions.run_stage(shapes, "necessity", model="me/custom", limits=limits)
    assert not os.path.isdir(os.path.join(limits.work_dir, "runs"))


# An output that names its own model in its options, beside the model-free default outputs.
PICK = "  pick: {{method: mllm_selector, n: 2, options: {options}}}\n"


def test_every_checkpoint_a_recipe_names_is_checked_before_the_recipe_runs(hub, limits):
    """Not only model.checkpoint: an output's options, nested options and a step's options are checked, each named."""
    shapes = actions.load_shapesworld(n_images=4, limits=limits)
    refused = {
        "{train: {model: me/custom}}": (ConfigError,
                                        r"^outputs.pick.options.train.model: the checkpoint me/custom runs its own code"),
        "{train: {model: me/nope}}": (NotFoundError, r"^outputs.pick.options.train.model: no checkpoint folder or Hub "
                                                     r"model me/nope \(a private model needs HF_TOKEN\)$"),
        "{train: {model: me/weights-only}}": (NotFoundError,
                                              "^outputs.pick.options.train.model: the Hub model me/weights-only has no"),
        "{train: {model: ./missing/folder}}": (NotFoundError,
                                               "^outputs.pick.options.train.model: no checkpoint folder at ./missing"),
        "{train: {model: 3}}": (ConfigError,
                                r"^outputs.pick.options.train.model: expected a checkpoint \(a folder or Hub id\), got 3$"),
        # an output's own options.model is refused when the recipe is read (the recipe sets it)
        "{model: me/custom}": (ConfigError, r"^outputs.pick.options.model: set by the recipe \(model.checkpoint\)"),
    }
    for options, (kind, message) in refused.items():
        recipe = actions.DEFAULT_RECIPE + PICK.format(options=options)
        with pytest.raises(kind, match=message) as err:
            actions.run_recipe(shapes, recipe, limits=limits)
        assert "\n" not in str(err.value)
    assert ("GET", "resolve") in hub.requests  # the Hub ids were asked of the (loopback) Hub
    assert not os.path.isdir(os.path.join(limits.work_dir, "recipes"))  # refused before anything ran
    step = actions.DEFAULT_RECIPE + "  mix: {method: recommended, n: 2, steps: [{diversity: {model: me/custom}}]}\n"
    with pytest.raises(ConfigError, match=r"^outputs.mix.steps\[0\].diversity.model: the checkpoint me/custom"):
        actions.run_recipe(shapes, step, limits=limits)


def test_recipe_checkpoints_lists_each_with_its_key_path_and_leaves_tiny_out():
    import yaml

    from hf_vitcurate.curation.recipe import parse_recipe
    from hf_vitcurate.space.checkpoints import recipe_checkpoints

    text = actions.DEFAULT_RECIPE + PICK.format(options="{train: {model: me/plain, max_steps: 1}}") + (
        "  same: {method: mllm_selector, n: 2, options: {train: {model: tiny}}}\nmodel: {checkpoint: me/base}\n")
    assert recipe_checkpoints(parse_recipe(yaml.safe_load(text))) == [
        ("model.checkpoint", "me/base"), ("outputs.pick.options.train.model", "me/plain")]
    assert recipe_checkpoints(parse_recipe(yaml.safe_load(actions.DEFAULT_RECIPE))) == []


def test_a_recipe_option_naming_a_server_file_is_refused_before_the_recipe_runs(limits, tmp_path):
    """A visitor's recipe must not make the Space read its files (a stage's taxonomy or concept sets)."""
    shapes = actions.load_shapesworld(n_images=4, limits=limits)
    outputs = "outputs:\n  random: {method: random_subset, fraction: 0.25}\n"
    for stage, key, path in [("taxonomy", "taxonomy", "/etc/passwd"), ("concepts", "concept_sets", "../secrets.json"),
                             ("concepts", "concept_sets", "~/notes.txt")]:
        recipe = f"stages: [{{{stage}: {{{key}: '{path}'}}}}]\n" + outputs
        with pytest.raises(ConfigError, match=rf"^stages\[0\]\.{stage}\.{key}: names a file of the server") as err:
            actions.run_recipe(shapes, recipe, limits=limits)
        assert "\n" not in str(err.value)
    assert not os.path.isdir(os.path.join(limits.work_dir, "recipes"))  # refused before anything ran
    session, rows = actions.run_recipe(shapes, "stages: [concepts]\n" + outputs, limits=limits)  # names no file: runs
    assert rows


def test_a_hub_model_larger_than_the_limit_is_refused_before_its_weights_are_downloaded(hub, tmp_path):
    small = Limits(work_dir=str(tmp_path / "space"), max_model_mb=1)
    with pytest.raises(ConfigError, match=r"^the checkpoint me/big has 1.2 MB of weights; this Space takes models up to "
                                          r"1 MB \(operator limit VITCURATE_SPACE_MAX_MODEL_MB\)$"):
        small.check_model("me/big")
    assert not [path for path, *_ in hub.served if path.endswith(".safetensors")]  # sized from the listing only
    # What from_pretrained loads: not the README, the .bin twin or original/ (3.5 MB more).
    Limits(work_dir=small.work_dir, max_model_mb=1.3).check_model("me/big")
    small.check_model("me/plain")
    hub.fail("info", 403)
    with pytest.raises(RunError, match=r"^the Hub did not list the files of the model me/plain \(") as err:
        small.check_model("me/plain")
    assert "\n" not in str(err.value)


def test_a_local_checkpoint_larger_than_the_limit_is_refused(tmp_path):
    folder = tmp_path / "ckpt"
    (folder / "checkpoint-2").mkdir(parents=True)
    (folder / "config.json").write_bytes(PLAIN)
    (folder / "pytorch_model.bin").write_bytes(b"\0" * (2 * 1024 * 1024))
    (folder / "notes.txt").write_bytes(b"x" * (5 * 1024 * 1024))
    (folder / "checkpoint-2" / "optimizer.pt").write_bytes(b"\0" * (5 * 1024 * 1024))  # a run's state, not loaded
    limits = Limits(work_dir=str(tmp_path / "space"), max_model_mb=1)
    with pytest.raises(ConfigError, match=f"^the checkpoint {folder} has 2.0 MB of weights; this Space takes models up to 1 MB"):
        limits.check_model(str(folder))
    Limits(work_dir=limits.work_dir, max_model_mb=3).check_model(str(folder))


def test_offline_a_hub_model_is_sized_by_the_weights_in_the_local_cache(hub, tmp_path, monkeypatch):
    """Offline the Hub cannot list the files: what the cache holds is what loading can use."""
    import huggingface_hub.constants as hconst
    from huggingface_hub import hf_hub_download

    small = Limits(work_dir=str(tmp_path / "space"), max_model_mb=1)
    small.check_model("me/plain")  # config.json cached; the weights not yet
    hub.fail("info", 403, times=None)  # asking the Hub for the listing offline would fail
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", True)
    Limits(work_dir=small.work_dir, max_model_mb=1).check_model("me/plain")
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", False)
    for name in ("config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        hf_hub_download("me/big", name)
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match="^the checkpoint me/big has 1.2 MB of weights"):
        small.check_model("me/big")
