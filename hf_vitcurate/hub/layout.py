"""The repository layout ``push_to_hub`` uses, written to a local folder shard by shard.

``DatasetDict.push_to_hub(repo, config_name)`` puts each split in
``<data_dir>/<split>-00000-of-0000N.parquet`` (``data_dir`` = ``data`` for the
``default`` config) with images embedded as bytes, and writes README YAML with
``dataset_info`` and ``configs``. This module writes the same files, byte for byte
(tests compare them with the writer ``push_to_hub`` uses), with one difference: images
are embedded one row group at a time instead of materialising a whole shard with
``map(keep_in_memory=True)`` (and re-chunked the way ``map``'s writer chunks them, which
Parquet pages depend on), so memory stays at one row group (~100 MB) whatever the
dataset size. Named configs go under ``data/<config>/`` (``push_to_hub(...,
data_dir=f"data/{config}")``) so every data file of the repo lives under ``data/``.

Example:
    >>> from datasets import Dataset, DatasetDict
    >>> tree = as_configs(DatasetDict({"train": Dataset.from_dict({"id": ["a"]})}), None)
    >>> list(tree), data_dir_for("default"), data_dir_for("ocr")
    (['default'], 'data', 'data/ocr')
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets import Dataset, DatasetDict, DatasetInfo, Features, config

# Internal datasets API on purpose (arrow_writer's batch sizes and column options, naming's
# _split_re, Dataset._estimate_nbytes, embed_table_storage): the very calls push_to_hub makes,
# so the files are push_to_hub's byte for byte. tests/test_hub.py compares them with push_to_hub's
# writer, so a datasets release that changes these fails there first.
from datasets.arrow_writer import (
    get_parquet_column_options,
    get_writer_batch_size_from_data_size,
    get_writer_batch_size_from_features,
)
from datasets.features.features import require_decoding, require_storage_embed
from datasets.info import DatasetInfosDict
from datasets.naming import _split_re
from datasets.splits import SplitDict, SplitInfo
from datasets.table import embed_table_storage
from datasets.utils.metadata import MetadataConfigs
from datasets.utils.py_utils import convert_file_size_to_int
from huggingface_hub import DatasetCardData

from ..errors import ConfigError, NotFoundError

# Files and folders of the working tree that publish owns (replaced on each publish).
MANAGED = ("README.md", "curation.json", "data", "assets")
MAP_WRITER_BATCH_SIZE = 1000  # Dataset.map's default writer_batch_size (see _as_push_to_hub_chunks)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass
class SplitFiles:
    """What was written for one split: the paths in the repo and the sizes push_to_hub reports."""

    split: str
    files: list[str] = field(default_factory=list)
    num_examples: int = 0
    num_bytes: int = 0  # Arrow size estimate (``dataset_info.splits[].num_bytes``)
    uploaded_bytes: int = 0  # Parquet bytes (adds up to ``download_size``)


def as_configs(ds, configs: str | Sequence[str] | None) -> dict[str, DatasetDict]:
    """Normalise the input of :func:`publish` to ``{config: DatasetDict}``.

    A ``Dataset`` becomes one split (its ``split`` or ``train``); a ``DatasetDict`` is one
    config named ``configs`` (default ``"default"``); a mapping config → ``DatasetDict``
    is kept, restricted to and ordered by ``configs`` when given.
    """
    if isinstance(ds, Dataset):
        ds = DatasetDict({str(ds.split or "train"): ds})
    if isinstance(ds, DatasetDict):
        if configs is not None and not isinstance(configs, str):
            raise ConfigError(f"configs={configs!r}: for a DatasetDict, configs is the config name (a string)")
        tree = {configs or "default": ds}
    elif isinstance(ds, Mapping):
        tree = {}
        for name, value in ds.items():
            tree[str(name)] = DatasetDict({str(value.split or "train"): value}) if isinstance(value, Dataset) else value
        if configs is not None:
            wanted = [configs] if isinstance(configs, str) else list(configs)
            missing = [c for c in wanted if c not in tree]
            if missing:
                raise ConfigError(f"configs={wanted}: {missing} not in the input (it has {list(tree)})")
            tree = {c: tree[c] for c in wanted}
    else:
        raise ConfigError(f"expected a Dataset, DatasetDict or dict of DatasetDict, got {type(ds).__name__}")
    _check(tree)
    return tree


def _check(tree: dict[str, DatasetDict]) -> None:
    """The checks push_to_hub makes (names, same features per config), before anything is written."""
    if not tree:
        raise ConfigError("nothing to publish: no config")
    for name, dd in tree.items():
        if name == "data" or not _NAME_RE.match(name):
            raise ConfigError(f"config name {name!r} is not allowed (letters, digits, '_-.'; not 'data')")
        if not dd:
            raise ConfigError(f"config {name!r} has no split")
        for split, ds in dd.items():
            if not isinstance(ds, Dataset):
                raise ConfigError(f"{name}/{split}: expected a Dataset, got {type(ds).__name__}")
            if not re.match(_split_re, split):
                raise ConfigError(f"split name should match {_split_re!r}, got {split!r}")
            if len(ds) == 0:
                # load_dataset fails on a split without rows, so it could not be read back.
                raise ConfigError(f"{name}/{split} has no rows; drop the split before publishing")
        features = [ds.features for ds in dd.values()]
        if any(f != features[0] for f in features[1:]):
            raise ConfigError(f"config {name!r}: all splits must have the same features (push_to_hub requires it)")


def data_dir_for(config_name: str) -> str:
    """Folder of a config's shards: ``data`` for ``default`` (as push_to_hub), else ``data/<config>``."""
    return "data" if config_name == "default" else f"data/{config_name}"


