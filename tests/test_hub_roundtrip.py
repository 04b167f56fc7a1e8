"""Publish with ``push=True`` and read back with ``load_dataset``, through the real clients.

The Hub is unreachable here, so ``huggingface_hub`` and ``datasets`` talk to the Hub API
server of tests/hub_server.py on 127.0.0.1 (create, preupload, commit, refs, tags, tree,
resolve). What the server received is counted there: files per commit, commits, tags.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
from datasets import DatasetDict, load_dataset

from hf_vitcurate import load_vit
from hf_vitcurate.hub import list_versions, publish, push, upload
from hf_vitcurate.synthetic.sources import shapesworld
from hf_vitcurate.testing import toy_dataset
from hub_server import HubServer, point_clients_at

SECRET = "hf_ROUNDTRIP_secret_never_written_0123456789"
REPO = "me/curated"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The Hub API server with both clients pointed at it; the token comes from HF_TOKEN."""
    with HubServer(token=SECRET) as server:
        point_clients_at(server.url, monkeypatch, str(tmp_path / "hf-cache"))
        monkeypatch.setenv("HF_TOKEN", SECRET)
        monkeypatch.setattr(upload, "BACKOFF_S", 0.01)  # retries wait 10 ms, not seconds
        yield server


@pytest.fixture(scope="module")
def configs():
    """Two configs with images: the toy rows (train/test) and ShapesWorld's captions (train)."""
    toy = toy_dataset(12)
    shapes = shapesworld(4, seed=3, image_size=32, benchmark_images=0)
    return {
        "toy": DatasetDict({"train": toy.select(range(8)), "test": toy.select(range(8, 12))}),
        "shapes": DatasetDict({"train": shapes["captions"]}),
    }


def _same(loaded, original) -> None:
    """Same features, same rows, the same pixels in every image."""
    assert loaded.features == original.features
    assert loaded.remove_columns("images").to_dict() == original.remove_columns("images").to_dict()
    for a, b in zip(loaded["images"], original["images"]):
        assert [im.size for im in a] == [im.size for im in b]
        assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def _load(config, revision, tmp_path):
    return load_dataset(REPO, config, revision=revision, cache_dir=str(tmp_path / "ds-cache" / revision))


def test_every_config_loads_back_at_its_version_and_v1_stays(configs, hub, tmp_path, caplog):
    for name in ("huggingface_hub", "datasets", "hf_vitcurate"):
        caplog.set_level(logging.DEBUG, logger=name)
    out = str(tmp_path / "repo")
    publish(configs, REPO, local_dir=out, version="v1", push=True)
    for name, dd in configs.items():
        loaded = _load(name, "v1", tmp_path)
        assert sorted(loaded) == sorted(dd)
        for split in dd:
            _same(loaded[split], dd[split])
    v1_files = hub.files(REPO, "v1")

    # v2 drops a config and changes the other: v1 is still there, byte for byte, and loads.
    v2 = {"toy": DatasetDict({"train": configs["toy"]["train"].select(range(5))})}
    publish(v2, REPO, local_dir=out, version="v2", push=True)
    assert set(hub.tags(REPO)) == {"v1", "v2"} and list_versions(out) == ["v1", "v2"]
    assert hub.files(REPO, "v1") == v1_files
    assert not any(p.startswith("data/shapes/") for p in hub.files(REPO, "v2"))  # its stale shards went
    _same(_load("toy", "v2", tmp_path)["train"], v2["toy"]["train"])
    _same(_load("shapes", "v1", tmp_path)["train"], configs["shapes"]["train"])

    # The token reached the server (it refuses requests without it) and nothing else.
    assert "(authenticated: True)" in caplog.text and SECRET not in caplog.text
    for root, _, names in os.walk(tmp_path):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                assert SECRET.encode() not in f.read(), os.path.join(root, name)


def test_load_vit_reads_the_pushed_repo(configs, hub, tmp_path):
    publish({"toy": configs["toy"]}, REPO, local_dir=str(tmp_path / "repo"), version="v1", push=True)
    got = load_vit(REPO, name="toy", split="test", revision="v1", cache_dir=str(tmp_path / "ds-cache"))
    assert got["id"] == configs["toy"]["test"]["id"]


