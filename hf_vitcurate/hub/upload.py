"""Upload a published folder to the Hub with ``huggingface_hub``: commits of 50 files, retries, resume, a tag.

:func:`push` makes the dataset repo equal to the folder :func:`~hf_vitcurate.hub.publish`
wrote, the way ``push_to_hub`` does, and tags the last commit with the version:

- **commits of at most 50 files** (:data:`MAX_OPERATIONS_PER_COMMIT`, datasets'
  ``UPLOADS_MAX_NUMBER_PER_COMMIT``): new files first, then deletions of old shards, and
  ``README.md`` / ``curation.json`` last, so the card never points at missing files;
- **resume**: the remote tree is read first (``list_repo_tree``) and a file the repo already
  holds with the same content (same size, and the same ``lfs.sha256``, or git blob id for a
  file kept in git) is not sent again, so a push that stopped after some commits sends only
  the rest when run again;
- **retries**: a commit answered 429 (rate limit), 412 (another commit landed first), 408 or
  5xx, or whose connection broke or timed out, is retried up to :data:`MAX_TRIES` times, waiting
  :data:`BACKOFF_S` seconds, doubling up to :data:`MAX_BACKOFF_S` (longer when the answer
  says ``Retry-After``, up to :data:`MAX_RETRY_AFTER_S`); a malformed answer, which a resend
  would meet again, is raised at once. Before each retry the
  remote tree is read again, so a commit that landed before its answer was lost is not
  made twice (``http_backoff`` would resend the same request, hence this loop);
- **the version** becomes a tag of the last commit (``create_tag(exist_ok=False)``: a tag
  taken meanwhile by another publish is refused, never moved).

The token comes from ``token=`` (kept in the ``HfApi`` object for this push only), else
``HF_TOKEN`` or ``hf auth login``; nothing here prints, logs or writes it.

Example:
    >>> ops = plan_operations("out/my-mixture", remote_files=["data/train-00000-of-00002.parquet"])  # doctest: +SKIP
    >>> push("out/my-mixture", "me/my-mixture", version="v1")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import time
from collections.abc import Mapping, Sequence

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from ..errors import VersionExistsError
from .layout import MANAGED, repo_files
from .versions import check_tag

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"
MAX_OPERATIONS_PER_COMMIT = 50  # datasets.config.UPLOADS_MAX_NUMBER_PER_COMMIT, what push_to_hub uses
# Written last so the card and the manifest describe files that are already there.
LAST = ("README.md", "curation.json")
RETRY_STATUSES = (408, 412, 429, 500, 502, 503, 504)
MAX_TRIES = 5  # attempts per commit
BACKOFF_S = 1.0  # first wait; doubles each retry
MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 60.0  # the longest Retry-After (429, 503) honoured


def make_api(token: str | None = None) -> HfApi:
    """An ``HfApi`` with ``token`` (for this object only), else authenticated from the environment / login."""
    from .. import __version__

    return HfApi(token=token, library_name="hf_vitcurate", library_version=__version__)


def remote_tags(api: HfApi, repo_id: str) -> set[str]:
    """Tags of ``repo_id`` on the Hub (empty when the repo does not exist yet)."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    except RepositoryNotFoundError:
        return set()
    return {t.name for t in refs.tags}


def check_remote_tag_free(api: HfApi, repo_id: str, version: str) -> None:
    """Raise :class:`VersionExistsError` when ``version`` is already a tag of ``repo_id``."""
    check_tag(version)
    if version in remote_tags(api, repo_id):
        raise VersionExistsError(f"version={version!r}: {repo_id} already has this tag on the Hub; publish under a new tag")


def remote_tree(api: HfApi, repo_id: str) -> dict:
    """The files of ``repo_id``'s ``main`` branch: path -> ``RepoFile`` (size, blob id, ``lfs.sha256``)."""
    from huggingface_hub import RepoFile

    entries = api.list_repo_tree(repo_id, repo_type=REPO_TYPE, recursive=True)
    return {e.path: e for e in entries if isinstance(e, RepoFile)}


def same_content(path: str, remote) -> bool:
    """True when the local file ``path`` holds what the remote ``RepoFile`` holds.

    Sizes first (free); then the sha256 for a file stored in LFS/Xet, else git's blob id.

    >>> import tempfile
    >>> from huggingface_hub import RepoFile
    >>> f = tempfile.NamedTemporaryFile(delete=False); _ = f.write(b"hi"); f.close()
    >>> same_content(f.name, RepoFile(path="x", size=2, oid="32f95c0d1244a78b2be1bab8de17906fabb2c4a8"))
    True
    >>> os.remove(f.name)
    """
    if os.path.getsize(path) != remote.size:
        return False
    if remote.lfs is not None:
        return _file_digest(path, hashlib.sha256()) == remote.lfs.sha256
    return _file_digest(path, hashlib.sha1(b"blob %d\0" % remote.size)) == remote.blob_id