def check_shard_size(max_shard_size: int | str) -> int:
    """``max_shard_size`` in bytes (``"500MB"``, ``10**9``); :class:`ConfigError` when it is not a size.

    >>> check_shard_size("500MB")
    500000000
    """
    try:
        size = convert_file_size_to_int(max_shard_size)
    except (ValueError, TypeError, AttributeError):  # AttributeError: None and other non-strings
        size = 0
    if size <= 0:
        raise ConfigError(f"max_shard_size={max_shard_size!r} is not a size: an integer and a unit, e.g. '500MB'")
    return size


def writer_batch_size(ds: Dataset, *, nbytes: int | None = None) -> int:
    """Rows per Parquet row group, as ``to_parquet``/push_to_hub pick them (from the features, else the size)."""
    nbytes = ds._estimate_nbytes() if nbytes is None else nbytes
    return get_writer_batch_size_from_features(ds.features) or get_writer_batch_size_from_data_size(len(ds), nbytes)


def num_shards_for(ds: Dataset, max_shard_size: int | str, *, nbytes: int | None = None) -> int:
    """The shard count push_to_hub picks: estimated size / max shard size, plus one.

    ``nbytes``: ``ds._estimate_nbytes()`` when the caller has it already (it walks every chunk).
    """
    nbytes = ds._estimate_nbytes() if nbytes is None else nbytes
    return int(nbytes / convert_file_size_to_int(max_shard_size)) + 1


def write_split(ds: Dataset, root: str, data_dir: str, split: str, max_shard_size: int | str = "500MB") -> SplitFiles:
    """Write ``ds`` as ``{root}/{data_dir}/{split}-0000i-of-0000N.parquet``, one shard at a time.

    Shards are contiguous row ranges (``Dataset.shard(contiguous=True)``) and row groups
    have the size push_to_hub picks, so the files equal push_to_hub's.
    """
    try:
        return _write_split(ds, root, data_dir, split, max_shard_size)
    except FileNotFoundError as err:  # unvalidated rows with a missing image: name the row, not a traceback
        raise NotFoundError(_missing_image(ds, err)) from err


def _write_split(ds: Dataset, root: str, data_dir: str, split: str, max_shard_size: int | str) -> SplitFiles:
    nbytes = ds._estimate_nbytes()  # once: it walks every chunk of the table
    batch_size = writer_batch_size(ds, nbytes=nbytes)
    embed = any(require_decoding(f, ignore_decode_attribute=True) for f in ds.features.values())
    num_shards = num_shards_for(ds, max_shard_size, nbytes=nbytes)
    out = SplitFiles(split=split, num_examples=len(ds), num_bytes=nbytes)
    os.makedirs(os.path.join(root, data_dir), exist_ok=True)
    for index in range(num_shards):
        # One shard is the dataset itself (shard() would build a new table object: ~0.2 s per 1M rows).
        shard = ds if num_shards == 1 else ds.shard(num_shards=num_shards, index=index, contiguous=True)
        path_in_repo = f"{data_dir}/{split}-{index:05d}-of-{num_shards:05d}.parquet"
        out.uploaded_bytes += write_parquet(shard, os.path.join(root, path_in_repo), batch_size, embed)
        out.files.append(path_in_repo)
    return out


def _missing_image(ds: Dataset, err: FileNotFoundError) -> str:
    """The message for an image file that cannot be embedded: the row's id and the path.

    Only the columns push_to_hub embeds (images, audio, ...) are read, the id of the one row found.
    """
    path = err.filename or str(err)
    table = ds.with_format("arrow")[:]  # the rows in order, a selection's mapping applied
    for name, feature in ds.features.items():
        if not require_storage_embed(feature):
            continue
        for i, value in enumerate(table.column(name).to_pylist()):
            refs = value if isinstance(value, list) else [value]
            if any(isinstance(r, dict) and r.get("path") == path for r in refs):
                row = f"row id={table.column('id')[i].as_py()!r}" if "id" in table.column_names else f"row {i}"
                return f"{row} field={name!r}: no such file or folder: {path} (run `vitcurate validate` first)"
    return f"no such file or folder: {path} (an image of the rows; run `vitcurate validate` first)"


