"""How many rows a Hub dataset's split has, found before its data is downloaded (the Space's row limit).

:func:`known_rows`: a Parquet split from its files' footers, another from its card;
:func:`streamed_rows`: by streaming, up to a stop. ``space.actions.load_hub`` refuses a split
over the limit with either, so an over-limit repo is never downloaded whole.

Example (against a Hub, so not run here):
    >>> known_rows("org/pool", "train")                                  # doctest: +SKIP
    1200
"""

from __future__ import annotations

from ..errors import ConfigError, NotFoundError
from .limits import MB


def known_rows(repo_id: str, split: str, *, max_bytes: float | None = None) -> int:
    """The rows of ``split`` known without downloading its data (0 when they are not known).

    A Parquet split (every data file ``.parquet``) is counted from its files' footers, never
    from the card, which may state fewer rows than the files hold; 0 when a footer cannot be
    read (then the split is streamed). Other formats: the rows the card states, if any; their
    files are refused first when together larger than ``max_bytes`` (their sizes are asked of
    the Hub, nothing is read): a card may understate them, and counting a JSON array by
    streaming reads it whole.
    """
    from datasets import load_dataset_builder

    try:
        builder = load_dataset_builder(repo_id)
    except Exception:  # no such repo, several configs, ...: the streamed count says what is wrong
        return 0
    files = [str(f) for f in (builder.config.data_files or {}).get(split) or ()]
    if files and all(f.lower().endswith(".parquet") for f in files):
        return footer_rows(files)
    if files and max_bytes is not None:
        size = data_bytes(files)
        if size > max_bytes:
            raise ConfigError(f"the data files of {repo_id} (split {split!r}) are {size / MB:.1f} MB; this Space reads at "
                              f"most {max_bytes / MB:g} MB of data that is not Parquet (operator limit "
                              "VITCURATE_SPACE_MAX_UPLOAD_MB)")
    splits = builder.info.splits or {}
    return int(getattr(splits.get(split), "num_examples", 0) or 0)


def data_bytes(files: list[str]) -> int:
    """The total size of the data files ``files`` (``hf://`` paths), from the Hub's file listing (no data read); 0 when unknown."""
    from huggingface_hub import HfFileSystem

    fs = HfFileSystem()
    try:
        return sum(int(fs.info(f).get("size") or 0) for f in files)
    except Exception:  # a Hub hiccup: the streamed count still stops at the row limit
        return 0


def footer_rows(files: list[str]) -> int:
    """The rows of the Parquet files ``files`` (``hf://`` paths), read from their footers alone; 0 when one cannot be read.

    ``ParquetFile`` reads the tail of each file (the footer, about 64 KB) through ``HfFileSystem``'s
    ranged reads; the row groups are never fetched.
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq
    from huggingface_hub import HfFileSystem

    fs = HfFileSystem()

    def rows(path: str) -> int:
        with fs.open(path, "rb", block_size=64 * 1024) as f:  # a small block: the readahead stays in the footer
            return pq.ParquetFile(f).metadata.num_rows

    try:
        with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
            return sum(pool.map(rows, files))
    except Exception:  # a file that is not Parquet after all, a Hub hiccup: streaming counts instead
        return 0


def streamed_rows(repo_id: str, split: str, *, stop: int) -> int:
    """Rows of ``split`` counted by streaming it, stopping at ``stop``; a one-line error when they cannot be counted.

    Streaming reads the data files a batch at a time and keeps nothing on disk, so an
    over-limit repo costs at most ``stop`` rows of download, not the whole dataset. "Could
    not count" is never 0 rows: that would let ``load_vit`` download a repo of any size.
    """
    from datasets import load_dataset

    n = 0
    try:
        stream = load_dataset(repo_id, split=split, streaming=True)
        if stream.features is not None:  # decode(False) refuses unknown features (JSON without a card); nothing decodes then
            stream = stream.decode(False)
        for batch in stream.iter(batch_size=min(stop, 1000)):
            n += len(next(iter(batch.values()), ()))
            if n >= stop:
                break
    except Exception as err:  # several configs, no such split, not streamable, no such repo: the reason goes in the message
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        if isinstance(err, FileNotFoundError):
            raise NotFoundError(f"no Hub dataset {repo_id} with a split {split!r} ({reason})") from None
        raise ConfigError(f"the rows of {repo_id} (split {split!r}) cannot be counted before loading ({reason}); this Space "
                          "loads a Hub dataset only when it can count its rows first (operator limit "
                          "VITCURATE_SPACE_MAX_ROWS)") from None
    return n
