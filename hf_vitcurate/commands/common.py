"""Helpers shared by subcommands: reading inputs and writing outputs the same way everywhere."""

from __future__ import annotations

import argparse
import inspect
import json
import os
from collections.abc import Callable
from typing import Any

from datasets import Dataset, DatasetDict

from ..errors import ConfigError, NotFoundError

# Below this many rows, saving and loading show no progress bars: they take well under a second.
SMALL = 10_000


def load_input(
    path: str | argparse.Namespace,
    format: str = "auto",
    image_root: str | None = None,
    source: str | None = None,
    *,
    field: str | None = None,
    instruction: str | None = None,
    allow_outside_root: bool | None = None,
) -> Dataset:
    """A dataset saved with ``save_to_disk`` or any file/repo :func:`hf_vitcurate.load_vit` reads.

    ``path`` may be the namespace :func:`add_input_args` filled: ``load_input(args)`` reads
    ``input``, ``--format``, ``--image-root``, ``--source``, ``--field``, ``--instruction``
    and ``--allow-outside-root``. ``field`` (the records list inside one JSON object),
    ``instruction`` (caption files' human turn) and ``allow_outside_root`` go to
    ``load_vit`` only when given. Every output :func:`save_output` writes reads back,
    0-row ones included.
    """
    if isinstance(path, argparse.Namespace):
        args = path
        path, format, image_root, source = args.input, args.format, args.image_root, args.source
        field, instruction = getattr(args, "field", None), getattr(args, "instruction", None)
        allow_outside_root = getattr(args, "allow_outside_root", None)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "dataset_info.json")):
        from ..formats.reading import load_saved

        ds = load_saved(path)
        if isinstance(ds, DatasetDict):
            raise ConfigError(f"{path} holds a DatasetDict (splits {list(ds)}); give one split's folder")
        return ds
    from .. import load_vit

    extra = {k: v for k, v in (("field", field), ("instruction", instruction), ("allow_outside_root", allow_outside_root)) if v is not None}
    return load_vit(path, format=format, image_root=image_root, source=source, **extra)


def save_output(ds: Dataset | DatasetDict, path: str) -> None:
    """Write ``ds`` to ``path``: ``.jsonl``/``.json``/``.parquet`` by suffix, else ``save_to_disk``.

    A 0-row dataset is written so that :func:`load_input` (and ``load_from_disk``) read it
    back: a folder gets one empty data file (``save_to_disk`` alone writes none, and
    ``load_from_disk`` then fails). A ``DatasetDict`` goes to a folder, its empty splits too.
    """
    if isinstance(ds, DatasetDict):
        ds.save_to_disk(path, num_shards={k: 1 if len(v) == 0 else None for k, v in ds.items()})
    elif path.endswith(".parquet"):
        write_parquet(ds, path)
    elif path.endswith(".jsonl"):
        ds.to_json(path, lines=True)
    elif path.endswith(".json"):
        ds.to_json(path, lines=False)
    else:
        ds.save_to_disk(path, **({"num_shards": 1} if len(ds) == 0 else {}))


def write_parquet(ds: Dataset, path: str) -> None:
    """``ds.to_parquet(path)`` (same bytes) plus the provenance, which ``load_vit`` restores when it reads the file."""
    from .. import provenance
    from ..hub.layout import write_parquet as write
    from ..hub.layout import writer_batch_size

    write(ds, path, writer_batch_size(ds), embed=False, metadata=provenance.parquet_metadata(ds))


def add_input_args(parser) -> None:
    parser.add_argument("input", help="file, folder saved with save_to_disk, or Hub repo id")
    parser.add_argument("--format", default="auto", help="input format (default: detect)")
    parser.add_argument("--image-root", default=None, help="folder that relative image paths are under")
    parser.add_argument("--source", default=None, help="value of the `source` column (default: file name)")
    parser.add_argument("--field", default=None,
                        help="JSON file that is one object: the key of its list of records (default: detect; caption files: annotations)")
    parser.add_argument("--instruction", default=None,
                        help="caption files: the human turn before each caption (default: 'Describe the image concisely.')")
    parser.add_argument("--allow-outside-root", dest="allow_outside_root", action=argparse.BooleanOptionalAction, default=None,
                        help="read image paths that resolve outside --image-root (../, absolute paths, symlinks out); "
                             "default: refused in foreign formats, allowed in canonical files")


def add_release_args(parser, repo_id: str, out: str) -> None:
    """``--out``, ``--repo-id``, ``--version`` and ``--push``: the options every dataset script's release shares.

    Example: ``add_release_args(p, "hf-vitcurate/shapesworld-svit-core", "out/svit_core")``.
    """
    parser.add_argument("--out", default=out, help=f"output folder (default: {out})")
    parser.add_argument("--repo-id", default=repo_id, help="repo id for the card/publish")
    parser.add_argument("--version", default=None, help="publish version tag (e.g. v1)")
    parser.add_argument("--push", action="store_true", help="also push to the Hub (needs a token)")


def default_of(fn: Callable, name: str) -> Any:
    """The default of parameter ``name`` in ``fn``'s signature: the CLI's one source of truth.

    >>> def f(ds, *, n=5): ...
    >>> default_of(f, "n")
    5
    """
    param = inspect.signature(fn).parameters[name]
    if param.default is inspect.Parameter.empty:
        raise TypeError(f"{fn.__qualname__}() has no default for {name!r}")
    return param.default


def option(parser, fn: Callable, name: str, help: str = "", *, flag: str | None = None, **kwargs) -> None:
    """Add ``--name-with-dashes`` whose default (and type) come from ``fn``'s signature.

    Booleans become ``--flag/--no-flag``; ``None`` defaults need ``type=`` in ``kwargs``.
    The help text gets "(default: ...)" appended.

    >>> import argparse
    >>> def f(ds, *, tau=1.0, standardize=False): ...
    >>> p = argparse.ArgumentParser()
    >>> option(p, f, "tau"); option(p, f, "standardize")
    >>> vars(p.parse_args(["--tau", "0.5"]))
    {'tau': 0.5, 'standardize': False}
    """
    import argparse

    default = default_of(fn, name)
    flag = flag or "--" + name.replace("_", "-")
    if isinstance(default, bool):
        kwargs.setdefault("action", argparse.BooleanOptionalAction)
    elif default is not None and "type" not in kwargs and "choices" not in kwargs and "action" not in kwargs:
        kwargs["type"] = type(default)
    shown = f"(default: {default})"
    parser.add_argument(flag, dest=name, default=default, help=f"{help} {shown}".strip(), **kwargs)


def print_summary(summary: dict[str, Any]) -> None:
    """Print a command's closing summary: one JSON object (output path, rows, the key figures)."""
    print(json.dumps(summary, indent=2, default=str), flush=True)


def quiet_if_small(n_rows: int) -> None:
    """Turn off ``datasets``' progress bars for small data (saving 90 rows needs no bar)."""
    if n_rows < SMALL:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()


def check_model(model: str) -> None:
    """Raise :class:`~hf_vitcurate.errors.NotFoundError` naming ``--model`` when it is a local path that does not exist.

    A Hub id (``org/name``) is left to ``from_pretrained``; a path (absolute, relative with
    ``./``, or with more than one ``/``) must be a folder.

    >>> check_model("llava-hf/llava-1.5-7b-hf")
    """
    looks_local = model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model
    if looks_local and not os.path.isdir(os.path.expanduser(model)):
        raise NotFoundError(f"--model: no checkpoint folder at {model}")
