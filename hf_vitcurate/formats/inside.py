"""Image paths must stay inside ``image_root``: ``../``, absolute paths elsewhere and symlinks out are refused.

A data file names image files; a path that leaves the image folder (``../../etc/passwd``,
``/home/me/.ssh/id_rsa``, ``file:///...``, or a symlink under the folder that points out)
would be read, and embedded on publish. :func:`outside_root` finds them for a whole
column at once: directories are resolved once each (symlinks followed, ``..`` applied the
way the OS does), file symlinks are found by listing each directory once, so loading
665K rows does not stat 665K files. Paths with bytes next to them and URLs other than
``file://`` are not files here and pass.

Example:
    >>> import pyarrow as pa
    >>> images = pa.array([[{"bytes": None, "path": "/data/imgs/a.png"}], [{"bytes": None, "path": "/data/imgs/../../etc/passwd"}]])
    >>> outside_root(images, "/data/imgs")
    {1: (0, '/etc/passwd')}
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .writing import URL

_SMALL_DIR = 256  # fewer paths than this in a folder: lstat them instead of listing the folder


def outside_root(images: pa.Array | pa.ChunkedArray, root: str) -> dict[int, tuple[int, str]]:
    """``{row: (k, resolved path)}``: the first image ``k`` of each row that resolves outside ``root``."""
    images = images.combine_chunks() if isinstance(images, pa.ChunkedArray) else images
    flat = pc.list_flatten(images)
    if len(flat) == 0:
        return {}
    parent = np.asarray(pc.list_parent_indices(images))
    paths = pc.struct_field(flat, "path").cast(pa.string())
    no_bytes = pc.fill_null(pc.equal(pc.binary_length(pc.struct_field(flat, "bytes").cast(pa.binary())), 0), True)
    local = paths
    if pc.any(pc.starts_with(paths, "file://")).as_py():
        local = pc.replace_substring_regex(paths, "^file://", "")
    check = pc.fill_null(pc.not_equal(local, ""), False)
    if pc.any(pc.match_substring(local, "://")).as_py():  # plain substring first: the regex only when needed
        check = pc.and_(check, pc.invert(pc.fill_null(pc.match_substring_regex(local, URL.pattern), True)))
    idx = np.flatnonzero(np.asarray(pc.and_(check, no_bytes)))
    if not len(idx):
        return {}
    local = local.take(pa.array(idx))
    real_root = os.path.realpath(os.path.abspath(os.path.expanduser(root)))
    inside_prefix = real_root.rstrip("/") + "/"
    resolver = _Resolver()
    local = pc.if_else(pc.match_substring(local, "/"), local, pc.binary_join_element_wise("./", local, ""))
    parts = pc.split_pattern(local, "/", max_splits=1, reverse=True)  # [folder, name]; no regex
    dirs = pc.dictionary_encode(pc.list_element(parts, 0))
    names = np.asarray(pc.list_element(parts, 1).to_numpy(zero_copy_only=False), dtype=object)
    real_dirs = [resolver.real(d or "/") for d in dirs.dictionary.to_pylist()]
    dir_idx = np.asarray(dirs.indices)
    resolved: dict[int, str] = {}  # index into `local` -> real path, for the paths that need a look
    special = np.flatnonzero(np.isin(names, ["", ".", ".."]))
    for j in special:
        resolved[int(j)] = resolver.real(local[int(j)].as_py())
    order = np.argsort(dir_idx, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(dir_idx, minlength=len(real_dirs)))])
    for d, real_dir in enumerate(real_dirs):
        members = order[bounds[d] : bounds[d + 1]]
        if not (real_dir + "/").startswith(inside_prefix) and real_dir != real_root:
            resolved.update((int(j), real_dir.rstrip("/") + "/" + names[j]) for j in members if j not in resolved)
            continue
        if len(members) >= _SMALL_DIR:  # list the folder once: only its symlinks need a look
            links = resolver.links(real_dir)
            members = members[np.isin(names[members], list(links))] if links else members[:0]
        for j in members:
            full = real_dir.rstrip("/") + "/" + names[j]
            if names[j] not in ("", ".", "..") and os.path.islink(full):
                resolved[int(j)] = os.path.realpath(full)
    out: dict[int, tuple[int, str]] = {}
    starts = np.concatenate([[0], np.cumsum(np.asarray(pc.fill_null(pc.list_value_length(images), 0)))])
    for j in sorted(resolved):
        full = resolved[j]
        if not (full.startswith(inside_prefix) or full == real_root):
            row = int(parent[idx[j]])
            out.setdefault(row, (int(idx[j] - starts[row]), full))
    return out


class _Resolver:
    """``os.path.realpath`` with every folder resolved once (one lstat per new folder)."""

    def __init__(self) -> None:
        self.real = lru_cache(maxsize=None)(self._real)
        self._links: dict[str, set[str]] = {}

    def _real(self, path: str) -> str:
        path = os.path.abspath(path) if not path.startswith("/") else re.sub("/+", "/", path)
        if path == "/":
            return "/"
        head, name = os.path.split(path.rstrip("/"))
        base = self.real(head or "/")
        if name in ("", "."):
            return base
        if name == "..":
            return os.path.dirname(base) or "/"
        full = base.rstrip("/") + "/" + name
        return os.path.realpath(full) if os.path.islink(full) else full

    def links(self, real_dir: str) -> set[str]:
        """Names of the symlinks in a folder (one listing, no stat per file)."""
        if real_dir not in self._links:
            try:
                with os.scandir(real_dir) as it:
                    self._links[real_dir] = {e.name for e in it if e.is_symlink()}
            except OSError:
                self._links[real_dir] = set()
        return self._links[real_dir]
