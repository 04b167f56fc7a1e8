"""A Hugging Face Hub API server on 127.0.0.1 for tests (loopback only, bounded, in memory).

It answers what ``huggingface_hub`` (``HfApi``, ``hf_hub_download``, ``HfFileSystem``) and
``datasets.load_dataset`` call for dataset repos: ``/api/repos/create``, ``validate-yaml``,
``whoami-v2``, repo info (``/api/datasets/{repo}`` and ``.../revision/{rev}``), ``refs``,
``tree/{rev}/{path}`` (``recursive``, pages of :attr:`HubServer.page_size` with a ``Link``
header), ``paths-info``, ``preupload`` (always the *regular* upload mode, so contents come
inline in the commit), ``commit`` (the NDJSON body), ``tag``, and
``/datasets/{repo}/resolve/{rev}/{path}`` (HEAD and GET, ``Range``, ``ETag``,
``X-Repo-Commit``; a model's files at ``/{repo}/resolve/...``, its info at ``/api/models/{repo}``). Files whose name ends in :data:`LFS_SUFFIXES` are listed as LFS files
(``lfs.sha256`` in the tree, the sha256 as ``X-Linked-Etag``), as the Hub lists them.

Faults: :meth:`HubServer.fail` makes chosen requests answer a status (429, 412, 5xx),
drop the connection (before or after applying a commit) or answer bytes that are not HTTP;
``delay_s`` holds an endpoint's requests. What clients sent is counted: ``committed``
(paths received in commit bodies, in order), ``preuploaded`` (paths asked about),
``requests`` (``(method, endpoint)`` pairs), ``times`` (when each came) and ``served``
(``(path, start, end)``: the bytes each file download answered, a ``Range`` or the whole file). With ``token`` set, every request must carry ``Authorization: Bearer <token>`` (401 otherwise),
so a repo's ``private`` flag is only reported, never enforced; the server keeps no token.
The HTTP plumbing (routes, handler, error answers) is in tests/hub_http.py.

Example:
    >>> with HubServer(token="hf_x") as hub:                              # doctest: +SKIP
    ...     hub.fail("commit", 412)           # the next commit answers 412 once
    ...     HfApi(endpoint=hub.url, token="hf_x").create_repo("me/x", repo_type="dataset")
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

from hub_http import HubError, Request, handler_for

LFS_SUFFIXES = (".parquet", ".png", ".jpg", ".arrow", ".zip")


def git_blob_id(data: bytes) -> str:
    """The git object id of a blob: ``sha1(b"blob <size>\\0" + data)``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    oid: str
    files: dict[str, bytes]  # path -> content (shared, never copied)
    parent: str | None
    summary: str
    date: str


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit:
        oid = self.branches.get(rev) or self.tags.get(rev) or (rev if rev in self.commits else None)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return self.commits[oid]


@dataclass
class Fault:
    endpoint: str
    action: int | str  # a status code, "drop" (no answer, nothing done), "drop_after" (done, no answer), "malformed", ...
    skip: int  # requests to let through first
    times: int | None  # None: every request after that


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _entry(path: str, data: bytes) -> dict:
    """A tree / paths-info entry for a file, with ``lfs`` for the suffixes the Hub stores in LFS."""
    out = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}
    if path.endswith(LFS_SUFFIXES):
        sha = hashlib.sha256(data).hexdigest()
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
        out.update(oid=git_blob_id(pointer), lfs={"oid": sha, "size": len(data), "pointerSize": len(pointer)})
    return out


def _folders(files: dict[str, bytes]) -> set[str]:
    return {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}


