"""What the operator of a Space allows: upload size, rows, remote code; and safe unpacking of uploads.

Limits come from keyword arguments, or from environment variables when a Space is configured
in its settings rather than on a command line:

- ``VITCURATE_SPACE_MAX_UPLOAD_MB`` (default 200): the largest file a user may upload
  (and the most an image zip may unpack to is four times that), and the most data a Hub
  split that is not Parquet may hold (its rows cannot be counted without reading it);
- ``VITCURATE_SPACE_MAX_ROWS`` (default 20000): the most rows a loaded dataset may have;
- ``VITCURATE_SPACE_MAX_MODEL_MB`` (default 5000, a third of a basic Space's 16 GB: a bf16 file
  loads in float32 on a CPU at twice its size): the most weights a checkpoint may have (the
  sizes of its weight files, known before any download);
- ``VITCURATE_SPACE_TRUST_REMOTE_CODE`` (``1`` to enable; default off): whether a checkpoint
  whose ``config.json`` names custom code (``auto_map``) may be used;
- ``VITCURATE_SPACE_WORK_DIR``: where sessions keep their files (default: a new temporary folder).

Example:
    >>> limits = Limits(max_upload_mb=1, max_rows=10)
    >>> limits.check_rows(5)
    >>> limits.check_rows(11)
    Traceback (most recent call last):
    ...
    hf_vitcurate.errors.ConfigError: the dataset has 11 rows; this Space takes at most 10 (operator limit VITCURATE_SPACE_MAX_ROWS)
"""

from __future__ import annotations

import json
import numbers
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

from ..errors import ConfigError, NotFoundError

