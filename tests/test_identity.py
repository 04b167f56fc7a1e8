"""hf_vitcurate.identity: model, data and parameter fingerprints, and what changed between two."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from datasets import Dataset

from hf_vitcurate import identity as ident
from hf_vitcurate.columns import content_sha256
from hf_vitcurate.errors import NotFoundError, StaleStateError


@pytest.fixture
def hash_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(ident.CACHE_ENV, str(folder))
    return folder / ident.HASH_CACHE


def _checkpoint(folder, weights: bytes, *, old: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llava"}))
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "train_log.json").write_text("{}")  # not part of the model
    if old:  # settled files (not just written) are the ones the hash cache keeps
        past = time.time() - 3600
        os.utime(folder / "model.safetensors", (past, past))
    return folder


def test_model_fingerprint_is_content_and_stable(tiny_model_path, tmp_path, hash_cache):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_path, copy)
    fp = ident.model_fingerprint(tiny_model_path)
    assert fp.startswith("sha256:") and fp == ident.model_fingerprint(tiny_model_path)
    assert ident.model_fingerprint(copy) == fp  # same content elsewhere: same model
    (copy / "train_log.json").write_text('{"complete": true}')  # not a model file
    assert ident.model_fingerprint(copy) == fp
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one byte of one weight, same size
    weights.write_bytes(bytes(data))
    assert ident.model_fingerprint(copy) != fp
    (copy / "chat_template.jinja").write_text("{{ messages }}")
    assert ident.model_fingerprint(copy) not in (fp, ident.model_fingerprint(tiny_model_path))


def test_big_weight_file_is_hashed_once(tmp_path, hash_cache, monkeypatch):
    folder = _checkpoint(tmp_path / "big", b"\x01" * (32 << 20))
    first = ident.model_fingerprint(folder)
    weights = str(os.path.realpath(folder / "model.safetensors"))
    assert weights in json.loads(hash_cache.read_text())["files"]
    opened: list[str] = []

    def recording_open(path, *args, **kwargs):  # the module's file reads, seen by path
        opened.append(os.path.realpath(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(ident, "open", recording_open, raising=False)
    assert ident.model_fingerprint(folder) == first
    assert weights not in opened  # the second fingerprint reads no weight byte
    monkeypatch.delattr(ident, "open")  # not undo(): that would also drop the hash_cache fixture's setting
    # Rewritten (new size and time): hashed again, never the cached value.
    (folder / "model.safetensors").write_bytes(b"\x02" * (32 << 20))
    assert ident.model_fingerprint(folder) != first
    # Deleted files leave the cache when it is next written.
    shutil.rmtree(folder)
    ident.model_fingerprint(_checkpoint(tmp_path / "other", b"\x03" * (2 << 20)))
    assert [os.path.basename(os.path.dirname(p)) for p in json.loads(hash_cache.read_text())["files"]] == ["other"]


def test_a_file_rewritten_in_place_with_its_size_and_mtime_put_back_is_hashed_again(tmp_path, hash_cache):
    """cp -p, rsync -t, tar x, touch -r: same path, size, mtime and inode, other bytes. The hash cache must not
    answer with the old bytes' hash (the ctime, which nobody can set back, tells the versions apart)."""
    folder = _checkpoint(tmp_path / "ckpt", b"\x01" * (2 << 20))
    weights = folder / "model.safetensors"
    first = ident.model_fingerprint(folder)
    assert str(os.path.realpath(weights)) in json.loads(hash_cache.read_text())["files"]  # cached
    before = os.stat(weights)
    time.sleep(0.05)  # past the clock tick of the first ctime
    with open(weights, "r+b") as f:  # in place: the same inode
        f.write(b"\x02")
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(weights)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert ident.model_fingerprint(folder) != first
    ident._MEMO.clear()  # another process: only hashes.json
    assert ident.model_fingerprint(folder) != first