def _file_digest(path: str, h) -> str:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def plan_operations(local_dir: str, remote_files: Sequence[str] | Mapping[str, object] = ()) -> list:
    """The commit operations that make the remote repo equal to ``local_dir``.

    Adds every repo file (data shards, assets, README.md, curation.json; ``README.md``
    and ``curation.json`` last) and deletes remote files under ``data/`` and
    ``assets/`` that this publish no longer has. Other remote files are left alone.
    ``remote_files``: the remote paths, or ``{path: RepoFile}`` (:func:`remote_tree`), with
    which a file the repo already holds with the same content is left out.
    """
    files = repo_files(local_dir)
    files = [f for f in files if f not in LAST] + [f for f in LAST if f in files]
    if isinstance(remote_files, Mapping):
        files = [f for f in files if f not in remote_files or not same_content(os.path.join(local_dir, f), remote_files[f])]
    adds = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=os.path.join(local_dir, f)) for f in files]
    managed_dirs = tuple(f"{d}/" for d in MANAGED if "." not in d)
    keep = set(repo_files(local_dir))
    stale = sorted(f for f in remote_files if f.startswith(managed_dirs) and f not in keep)
    return adds + [CommitOperationDelete(path_in_repo=f) for f in stale]


def commit_batches(operations: list) -> list[list]:
    """Split operations into commits of at most :data:`MAX_OPERATIONS_PER_COMMIT` (one commit if they fit).

    New files first, then the deletions of old ones, then ``README.md`` and
    ``curation.json`` together: until the last commit, the old card's files are all there.
    """
    if len(operations) <= MAX_OPERATIONS_PER_COMMIT:
        return [operations]
    adds = [op for op in operations if isinstance(op, CommitOperationAdd) and op.path_in_repo not in LAST]
    deletes = [op for op in operations if isinstance(op, CommitOperationDelete)]
    last = [op for op in operations if isinstance(op, CommitOperationAdd) and op.path_in_repo in LAST]
    size = MAX_OPERATIONS_PER_COMMIT
    chunks = [ops[i : i + size] for ops in (adds, deletes) for i in range(0, len(ops), size)]
    return chunks + ([last] if last else [])


def push(
    local_dir: str,
    repo_id: str,
    *,
    version: str | None = None,
    private: bool = True,
    commit_message: str | None = None,
    api: HfApi | None = None,
    token: str | None = None,
    lock: bool = True,
) -> str:
    """Upload ``local_dir`` (written by :func:`publish`) to the dataset repo ``repo_id``; returns the commit id.

    Creates the repo if needed (``private`` applies then), refuses an existing
    ``version`` tag before uploading anything, commits what the repo does not hold yet
    (module docstring: batches, retries, resume), and tags the last commit ``version``.
    ``token``: used by this push only (default: ``HF_TOKEN`` / login).
    Holds ``local_dir``'s lock meanwhile, so a publish cannot rewrite the tree mid-upload
    (:class:`~hf_vitcurate.errors.LockedError` if one is running); ``lock=False`` is for a
    caller that already holds it (:func:`~hf_vitcurate.hub.publish`).
    """
    from ..locks import hold

    if lock:
        with hold(local_dir, what=f"pushing {repo_id}" + (f" {version}" if version else "")):
            return push(local_dir, repo_id, version=version, private=private, commit_message=commit_message,
                        api=api, token=token, lock=False)
    api = api or make_api(token)
    if version is not None:
        check_remote_tag_free(api, repo_id, version)
    api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    operations = plan_operations(local_dir, remote_tree(api, repo_id))
    message = commit_message or (f"Publish {version}" if version else "Publish dataset") + " with hf_vitcurate"
    batches = commit_batches(operations) if operations else []
    oid = None
    for i, batch in enumerate(batches):
        suffix = f" (part {i + 1}/{len(batches)})" if len(batches) > 1 else ""
        oid = commit_with_retries(api, repo_id, batch, message + suffix, local_dir=local_dir)
    if oid is None:  # nothing to send: the repo already holds this folder
        oid = api.repo_info(repo_id, repo_type=REPO_TYPE).sha
    if version is not None:
        # exist_ok=False: if another publish took the tag meanwhile, the Hub refuses.
        api.create_tag(repo_id, tag=version, revision=oid, tag_message=message, repo_type=REPO_TYPE, exist_ok=False)
    return oid


