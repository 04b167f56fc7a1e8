"""Publishing into one local folder is safe: one publish at a time, and saved versions never change.

Two processes publish v1 and v2 into the same ``local_dir`` at the same moment. Without
a lock, one version's data could end up under the other's tag with both calls reporting
success. Now the folder is locked while a publish writes, pushes and snapshots: the
second publish fails at once with ``LockedError`` (it never waits: see docs/publishing.md)
and leaves no tag; rerun, it publishes its own rows. A saved version is a copy, so editing
the working folder never changes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pyarrow.parquet as pq
from datasets import Dataset

from hf_vitcurate.errors import LockedError
from hf_vitcurate.hub import list_versions, publish, push
from hf_vitcurate.locks import hold
from hub_server import HubServer

SCRIPT = Path(__file__).parent / "scripts" / "publish_job.py"
TOKEN = "hf_RACE_token_for_the_loopback_hub_0123456789"


def _rows(tag: str, n: int) -> Dataset:
    return Dataset.from_dict({
        "id": [f"{tag}-{i:05d}" for i in range(n)],
        "conversations": [[{"from": "human", "value": f"question {i} of {tag}"},
                           {"from": "gpt", "value": f"answer {i} " * 20}] for i in range(n)],
        "source": [tag] * n,
        "task": ["conversation"] * n,
    })


def _ids(folder: Path) -> set[str]:
    """The ids in a repo folder's shards, read from the files themselves.

    Not ``load_dataset``: its cache would hand back what an earlier read of the same
    folder found (the very mix-up this file tests for would go unseen).
    """
    return {i for f in sorted((folder / "data").glob("*.parquet")) for i in pq.read_table(f, columns=["id"])["id"].to_pylist()}


def _version(folder: Path) -> str:
    return json.loads((folder / "curation.json").read_text())["version"]


def _race(tmp_path: Path, data: dict[str, str], local: Path, count: int, hub: HubServer) -> dict[str, dict]:
    """Start one job per prefix publishing and pushing ``count`` versions to ``hub``, release them together; every version's result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
           "HF_TOKEN": TOKEN}
    go = tmp_path / "go"
    jobs = {}
    for prefix, path in data.items():
        ready = tmp_path / f"ready-{prefix}"
        cmd = [sys.executable, str(SCRIPT), path, str(local), prefix, str(count), str(ready), str(go), hub.url]
        jobs[prefix] = (ready, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    deadline = time.monotonic() + 120
    while not all(r.exists() for r, _ in jobs.values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    out = {}
    for prefix, (_, proc) in jobs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
        out.update(json.loads(stdout.strip().splitlines()[-1]))
    return out


@pytest.mark.slow
def test_two_concurrent_publishers_each_keep_their_own_rows(tmp_path):
    """Two processes publish and push 6 versions each into one folder at once: no tag holds the other's rows.

    The push (to tests/hub_server.py's loopback Hub, which holds each commit 0.3 s, as an
    upload takes time) comes between writing the working tree and saving the version:
    without a lock, the other process rewrote the tree meanwhile and its rows were saved
    under this tag.
    """
    data, rows = {}, {}
    for prefix in ("a", "b"):
        _rows(prefix, 300).save_to_disk(str(tmp_path / prefix))
        data[prefix], rows[prefix] = str(tmp_path / prefix), {f"{prefix}-{i:05d}" for i in range(300)}
    local = tmp_path / "repo"
    with HubServer(token=TOKEN) as hub:
        hub.delay_s["commit"] = 0.3
        results = _race(tmp_path, data, local, 6, hub)
        ok = sorted(tag for tag, r in results.items() if r["ok"])
        assert sorted(hub.tags("me/race")) == ok  # each pushed version is tagged on the Hub, a refused one is not
    refused = {tag: r for tag, r in results.items() if not r["ok"]}
    # Every failure is the lock's refusal (nothing crashed), naming the holder; nothing is half written.
    assert all(r["error"] == "LockedError" and "in use by process" in r["message"] for r in refused.values()), refused
    assert ok and list_versions(str(local)) == ok
    for tag in ok:  # each saved version holds its own rows, all of them, and its own manifest
        assert _ids(local / "versions" / tag) == rows[tag[0]] and _version(local / "versions" / tag) == tag, tag
    assert _ids(local) == rows[_version(local)[0]]  # the working tree is one whole version
    # A refused publish, rerun, goes through with its own rows.
    for tag in sorted(refused)[:2]:
        publish(Dataset.load_from_disk(data[tag[0]]), "me/race", local_dir=str(local), version=tag)
        assert _ids(local / "versions" / tag) == rows[tag[0]]
    print(f"published {len(ok)}, refused {len(refused)} of {len(results)}")


def test_a_publish_into_a_locked_folder_fails_at_once_and_writes_nothing(tmp_path):
    local = tmp_path / "repo"
    with hold(local, what="another publish"):
        start = time.monotonic()
        with pytest.raises(LockedError, match="in use by process .*another publish"):
            publish(_rows("v1", 5), "me/x", local_dir=str(local), version="v1")
        assert time.monotonic() - start < 5
        with pytest.raises(LockedError):  # a push alone waits for no publish either (refused before any request)
            push(str(local), "me/x")
    assert list_versions(str(local)) == [] and not (local / "data").exists()
    publish(_rows("v1", 5), "me/x", local_dir=str(local), version="v1")  # the lock is released: it goes through
    assert _ids(local / "versions" / "v1") == {f"v1-{i:05d}" for i in range(5)}


def test_editing_the_working_folder_never_changes_a_saved_version(tmp_path):
    local = tmp_path / "repo"
    publish(_rows("v1", 20), "me/x", local_dir=str(local), version="v1")
    saved = {p.relative_to(local / "versions" / "v1"): p.read_bytes() for p in (local / "versions" / "v1").rglob("*")
             if p.is_file()}
    # Edit every file of the working tree in place (what an editor or `>>` does).
    for rel in saved:
        with open(local / rel, "r+b") as f:
            f.seek(0)
            f.write(b"EDITED")
    assert {rel: (local / "versions" / "v1" / rel).read_bytes() for rel in saved} == saved
    assert _ids(local / "versions" / "v1") == {f"v1-{i:05d}" for i in range(20)}
    # A second version replaces the working tree; v1 is still v1.
    publish(_rows("v2", 7), "me/x", local_dir=str(local), version="v2")
    assert _ids(local / "versions" / "v1") == {f"v1-{i:05d}" for i in range(20)}
    assert _ids(local / "versions" / "v2") == _ids(local) == {f"v2-{i:05d}" for i in range(7)}