def test_just_written_files_are_not_cached(tmp_path, hash_cache):
    """A file rewritten within one clock tick keeps size and mtime: only settled files are cached."""
    folder = _checkpoint(tmp_path / "fresh", b"\x01" * (2 << 20), old=False)
    ident.model_fingerprint(folder)
    assert not hash_cache.exists() or not json.loads(hash_cache.read_text())["files"]


def test_hash_cache_keeps_only_the_newest_entries(tmp_path, hash_cache, monkeypatch):
    monkeypatch.setattr(ident, "MAX_CACHE_ENTRIES", 2)
    files = [tmp_path / f"w{i}.safetensors" for i in range(3)]
    for i, path in enumerate(files):
        path.write_bytes(b"x")
        ident._save_cache(str(hash_cache), {str(path): [1, 2, 3, f"h{i}"]})
    assert list(json.loads(hash_cache.read_text())["files"]) == [str(p) for p in files[1:]]


def test_missing_model_and_hub_ids(tmp_path, monkeypatch, hash_cache):
    with pytest.raises(NotFoundError, match="no such file or folder"):
        ident.model_fingerprint(tmp_path / "no-such-folder")
    with pytest.raises(NotFoundError, match="no such file or folder"):
        ident.model_fingerprint("runs/typo")  # offline in tests, not in the cache either
    with pytest.raises(NotFoundError, match="no checkpoint"):
        ident.model_fingerprint(tmp_path)  # a folder, but no model in it
    # A Hub id resolves to the commit of its snapshot in the local Hugging Face cache (offline).
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    repo = hub / "models--org--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    assert ident.model_fingerprint("org/tiny") == f"org/tiny@{commit}"


def test_data_fingerprint_is_content_of_the_columns_read():
    a = Dataset.from_dict({"id": ["x", "y"], "conversations": ["q1", "q2"], "score": [1.0, 2.0]})
    same = a.select([0, 1])  # the same rows by another route: another datasets fingerprint
    assert a._fingerprint != same._fingerprint
    assert ident.data_fingerprint(a) == ident.data_fingerprint(same) == "sha256:" + content_sha256(a)
    other_score = a.remove_columns("score").add_column("score", [1.0, 3.0])
    assert ident.data_fingerprint(other_score, ["id", "conversations"]) == ident.data_fingerprint(a, ["id", "conversations"])
    assert ident.data_fingerprint(other_score) != ident.data_fingerprint(a)
    assert ident.data_fingerprint(a.select([1, 0])) != ident.data_fingerprint(a)  # order matters (training order)
    with pytest.raises(KeyError, match="images"):
        ident.data_fingerprint(a, ["images"])