def commit_with_retries(api: HfApi, repo_id: str, batch: list, message: str, *, local_dir: str) -> str:
    """``create_commit`` with retries (module docstring); returns the id of the commit that holds ``batch``.

    Before each retry the remote tree is read again and what it already holds is dropped,
    so a commit that landed before its answer was lost is not made twice; when nothing is
    left, the branch's head (which holds it all) is returned, so the tag goes there.
    """
    # Hand-written on purpose: huggingface_hub's commit retries (http_backoff, used by
    # _send_commit(retry_on_error=True): off in create_commit, on in upload_folder's Xet
    # pipeline) resend the same POST, so a commit whose answer was lost is made twice, and
    # 412 is not among their statuses. upload_folder's pipeline also puts the deletions in
    # its first commit (the old card would name deleted shards) and sizes its batches itself
    # (README.md could land before the data it names).
    for attempt in range(1, MAX_TRIES + 1):
        try:
            info = api.create_commit(repo_id, operations=batch, commit_message=message, repo_type=REPO_TYPE)
            logger.info("committed %d operations to %s: %s", len(batch), repo_id, info.oid)
            return info.oid
        except Exception as err:  # noqa: BLE001 - retried only when _retryable says so, else raised as is
            if attempt == MAX_TRIES or not _retryable(err):
                raise
            wait = _wait_s(err, attempt)
            logger.warning("commit to %s failed (%s); retry %d/%d in %.1f s", repo_id, _describe(err), attempt,
                           MAX_TRIES - 1, wait)
            time.sleep(wait)
        batch = _still_needed(api, repo_id, batch, local_dir)
        if not batch:
            return api.repo_info(repo_id, repo_type=REPO_TYPE).sha
    raise AssertionError("not reached: the last attempt returns or raises")


def _still_needed(api: HfApi, repo_id: str, batch: list, local_dir: str) -> list:
    """Fresh operations (a sent one cannot be reused) for what the repo does not hold yet."""
    remote = remote_tree(api, repo_id)
    out = []
    for op in batch:
        if isinstance(op, CommitOperationDelete):
            if op.path_in_repo in remote:
                out.append(CommitOperationDelete(path_in_repo=op.path_in_repo))
            continue
        path = os.path.join(local_dir, op.path_in_repo)
        if op.path_in_repo not in remote or not same_content(path, remote[op.path_in_repo]):
            out.append(CommitOperationAdd(path_in_repo=op.path_in_repo, path_or_fileobj=path))
    return out


def _wait_s(err: BaseException, attempt: int) -> float:
    """The backoff for ``attempt``, or longer when a 429/503 says ``Retry-After`` (capped at :data:`MAX_RETRY_AFTER_S`)."""
    wait = min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (attempt - 1))
    response = getattr(err, "response", None)
    try:
        asked = float(response.headers.get("Retry-After")) if response is not None else 0.0
    except (TypeError, ValueError):  # absent, or an HTTP date: the backoff alone
        asked = 0.0
    return max(wait, min(asked, MAX_RETRY_AFTER_S))


def _retryable(err: BaseException) -> bool:
    """A rate limit, a concurrent commit, a server error, a timeout or a broken connection; nothing that would repeat.

    >>> http = _http_modules()[0]  # httpx2 or httpx, whichever huggingface_hub uses
    >>> _retryable(http.ReadTimeout("timed out")), _retryable(http.ConnectError("refused"))
    (True, True)
    >>> _retryable(http.RemoteProtocolError("Server disconnected without sending a response."))
    True
    >>> _retryable(http.RemoteProtocolError("illegal status line: bytearray(b'NOT HTTP')"))
    False
    """
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(err, HfHubHTTPError):
        return err.response is not None and err.response.status_code in RETRY_STATUSES
    for module in _http_modules():
        if isinstance(err, (module.TimeoutException, module.NetworkError)):  # reset, refused, timed out
            return True
        if isinstance(err, module.RemoteProtocolError):
            # The connection closed before a whole answer came (the server went away mid-request):
            # transient. Any other protocol error is a malformed answer, which a resend gets again.
            return any(marker in str(err) for marker in DISCONNECTED)
    return False  # a local protocol error, a proxy or URL error, a bug: raised as is


# How httpcore / h11 word a connection that closed before the whole answer came.
DISCONNECTED = ("Server disconnected", "peer closed connection")


def _http_modules() -> list:
    # huggingface_hub 1.x talks through httpx, 2.x through httpx2: whichever is installed.
    out = []
    for name in ("httpx2", "httpx"):
        try:
            out.append(importlib.import_module(name))
        except ImportError:
            continue
    return out


def _describe(err: BaseException) -> str:
    """The status code or exception name only: an error's text may quote request headers."""
    response = getattr(err, "response", None)
    return f"HTTP {response.status_code}" if response is not None else type(err).__name__