def write_parquet(ds: Dataset, path: str, batch_size: int, embed: bool,
                  metadata: dict[bytes, bytes] | None = None) -> int:
    """``ds.to_parquet(path, batch_size)`` with external files embedded batch by batch; returns file size.

    ``metadata``: extra key-value entries for the file (the provenance, for a file that is
    read back by this package; the Hub's files get none, so they equal push_to_hub's).

    Mirrors ``datasets.io.parquet.ParquetDatasetWriter._write`` (same schema, column
    options, content-defined chunking, page index) so the bytes are the same.
    """
    schema = ds.features.arrow_schema
    cdc = config.DEFAULT_CDC_OPTIONS
    writer = pq.ParquetWriter(
        path,
        schema=schema,
        use_content_defined_chunking=cdc,
        write_page_index=True,
        **get_parquet_column_options(ds.features, schema),
    )
    rows = ds.with_format("arrow")  # public API: slices are Arrow tables in row order (a select()/shuffle() view too)
    try:
        for offset in range(0, len(ds), batch_size):
            batch = rows[offset : offset + batch_size]
            if embed:
                # Embedding rows without file paths changes nothing (and costs a Python pass per row).
                batch = _as_push_to_hub_chunks(embed_table_storage(batch) if _has_paths(batch) else batch)
            writer.write_table(batch)
        writer.add_key_value_metadata({"content_defined_chunking": json.dumps(cdc), **(metadata or {})})
    finally:
        writer.close()
    return os.path.getsize(path)


def _has_paths(table: pa.Table) -> bool:
    """True when a column push_to_hub embeds holds a path (a file to read, or a path it shortens).

    Image-like storage is a struct with ``bytes`` and ``path``; with every path null,
    ``embed_table_storage`` returns the same values. Anything else counts as having paths.
    """
    def paths_in(arr) -> bool:
        t = arr.type
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return paths_in(pc.list_flatten(arr))
        if pa.types.is_struct(t):
            names = [t.field(i).name for i in range(t.num_fields)]
            if "path" in names:
                return pc.count(pc.struct_field(arr, "path"), mode="only_valid").as_py() > 0
            return any(paths_in(pc.struct_field(arr, n)) for n in names)
        return not (pa.types.is_primitive(t) or pa.types.is_string(t) or pa.types.is_binary(t)
                    or pa.types.is_large_string(t) or pa.types.is_large_binary(t))

    features = Features.from_arrow_schema(table.schema)
    return any(paths_in(table.column(name)) for name, feat in features.items() if require_storage_embed(feat))


def _as_push_to_hub_chunks(table: pa.Table) -> pa.Table:
    """Lay out a row group in chunks of ``Dataset.map``'s default ``writer_batch_size`` (1000 rows).

    push_to_hub embeds with ``map``, whose writer combines each batch and re-splits it into
    1000-row record batches; Parquet pages depend on that chunking, so doing the same
    keeps the files byte-identical.
    """
    table = table.combine_chunks()
    return pa.Table.from_batches(table.to_batches(max_chunksize=MAP_WRITER_BATCH_SIZE), schema=table.schema)


def hub_metadata(card_data: DatasetCardData, tree: dict[str, DatasetDict], written: dict[str, dict[str, SplitFiles]]) -> None:
    """Add ``dataset_info`` and ``configs`` to ``card_data`` exactly as push_to_hub does.

    Uses the same ``DatasetInfosDict`` / ``MetadataConfigs`` calls (push_to_hub's
    ``_get_updated_dataset_card`` for a new repo), so the YAML is the same.
    """
    infos, metadata = {}, {}
    for name, dd in tree.items():
        features = next(iter(dd.values())).features
        info = DatasetInfo(config_name=name, features=features, splits=SplitDict(), download_size=0, dataset_size=0)
        for split, files in written[name].items():
            info.splits.add(SplitInfo(name=split, num_bytes=files.num_bytes, num_examples=files.num_examples))
            info.download_size += files.uploaded_bytes
            info.dataset_size += files.num_bytes
        info.size_in_bytes = info.download_size + info.dataset_size
        infos[name] = info
        data_dir = data_dir_for(name)
        metadata[name] = {"data_files": [{"split": s, "path": f"{data_dir}/{s}-*"} for s in written[name]]}
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    MetadataConfigs(metadata).to_dataset_card_data(card_data)


def repo_files(local_dir: str) -> list[str]:
    """Files of the working tree that make the repo (relative, sorted): all but hidden and ``versions/``."""
    out = []
    for dirpath, dirnames, filenames in os.walk(local_dir):
        rel_dir = os.path.relpath(dirpath, local_dir)
        # versions/ holds local snapshots of earlier releases; hidden entries are staging/caches.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (rel_dir == "." and d == "versions"))
        for name in filenames:
            if not name.startswith("."):
                out.append(os.path.normpath(os.path.join(rel_dir, name)).replace(os.sep, "/"))
    return sorted(out)


def replace_tree(staging: str, local_dir: str) -> None:
    """Move the freshly written managed entries from ``staging`` into ``local_dir``.

    Old entries are removed first; snapshots in ``versions/`` are copies, so they keep
    their content. The caller holds ``local_dir``'s lock.
    """
    import shutil

    for name in MANAGED:
        target = os.path.join(local_dir, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.remove(target)
        source = os.path.join(staging, name)
        if os.path.lexists(source):
            os.replace(source, target)
