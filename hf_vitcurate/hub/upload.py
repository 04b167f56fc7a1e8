"""Upload a published folder to the Hub with ``huggingface_hub``: one commit, then a tag.

All files of the working tree (not ``versions/`` nor hidden files) go in one
``create_commit``, together with deletions of the repo's old data files, the way
``push_to_hub`` replaces a config's shards. ``create_commit`` uploads the Parquet
files through the LFS/Xet protocol first and the Hub answers "already have it" for
content it holds, so rerunning a push after a failure does not re-send finished files.
Only when a repo has more than :data:`MAX_OPERATIONS_PER_COMMIT` files is the upload
split, data first and the card last, so the card never points at missing files.

The token comes from ``HF_TOKEN`` or ``huggingface-cli login`` (``HfApi()`` reads them);
nothing here takes, prints or writes a token.

Example:
    >>> ops = plan_operations("out/my-mixture", remote_files=["data/train-00000-of-00002.parquet"])  # doctest: +SKIP
    >>> push("out/my-mixture", "me/my-mixture", version="v1")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from .layout import MANAGED, repo_files
from ..errors import VersionExistsError
from .versions import check_tag

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"
MAX_OPERATIONS_PER_COMMIT = 1000
# Written last so the card and the manifest describe files that are already there.
LAST = ("README.md", "curation.json")


def make_api() -> HfApi:
    """An ``HfApi`` authenticated from the environment / login only."""
    from .. import __version__

    return HfApi(library_name="hf_vitcurate", library_version=__version__)


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


def plan_operations(local_dir: str, remote_files: list[str] | tuple[str, ...] = ()) -> list:
    """The commit operations that make the remote repo equal to ``local_dir``.

    Adds every repo file (data shards, assets, README.md, curation.json; ``README.md``
    and ``curation.json`` last) and deletes remote files under ``data/`` and
    ``assets/`` that this publish no longer has. Other remote files are left alone.
    """
    files = repo_files(local_dir)
    files = [f for f in files if f not in LAST] + [f for f in LAST if f in files]
    adds = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=os.path.join(local_dir, f)) for f in files]
    managed_dirs = tuple(f"{d}/" for d in MANAGED if "." not in d)
    stale = sorted(f for f in remote_files if f.startswith(managed_dirs) and f not in set(files))
    return adds + [CommitOperationDelete(path_in_repo=f) for f in stale]


def commit_batches(operations: list) -> list[list]:
    """Split operations into commits of at most :data:`MAX_OPERATIONS_PER_COMMIT` (one commit if it fits)."""
    if len(operations) <= MAX_OPERATIONS_PER_COMMIT:
        return [operations]
    last = [op for op in operations if op.path_in_repo in LAST]
    rest = [op for op in operations if op.path_in_repo not in LAST]
    size = MAX_OPERATIONS_PER_COMMIT
    return [rest[i : i + size] for i in range(0, len(rest), size)] + [last]


def push(
    local_dir: str,
    repo_id: str,
    *,
    version: str | None = None,
    private: bool = True,
    commit_message: str | None = None,
    api: HfApi | None = None,
    lock: bool = True,
) -> str:
    """Upload ``local_dir`` (written by :func:`publish`) to the dataset repo ``repo_id``; returns the commit id.

    Creates the repo if needed (``private`` applies then), refuses an existing
    ``version`` tag before uploading anything, commits, and tags the commit ``version``.
    Holds ``local_dir``'s lock meanwhile, so a publish cannot rewrite the tree mid-upload
    (:class:`~hf_vitcurate.errors.LockedError` if one is running); ``lock=False`` is for a
    caller that already holds it (:func:`~hf_vitcurate.hub.publish`).
    """
    from ..locks import hold

    if lock:
        with hold(local_dir, what=f"pushing {repo_id}" + (f" {version}" if version else "")):
            return push(local_dir, repo_id, version=version, private=private, commit_message=commit_message, api=api, lock=False)
    api = api or make_api()
    if version is not None:
        check_remote_tag_free(api, repo_id, version)
    api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    remote = api.list_repo_files(repo_id, repo_type=REPO_TYPE)
    operations = plan_operations(local_dir, remote)
    message = commit_message or (f"Publish {version}" if version else "Publish dataset") + " with hf_vitcurate"
    batches = commit_batches(operations)
    oid = ""
    for i, batch in enumerate(batches):
        suffix = f" (part {i + 1}/{len(batches)})" if len(batches) > 1 else ""
        info = api.create_commit(repo_id, operations=batch, commit_message=message + suffix, repo_type=REPO_TYPE)
        oid = info.oid
        logger.info("committed %d operations to %s: %s", len(batch), repo_id, oid)
    if version is not None:
        # exist_ok=False: if another publish took the tag meanwhile, the Hub refuses.
        api.create_tag(repo_id, tag=version, revision=oid, tag_message=message, repo_type=REPO_TYPE, exist_ok=False)
    return oid