class HubServer:
    """The Hub API in memory on 127.0.0.1 (module docstring). Use as a context manager."""

    def __init__(self, *, token: str | None = None, page_size: int = 1000):
        self.token, self.page_size = token, page_size
        self.retry_after = "0"  # seconds, in the Retry-After header of an injected 429 or 503
        self.delay_s: dict[str, float] = {}  # endpoint -> seconds each request waits before it is served
        self.repos: dict[tuple[str, str], Repo] = {}
        self.faults: list[Fault] = []
        self.committed: list[str] = []
        self.deleted: list[str] = []
        self.preuploaded: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.served: list[tuple[str, int, int]] = []  # (path, start, end) of the bytes each file GET answered
        self.times: list[float] = []  # time.monotonic() of each request, in the order of ``requests``
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def fail(self, endpoint: str, action: int | str, *, skip: int = 0, times: int | None = 1) -> None:
        """Make requests to ``endpoint`` (``"commit"``, ``"preupload"``, ``"tree"``, ...) fail.

        ``action``: a status code (429, 412, 500, ...), ``"drop"`` (close the connection
        without an answer and without doing anything), ``"drop_after"`` (do it, then close
        without an answer) or ``"malformed"`` (answer bytes that are not HTTP, doing nothing); ``"quote_token"``
        answers 400 with a message quoting the request's ``Authorization`` header, and ``"echo"`` answers
        bytes that are not HTTP quoting it (a client must not pass either on). The next ``skip`` requests pass; then ``times`` fail (None: all).
        """
        with self.lock:
            self.faults.append(Fault(endpoint, action, skip, times))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def add_repo(self, repo_id: str, files: dict[str, bytes], *, tags: Sequence[str] = (), private: bool = True,
                 repo_type: str = "dataset") -> None:
        """A repo (``repo_type`` dataset or model) whose ``main`` holds ``files``, with ``tags`` on that commit."""
        repo = Repo(repo_id, repo_type, private=private)
        commit = Commit(hashlib.sha1(repr(sorted(files)).encode()).hexdigest(), dict(files), None, "seed", _now())
        repo.commits[commit.oid], repo.branches["main"] = commit, commit.oid
        repo.tags.update({t: commit.oid for t in tags})
        with self.lock:
            self.repos[(repo_type + "s", repo_id)] = repo

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision``: path -> content."""
        return dict(self.repos[(repo_type + "s", repo_id)].resolve(revision).files)

    def tags(self, repo_id: str, repo_type: str = "dataset") -> dict[str, str]:
        return dict(self.repos[(repo_type + "s", repo_id)].tags)

    def _take_fault(self, endpoint: str) -> int | str | None:
        with self.lock:
            for fault in self.faults:
                if fault.endpoint != endpoint:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault.action
        return None

    # --- endpoints: each takes the route's match groups and the request, returns (status, body, headers)

    def _repo(self, m: dict, req: Request) -> Repo:
        repo = self.repos.get((m["type"], m["repo"]))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def create(self, m: dict, req: Request):
        body = req.json()
        kind = body.get("type") or "model"
        repo_id = f"{body.get('organization') or 'tester'}/{body['name']}"
        with self.lock:
            if (kind + "s", repo_id) in self.repos:
                raise HubError(409, "You already created this repo", extra={"url": f"{self.url}/{kind}s/{repo_id}"})
            repo = Repo(repo_id, kind, private=body.get("private", body.get("visibility") != "public"))
            first = Commit(hashlib.sha1(repo_id.encode()).hexdigest(), {".gitattributes": b"*.parquet filter=lfs\n"},
                           None, "initial commit", _now())
            repo.commits[first.oid], repo.branches["main"] = first, first.oid
            self.repos[(kind + "s", repo_id)] = repo
        return 200, {"url": f"{self.url}/{kind}s/{repo_id}", "name": repo_id, "id": repo_id}, {}

    def whoami(self, m: dict, req: Request):
        return 200, {"type": "user", "name": "tester", "orgs": [], "auth": {"type": "access_token"}}, {}

    def validate_yaml(self, m: dict, req: Request):
        return 200, {"errors": [], "warnings": []}, {}

    def info(self, m: dict, req: Request):
        repo = self._repo(m, req)
        commit = repo.resolve(unquote(m["rev"] or "main"))
        body = {"_id": commit.oid[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": commit.oid,
                "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
                "lastModified": commit.date, "createdAt": commit.date,
                "siblings": [{"rfilename": p} for p in sorted(commit.files)]}
        if req.query.get("blobs", ["false"])[0].lower() == "true":  # HfApi's files_metadata: sizes and blob ids
            for sibling in body["siblings"]:
                data = commit.files[sibling["rfilename"]]
                sibling.update(size=len(data), blobId=hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())
        return 200, body, {}

    def refs(self, m: dict, req: Request):
        repo = self._repo(m, req)

        def refs(kind: str, names: dict[str, str]) -> list[dict]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in sorted(names.items())]

        return 200, {"branches": refs("heads", repo.branches), "tags": refs("tags", repo.tags), "converts": [],
                     "pullRequests": []}, {}

    def tree(self, m: dict, req: Request):
        commit = self._repo(m, req).resolve(unquote(m["rev"]))
        base = unquote(m["path"] or "").strip("/")
        recursive = req.query.get("recursive", ["false"])[0].lower() == "true"
        prefix = base + "/" if base else ""
        if base and base not in _folders(commit.files):
            raise HubError(404, f"Entry not found: {base}", "EntryNotFound")
        entries = []
        for folder in sorted(_folders(commit.files)):
            if folder.startswith(prefix) and (recursive or "/" not in folder[len(prefix):]):
                entries.append({"type": "directory", "oid": git_blob_id(folder.encode()), "size": 0, "path": folder})
        for path in sorted(commit.files):
            if path.startswith(prefix) and (recursive or "/" not in path[len(prefix):]):
                entries.append(_entry(path, commit.files[path]))
        start = int(req.query.get("cursor", ["0"])[0])
        page = entries[start : start + self.page_size]
        headers = {}
        if start + self.page_size < len(entries):
            query = f"recursive={str(recursive).lower()}&cursor={start + self.page_size}"
            headers["Link"] = f'<{self.url}{req.path}?{query}>; rel="next"'
        return 200, page, headers

    def paths_info(self, m: dict, req: Request):
        commit = self._repo(m, req).resolve(unquote(m["rev"]))
        form = parse_qs(req.body.decode())
        out = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                out.append(_entry(path, commit.files[path]))
            elif path in _folders(commit.files):
                out.append({"type": "directory", "oid": git_blob_id(path.encode()), "size": 0, "path": path})
        return 200, out, {}

    def preupload(self, m: dict, req: Request):
        commit = self._repo(m, req).resolve(unquote(m["rev"]))
        files = []
        for f in req.json()["files"]:
            self.preuploaded.append(f["path"])
            known = commit.files.get(f["path"])
            files.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                          "oid": git_blob_id(known) if known is not None else None})
        return 200, {"files": files}, {}

    def commit(self, m: dict, req: Request):
        """Apply an NDJSON commit body: header, then file / lfsFile / deletedFile / deletedFolder lines."""
        repo = self._repo(m, req)
        branch = unquote(m["rev"])
        lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the commit body must start with a header line")
        header = lines[0]["value"]
        with self.lock:
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            head = repo.commits[repo.branches[branch]]
            if header.get("parentCommit") not in (None, head.oid):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = value["path"].strip("/")
                if key == "file":
                    files[path] = base64.b64decode(value["content"])
                    self.committed.append(path)
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
                    self.deleted.append(path)
                elif key == "deletedFolder":
                    files = {p: d for p, d in files.items() if not p.startswith(path + "/")}
                    self.deleted.append(path + "/")
                else:  # lfsFile: never asked for, since preupload answers "regular"
                    raise HubError(400, f"unsupported commit line {key!r}")
            digest = hashlib.sha1(json.dumps([head.oid, header.get("summary"), sorted(
                (p, git_blob_id(d)) for p, d in files.items())]).encode() + _now().encode()).hexdigest()
            commit = Commit(digest, files, head.oid, header.get("summary", ""), _now())
            repo.commits[digest], repo.branches[branch] = commit, digest
        url = f"{self.url}/{repo.repo_type}s/{repo.repo_id}/commit/{digest}"
        return 200, {"success": True, "commitOid": digest, "commitUrl": url, "hookOutput": ""}, {}

    def tag(self, m: dict, req: Request):
        repo = self._repo(m, req)
        body = req.json()
        with self.lock:
            commit = repo.resolve(unquote(m["rev"]))
            if body["tag"] in repo.tags:
                raise HubError(409, f"Tag {body['tag']} already exists")
            repo.tags[body["tag"]] = commit.oid
        return 200, {}, {}

    def resolve(self, m: dict, req: Request):
        commit = self._repo(m, req).resolve(unquote(m["rev"]))
        path = unquote(m["path"])
        if path not in commit.files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        data = commit.files[path]
        entry = _entry(path, data)
        etag = f'"{entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]}"'
        headers = {"ETag": etag, "X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
        if "lfs" in entry:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(len(data))})
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", req.headers.get("Range", ""))
        if ranged and req.method == "GET":
            start = int(ranged[1]) if ranged[1] else max(0, len(data) - int(ranged[2]))
            end = min(int(ranged[2]), len(data) - 1) if ranged[1] and ranged[2] else len(data) - 1
            if start >= len(data):
                raise HubError(416, "Requested range not satisfiable")
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            if req.method == "GET":
                self.served.append((path, start, end + 1))
            return 206, data[start : end + 1], headers
        if req.method == "GET":
            self.served.append((path, 0, len(data)))
        return 200, data, headers


def point_clients_at(url: str, monkeypatch, cache_dir: str) -> None:
    """Send ``huggingface_hub`` and ``datasets`` to ``url`` and nowhere else, online, with caches under ``cache_dir``.

    Both libraries read ``HF_ENDPOINT`` and the offline switches once, at import, into module
    constants (``huggingface_hub.constants.ENDPOINT``, ``datasets.config.HF_ENDPOINT``), so
    setting the environment is not enough: the constants are patched too, for this test only.
    """
    import datasets.config as dconfig
    import huggingface_hub.constants as hconst

    for name, value in {"HF_ENDPOINT": url, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(hconst, "ENDPOINT", url)
    monkeypatch.setattr(hconst, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hconst, "HF_HUB_CACHE", f"{cache_dir}/hub")
    monkeypatch.setattr(dconfig, "HF_ENDPOINT", url)
    monkeypatch.setattr(dconfig, "HUB_DATASETS_URL", url + "/datasets/{repo_id}/resolve/{revision}/{path}")
    monkeypatch.setattr(dconfig, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(dconfig, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setattr(dconfig, "HF_DATASETS_CACHE", f"{cache_dir}/datasets")
    # Two calls ``datasets`` makes beside the Hub, which would leave the loopback: a HEAD to S3
    # counting downloads (3 s timeout) and the dataset viewer's info at ``datasets-server.<host>``.
    # Where name lookups hang rather than fail, each cost seconds per test.
    monkeypatch.setattr(dconfig, "HF_UPDATE_DOWNLOAD_COUNTS", False)
    monkeypatch.setattr(dconfig, "USE_PARQUET_EXPORT", False)