MB = 1024 * 1024
# A zip of images may unpack to this many times the upload limit (images barely compress).
UNZIP_FACTOR = 4


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Limits:
    """The operator's limits for one running app (see the module docstring)."""

    max_upload_mb: float = 200
    max_rows: int = 20_000
    max_model_mb: float = 5_000
    trust_remote_code: bool = False
    work_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="vitcurate_space_"))

    def __post_init__(self) -> None:
        # A zero or negative limit would refuse every upload and dataset with a confusing message later.
        for key in ("max_upload_mb", "max_rows", "max_model_mb"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ConfigError(f"{key} must be a positive number, got {value!r} "
                                  f"(operator limit VITCURATE_SPACE_{key.upper()})")

    @classmethod
    def from_env(cls, **overrides) -> "Limits":
        """Limits from ``VITCURATE_SPACE_*`` variables; keyword arguments that are not ``None`` win.

        >>> Limits.from_env(max_rows=7).max_rows
        7
        """
        env = {}
        for key, kind in (("max_upload_mb", float), ("max_rows", int), ("max_model_mb", float)):
            name = f"VITCURATE_SPACE_{key.upper()}"
            if os.environ.get(name):
                try:
                    env[key] = kind(os.environ[name])
                except ValueError:
                    raise ConfigError(f"{name}={os.environ[name]!r} is not a number; set it to a "
                                      f"{'whole ' if kind is int else ''}number or unset it") from None
        if _env_flag("VITCURATE_SPACE_TRUST_REMOTE_CODE"):
            env["trust_remote_code"] = True
        if os.environ.get("VITCURATE_SPACE_WORK_DIR"):
            env["work_dir"] = os.environ["VITCURATE_SPACE_WORK_DIR"]
        env.update({k: v for k, v in overrides.items() if v is not None})
        limits = cls(**env)  # __post_init__ refuses a zero or negative limit
        os.makedirs(limits.work_dir, exist_ok=True)
        return limits

    def check_rows(self, n: int) -> None:
        """Refuse a dataset of more than ``max_rows`` rows."""
        if n > self.max_rows:
            raise ConfigError(f"the dataset has {n} rows; this Space takes at most {self.max_rows} "
                              "(operator limit VITCURATE_SPACE_MAX_ROWS)")

    def check_upload(self, path: str) -> None:
        """Refuse a missing file or one larger than ``max_upload_mb``."""
        if not path or not os.path.isfile(path):
            raise NotFoundError(f"no such file: {path}")
        size = os.path.getsize(path)
        if size > self.max_upload_mb * MB:
            raise ConfigError(f"{os.path.basename(path)} is {size / MB:.1f} MB; this Space takes files up to "
                              f"{self.max_upload_mb:g} MB (operator limit VITCURATE_SPACE_MAX_UPLOAD_MB)")

    def check_model(self, model: str) -> None:
        """Refuse a checkpoint that is not there, that has more than ``max_model_mb`` of weights, or
        that needs custom code (``auto_map`` in its config) unless remote code is enabled.

        A local folder's ``config.json`` is read; a Hub id's is fetched alone with
        ``huggingface_hub`` (into the Hub cache that loading reads later), and its weights are
        sized from the Hub's file listing (:func:`~hf_vitcurate.space.checkpoints.hub_weight_bytes`), so a wrong id, a repo
        without ``config.json``, one too large or one with custom code is refused before a job
        starts and before any weights are downloaded.
        """
        from .checkpoints import folder_weight_bytes, hub_config, hub_weight_bytes

        path = os.path.expanduser(model)
        if os.path.isdir(path) or model.startswith((".", "/", "~")) or model.count("/") > 1:
            if not os.path.isdir(path):
                raise NotFoundError(f"no checkpoint folder at {model}")
            self.check_weights(model, folder_weight_bytes(path))
            config_path = os.path.join(path, "config.json")
            if self.trust_remote_code or not os.path.isfile(config_path):
                return
        else:
            config_path = hub_config(model)
            self.check_weights(model, hub_weight_bytes(model, os.path.dirname(config_path)))
        try:
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
        except ValueError:
            raise ConfigError(f"the checkpoint {model} has a config.json that is not valid JSON") from None
        if not self.trust_remote_code and isinstance(config, dict) and "auto_map" in config:
            raise ConfigError(f"the checkpoint {model} runs its own code (auto_map in config.json); this Space "
                              "does not run remote code (operator setting VITCURATE_SPACE_TRUST_REMOTE_CODE)")

    def check_weights(self, model: str, size: int) -> None:
        """Refuse a checkpoint of more than ``max_model_mb`` of weight files.

        >>> Limits(max_model_mb=1).check_weights("me/big", 3 * MB)
        Traceback (most recent call last):
        ...
        hf_vitcurate.errors.ConfigError: the checkpoint me/big has 3.0 MB of weights; this Space takes models up to 1 MB (operator limit VITCURATE_SPACE_MAX_MODEL_MB)
        """
        if size > self.max_model_mb * MB:
            raise ConfigError(f"the checkpoint {model} has {size / MB:,.1f} MB of weights; this Space takes models up "
                              f"to {self.max_model_mb:g} MB (operator limit VITCURATE_SPACE_MAX_MODEL_MB)")

    def check_recipe(self, recipe) -> None:
        """:meth:`check_model` on every checkpoint a parsed curate recipe names
        (:func:`~hf_vitcurate.space.checkpoints.recipe_checkpoints`); no other option may name a
        server file (:func:`~hf_vitcurate.space.checkpoints.check_no_server_files`).

        An error names where the recipe names it: ``outputs.pick.options.model: no checkpoint ...``.
        """
        from ..errors import VitCurateError
        from .checkpoints import check_no_server_files, recipe_checkpoints

        check_no_server_files(recipe)
        for where, model in recipe_checkpoints(recipe):
            try:
                self.check_model(model)
            except VitCurateError as err:
                raise type(err)(f"{where}: {err}") from None


# What sessions leave in the work folder, pruned after a day (``tiny/``, the cached models, is kept).
SESSION_FOLDERS = ("charts", "exports", "uploads", "publish", "runs", "recipes")


def prune(work_dir: str, *, max_age_s: float = 24 * 3600) -> int:
    """Remove what sessions left in ``work_dir`` more than ``max_age_s`` ago; returns how many entries went.

    A Space runs for weeks: without this its charts, zips and uploads would fill the disk.
    """
    import shutil
    import time

    removed, now = 0, time.time()
    for name in SESSION_FOLDERS:
        folder = os.path.join(work_dir, name)
        for entry in os.scandir(folder) if os.path.isdir(folder) else ():
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime > max_age_s:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.remove(entry.path)
                    removed += 1
            except FileNotFoundError:  # another app on the same work folder removed it first
                continue
    return removed


def unzip_images(path: str, folder: str, *, limits: Limits) -> str:
    """Unpack a zip of images into ``folder``; refuses paths that leave it and archives that unpack too large.

    Returns the folder that the file's relative image paths are under (the zip's root: a
    file that names ``coco/x.jpg`` needs a zip holding ``coco/x.jpg``).
    """
    limits.check_upload(path)
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"{os.path.basename(path)} is not a zip archive; upload the images as one .zip file")
    root = os.path.realpath(folder)
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        total = sum(m.file_size for m in members)
        if total > limits.max_upload_mb * MB * UNZIP_FACTOR:
            raise ConfigError(f"{os.path.basename(path)} unpacks to {total / MB:.0f} MB; this Space unpacks at most "
                              f"{limits.max_upload_mb * UNZIP_FACTOR:g} MB (operator limit VITCURATE_SPACE_MAX_UPLOAD_MB)")
        for m in members:
            target = os.path.realpath(os.path.join(root, m.filename))
            if os.path.commonpath([root, target]) != root:  # "../x" or "/etc/x" inside the zip
                raise ConfigError(f"{os.path.basename(path)} holds a path outside its folder ({m.filename}); "
                                  "zip the images with relative paths")
        archive.extractall(root)
    return root
