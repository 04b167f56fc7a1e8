"""Local versions: ``versions/<tag>/`` is a snapshot of the repo as published under that tag.

On the Hub a version is a git tag, and ``load_dataset(repo_id, config, revision=tag)``
reads it. A local folder has no revisions, so the working tree (``local_dir``) is the
latest publish and each tagged publish is also kept, as a copy, in ``versions/<tag>/``:
``load_dataset(f"{local_dir}/versions/{tag}", config)`` is the local ``revision=tag``.
A tag is never overwritten, and a saved version never changes: it is a copy, not hard
links, because a link shares the file's content, so editing the working README (or any
file, in place) would have edited every version that linked it. The copy costs the
disk space of each version's files (``shutil.copy2``; on file systems with reflinks,
such as Btrfs or XFS, the kernel may share the blocks until one side is written).

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> open(f"{d}/README.md", "w").close()
    >>> snapshot(d, "v1").endswith("versions/v1")
    True
    >>> list_versions(d)
    ['v1']
"""

from __future__ import annotations

import os
import re
import shutil

from ..errors import ConfigError, VersionExistsError
from .layout import repo_files

VERSIONS_DIR = "versions"
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_tag(tag: str) -> None:
    """Raise :class:`ConfigError` unless ``tag`` is a plain tag name (``v1``, ``2024.06-r2``)."""
    if not isinstance(tag, str) or not _TAG_RE.match(tag) or tag.endswith(".partial"):
        raise ConfigError(f"version={tag!r}: use letters, digits and '._-' (e.g. 'v1')")


def version_dir(local_dir: str, tag: str) -> str:
    return os.path.join(local_dir, VERSIONS_DIR, tag)


def list_versions(local_dir: str) -> list[str]:
    """Tags published from ``local_dir``, sorted by name."""
    root = os.path.join(local_dir, VERSIONS_DIR)
    if not os.path.isdir(root):
        return []
    return sorted(t for t in os.listdir(root) if not t.endswith(".partial"))


def check_free(local_dir: str, tag: str) -> None:
    """Raise :class:`VersionExistsError` when ``tag`` was already published from ``local_dir``."""
    check_tag(tag)
    if os.path.exists(version_dir(local_dir, tag)):
        raise VersionExistsError(
            f"version={tag!r} already exists in {version_dir(local_dir, tag)}; publish under a new tag"
        )


def snapshot(local_dir: str, tag: str) -> str:
    """Keep a copy of the current working tree as ``versions/<tag>/``; returns its path.

    The caller holds ``local_dir``'s lock (:func:`hf_vitcurate.hub.publish` does), so the
    tree is the one it just wrote.
    """
    check_free(local_dir, tag)
    target = version_dir(local_dir, tag)
    tmp = target + ".partial"  # a crash leaves no half snapshot under the real tag name
    shutil.rmtree(tmp, ignore_errors=True)
    for rel in repo_files(local_dir):
        dst = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(local_dir, rel), dst)  # a copy: never a link to the working file
    os.makedirs(tmp, exist_ok=True)
    os.replace(tmp, target)
    return target