def test_identity_key_and_what_changed(tiny_model_path, tmp_path, hash_cache):
    ds = Dataset.from_dict({"conversations": ["a", "b"]})
    old = ident.identity(model=tiny_model_path, data=ds, params={"learning_rate": 0.001, "parts": ("language",)})
    assert old == ident.identity(model=tiny_model_path, data=Dataset.from_dict(ds.to_dict()),
                                 params={"parts": ["language"], "learning_rate": 0.001})
    assert len(old["key"]) == 16 and ident.what_changed(old, old) == ""
    copy = tmp_path / "m"
    shutil.copytree(tiny_model_path, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    new = ident.identity(model=copy, data=ds.select([1, 0]), params={"learning_rate": 123, "parts": ("language",)})
    message = ident.what_changed(old, new)
    assert message.startswith("model changed (sha256:") and "data changed" in message
    assert message.endswith("params changed: learning_rate 0.001 -> 123")
    with pytest.raises(StaleStateError, match="runs/x.*learning_rate 0.001 -> 123; use restart=True") as err:
        ident.ensure_same(old, new, place="work_dir 'runs/x'")
    assert err.value.changed == message
    ident.ensure_same(old, dict(old), place="work_dir 'runs/x'")
    with pytest.raises(StaleStateError, match="recorded no identity"):
        ident.ensure_same(None, old, place="output_dir 'runs/x'")


def test_params_fingerprint_is_canonical():
    assert ident.params_fingerprint({"a": 1, "b": (2, 3)}) == ident.params_fingerprint({"b": [2, 3], "a": 1})
    assert ident.params_fingerprint({"a": 1}) != ident.params_fingerprint({"a": 1.5})
    # The published manifest's hashes are this function (their values must not move).
    import hashlib

    payload = {"card": "generic", "card_data": {}, "plots": []}
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    assert ident.params_fingerprint(payload) == expected


def test_hub_id_resolves_to_its_commit_on_a_loopback_hub(monkeypatch, hash_cache):
    """Online: the Hub's current commit (a loopback stand-in for the Hub API); an unknown id is NotFoundError."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from huggingface_hub import constants

    commit = "fedcba9876543210fedcba9876543210fedcba98"

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            found = self.path.split("?")[0].startswith("/api/models/org/tiny")
            body = json.dumps({"id": "org/tiny", "sha": commit} if found else {"error": "Repository not found"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            if not found:
                self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        assert ident.model_fingerprint("org/tiny") == f"org/tiny@{commit}"
        with pytest.raises(NotFoundError, match="no such file or folder: 'org/typo'.*on the Hub"):
            ident.model_fingerprint("org/typo")
    finally:
        server.shutdown()
        server.server_close()


def test_data_fingerprint_does_not_depend_on_chunking():
    """The same rows in one Arrow chunk, in 700-row chunks or behind an indices mapping: one fingerprint."""
    import pyarrow as pa
    from datasets import Dataset

    from hf_vitcurate.identity import data_fingerprint

    rows = {"id": [f"r{i}" for i in range(2500)],
            "conversations": [[{"from": "human", "value": "x" * (i % 7)}] for i in range(2500)],
            "s": [float(i) if i % 5 else None for i in range(2500)]}
    one = Dataset.from_dict(rows)
    chunked = Dataset(pa.Table.from_batches(one.data.table.to_batches(max_chunksize=700)))
    assert data_fingerprint(one) == data_fingerprint(chunked) == data_fingerprint(one.select(range(2500)))


def test_a_fingerprint_passed_on_stands_for_the_rows(monkeypatch):
    """identity(fingerprint=): a caller that already hashed the rows passes the fingerprint on; nothing is
    hashed again and the identity is the one the rows give. Every call without one hashes: a view (same
    buffers, rows in another order) is other data."""
    from datasets import Dataset

    from hf_vitcurate import columns
    from hf_vitcurate.identity import data_fingerprint, identity

    ds = Dataset.from_dict({"t": ["a", "b", "c", "d"]})
    view = ds.select([3, 2, 1, 0])
    known = data_fingerprint(ds)
    assert data_fingerprint(view) != known == data_fingerprint(ds.select_columns(["t"]))
    real, hashed = columns.content_sha256, []
    monkeypatch.setattr(columns, "content_sha256", lambda *a, **k: hashed.append(1) or real(*a, **k))
    same = identity(data=ds, params={"p": 1}, fingerprint=known)
    assert not hashed
    assert same == identity(data=ds, params={"p": 1}) != identity(data=view, params={"p": 1})
    assert len(hashed) == 2  # the two calls without a fingerprint


def test_files_fingerprint_sees_an_image_rewritten_with_its_mtime_put_back(tmp_path):
    """Image files named by path are stamped like weight files (ctime too): ``cp -p`` over one is another input,
    and identity() carries it, so what_changed names the files."""
    from datasets import Dataset

    from hf_vitcurate.identity import files_fingerprint, identity, what_changed

    image = tmp_path / "a.png"
    image.write_bytes(b"first")
    ds = Dataset.from_dict({"images": [[{"bytes": None, "path": str(image)}]], "t": ["x"]})
    before, ident = files_fingerprint(ds), identity(data=ds)
    st = os.stat(image)
    time.sleep(0.01)
    image.write_bytes(b"other")  # same size
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert files_fingerprint(ds) != before
    assert what_changed(ident, identity(data=ds)).startswith("files changed")
    assert files_fingerprint(ds.select_columns(["t"])) is None and "files" not in identity(data=ds.select_columns(["t"]))