def test_cli_publish_push_then_load(configs, hub, tmp_path, capsys):
    from hf_vitcurate.cli import main

    configs["toy"].save_to_disk(str(tmp_path / "in"))
    argv = ["publish", str(tmp_path / "in"), "--repo-id", REPO, "--local-dir", str(tmp_path / "out"),
            "--configs", "toy", "--version", "v1", "--push"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pushed"] is True and summary["version"] == "v1"
    _same(_load("toy", "v1", tmp_path)["test"], configs["toy"]["test"])
    argv[argv.index("--local-dir") + 1] = str(tmp_path / "elsewhere")  # a fresh folder: the Hub's tag refuses it
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already has this tag on the Hub" in err and len(err.strip().splitlines()) == 1


def test_token_keyword_is_used_for_that_push_only(configs, hub, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.utils._auth._get_token_from_file", lambda: None)
    publish({"toy": configs["toy"]}, REPO, local_dir=str(tmp_path / "repo"), version="v1", push=True, token=SECRET)
    assert hub.tags(REPO) == {"v1": hub.repos[("datasets", REPO)].branches["main"]}
    for root, _, names in os.walk(tmp_path):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                assert SECRET.encode() not in f.read()


def test_the_repo_is_created_private_unless_asked(configs, hub, tmp_path):
    publish({"toy": configs["toy"]}, REPO, local_dir=str(tmp_path / "a"), push=True)
    publish({"toy": configs["toy"]}, "me/open", local_dir=str(tmp_path / "b"), push=True, private=False)
    assert hub.repos[("datasets", REPO)].private and not hub.repos[("datasets", "me/open")].private


def test_refused_commits_are_retried(configs, hub, tmp_path):
    for status in (412, 429, 503):  # another commit landed first, rate limit, server busy: one after the other
        hub.fail("commit", status)
    publish({"toy": configs["toy"]}, REPO, local_dir=str(tmp_path / "repo"), version="v1", push=True)
    assert hub.requests.count(("POST", "commit")) == 4 and "v1" in hub.tags(REPO)
    _same(_load("toy", "v1", tmp_path)["test"], configs["toy"]["test"])


def test_retry_after_is_honoured(configs, hub, tmp_path):
    hub.retry_after = "1"  # the server asks for a second; the backoff alone would wait 10 ms
    hub.fail("commit", 429)
    publish({"toy": configs["toy"]}, REPO, local_dir=str(tmp_path / "repo"), version="v1", push=True)
    first, second = [t for t, r in zip(hub.times, hub.requests) if r == ("POST", "commit")]
    assert second - first >= 1.0


def test_an_error_that_a_retry_cannot_mend_stops_the_push(configs, hub, tmp_path):
    from huggingface_hub.errors import HfHubHTTPError

    hub.fail("commit", 403)
    with pytest.raises(HfHubHTTPError):
        publish({"toy": configs["toy"]}, REPO, local_dir=str(tmp_path / "repo"), version="v1", push=True)
    assert hub.requests.count(("POST", "commit")) == 1 and hub.tags(REPO) == {}


def test_a_malformed_answer_is_raised_at_once_not_retried(configs, hub, tmp_path):
    """A resend would get the same bytes: only timeouts and broken connections are retried."""
    hub.fail("commit", "malformed", times=None)
    with pytest.raises(Exception, match="illegal status line") as err:  # noqa: PT011 - httpx's or httpx2's
        publish({"toy": configs["toy"]}, REPO, local_dir=str(tmp_path / "repo"), version="v1", push=True)
    assert err.typename == "RemoteProtocolError" and not upload._retryable(err.value)
    assert hub.requests.count(("POST", "commit")) == 1 and hub.tags(REPO) == {}


def test_a_commit_whose_answer_was_lost_is_not_made_twice(configs, hub, tmp_path, monkeypatch):
    monkeypatch.setattr(upload, "MAX_OPERATIONS_PER_COMMIT", 2)  # two shards, then README.md + curation.json
    hub.fail("commit", "drop_after", skip=1)  # the card's commit lands, the connection breaks before the answer
    out = str(tmp_path / "repo")
    publish({"toy": configs["toy"]}, REPO, local_dir=out, version="v1", push=True)
    assert hub.requests.count(("POST", "commit")) == 2  # the retry found every file there:
    assert hub.requests.count(("POST", "preupload")) == 2  # nothing was asked about, or sent, again
    assert len(hub.committed) == len(set(hub.committed)) == 4
    head = hub.repos[("datasets", REPO)].branches["main"]
    assert hub.tags(REPO) == {"v1": head} and "README.md" in hub.files(REPO, "v1")  # the tag is on the card's commit


def test_an_interrupted_push_resumes_with_the_rest(configs, hub, tmp_path, monkeypatch):
    """Commits of 50 files; the server drops every commit after the first; the rerun sends only the rest."""
    train = toy_dataset(64)
    tree = {"toy": DatasetDict({"train": train})}
    out = str(tmp_path / "repo")
    hub.page_size = 16  # the tree comes in pages, as the Hub's does past 1,000 entries
    hub.fail("commit", "drop", skip=1, times=None)
    with pytest.raises(Exception) as err:  # noqa: PT011 - whichever transport error the client raises
        publish(tree, REPO, local_dir=out, version="v1", push=True, max_shard_size=train._estimate_nbytes() // 56)
    assert upload._retryable(err.value) and "v1" not in hub.tags(REPO) and list_versions(out) == []
    files = _repo_files(out)
    assert len(files) > upload.MAX_OPERATIONS_PER_COMMIT + 2  # three commits: 50 shards, the other shards, the card
    first = list(hub.committed)
    assert len(first) == upload.MAX_OPERATIONS_PER_COMMIT and "README.md" not in first  # data first

    hub.clear_faults()
    commits_before, asked_before = hub.requests.count(("POST", "commit")), len(hub.preuploaded)
    push(out, REPO, version="v1")  # the same folder, pushed again: only what is missing goes
    resent = hub.committed[len(first):]
    assert sorted(resent) == sorted(set(files) - set(first))
    assert sorted(hub.preuploaded[asked_before:]) == sorted(resent)  # the first commit's files were not even asked about
    assert hub.requests.count(("POST", "commit")) - commits_before == 1  # 9 files: one commit
    assert sorted(p for p in hub.files(REPO, "v1") if p != ".gitattributes") == sorted(files)
    assert hub.requests.count(("GET", "tree")) > 2 * 3  # every listing read several pages
    _same(_load("toy", "v1", tmp_path)["train"], tree["toy"]["train"])


def _repo_files(out: str) -> list[str]:
    from hf_vitcurate.hub.layout import repo_files

    return repo_files(out)


# The main job, model-free (seconds on a CPU): a recipe's every config in one repo, pushed.
MAIN_JOB = {
    "sources": {"shapesworld": {"n_images": 12, "seed": 3}},
    "stages": ["concepts", "yes_no", "leakage", "taxonomy"],
    "outputs": {
        "svit_core": {"method": "svit_core", "fraction": 0.25, "options": {"allow_short": True}},
        "mminstruct_style": {"method": "mminstruct_style"},
    },
    "publish": {"repo_id": REPO, "push": True, "version": "v1"},
    "report": {"seeds": 2},
}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:core \\(diversity step\\)")  # a 12-image pool is short of a task or two
def test_the_main_job_pushes_every_config_of_its_repo(hub, tmp_path):
    from hf_vitcurate.curation.job import run_recipe

    summary = run_recipe(MAIN_JOB, output_dir=str(tmp_path / "out"))
    local = tmp_path / "out" / "hub"
    assert set(hub.tags(REPO)) == {"v1"} and "recipe.yaml" in hub.files(REPO, "v1")
    for config, entry in summary["configs"].items():
        remote = _load(config, "v1", tmp_path)
        assert {s: len(d) for s, d in remote.items()} == entry["splits"], config
        here = load_dataset(str(local), config, cache_dir=str(tmp_path / "local-cache"))
        for split in here:
            _same(remote[split], here[split])
