"""Publishing: push_to_hub layout, load_dataset round trip, card, manifest, versions, push plan.

The Hub is unreachable here, so pushes go to the Hub API server of tests/hub_server.py on
127.0.0.1 (what it received is asserted); tests/test_hub_roundtrip.py reads them back with
``load_dataset``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from datasets import Dataset, DatasetDict, Value, load_dataset
from huggingface_hub import DatasetCard
from PIL import Image as PILImage

from hf_vitcurate import __version__, provenance
from hf_vitcurate.hub import (
    VersionExistsError,
    layout,
    list_versions,
    manifest,
    plan_operations,
    publish,
    upload,
    would_change,
)
from hf_vitcurate.schema import FEATURES, validate
from hub_server import HubServer, point_clients_at


def _image(rng, size=(12, 10)) -> PILImage.Image:
    return PILImage.fromarray((rng.random((size[1], size[0], 3)) * 255).astype("uint8"))


def _rows(n, seed, source, image_dir=None):
    """Canonical rows: text-only, one-image and two-image rows; images as PIL or as files on disk."""
    rng = np.random.default_rng(seed)
    rows = {"id": [], "images": [], "conversations": [], "source": [], "task": []}
    for i in range(n):
        k = i % 3  # 0, 1 or 2 images
        imgs = [_image(rng) for _ in range(k)]
        if image_dir is not None:  # external files: publish must embed their bytes
            paths = []
            for j, im in enumerate(imgs):
                paths.append(os.path.join(image_dir, f"{source}-{seed}-{i}-{j}.png"))
                im.save(paths[-1])
            imgs = paths
        rows["id"].append(f"{source}-{seed}-{i:03d}")
        rows["images"].append(imgs)
        rows["conversations"].append([
            {"from": "human", "value": "<image>" * k + f"How many shapes in picture {i}?"},
            {"from": "gpt", "value": f"There are {i % 5} shapes."},
        ])
        rows["source"].append(source)
        rows["task"].append("short_vqa" if i % 2 else "conversation")
    return rows


def _curate(rows, seed, keep_every=1):
    """Convert → validate (lenient) → score → select, recording provenance like the real stages."""
    ds = Dataset.from_dict(rows, features=FEATURES)
    src = rows["source"][0]
    ds = provenance.record(ds, f"convert {src}", kind="convert", rows_in=len(ds), params={"source": src, "format": "llava"})
    kept, rejected = validate(ds)
    rng = np.random.default_rng(seed)
    kept = kept.add_column("sq", rng.random(len(kept)).astype("float32").tolist(), feature=Value("float32"))
    kept = kept.add_column("necessity_tokens", rng.integers(1, 40, len(kept)).tolist(), feature=Value("int64"))
    kept = kept.add_column("_truth", ["clean"] * len(kept))
    idx = list(range(0, len(kept), keep_every))
    out = provenance.record(kept.select(idx), "nbgs", kind="select", rows_in=len(kept),
                            params={"k": 4, "tau": 1.0}, model="tiny-llava", seed=seed, parent=kept)
    return out, rejected


def _bad_rows(rows):
    """Two broken rows, so validation rejects them with reasons the card must show."""
    rows["id"] += ["bad-1", "bad-2"]
    rows["images"] += [[], []]
    rows["conversations"] += [[{"from": "human", "value": "Hi"}], [{"from": "human", "value": "<image> what?"},
                                                                  {"from": "gpt", "value": "x"}]]
    rows["source"] += [rows["source"][0]] * 2
    rows["task"] += ["conversation"] * 2
    return rows


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """Two configs with images (bytes and external files), three splits, and the rejected rows."""
    image_dir = str(tmp_path_factory.mktemp("images"))
    alpha_train, rejected = _curate(_bad_rows(_rows(14, 0, "shapes_conv")), seed=0)
    alpha_test, _ = _curate(_rows(5, 1, "shapes_conv"), seed=1)
    beta_train, _ = _curate(_rows(9, 2, "shapes_vqa", image_dir=image_dir), seed=2)
    tree = {
        "alpha": DatasetDict({"train": alpha_train, "test": alpha_test}),
        "beta": DatasetDict({"train": beta_train}),
    }
    return tree, rejected


CARD_DATA = {
    "pretty_name": "ShapesWorld mix",
    "sources": {"shapes_conv": {"license": "cc-by-4.0", "url": "https://example.org/conv"}, "shapes_vqa": "cc-by-4.0"},
    "tables": {"DQ matrix": [{"tuned on": "alpha", "alpha": 1.0, "beta": 0.42}]},
}


@pytest.fixture(scope="module")
def published(curated, tmp_path_factory):
    tree, rejected = curated
    out = str(tmp_path_factory.mktemp("pub") / "repo")
    publish(tree, "me/shapes-mix", local_dir=out, card="revo_lion", card_data=CARD_DATA, rejected=rejected, version="v1")
    return out


def _same_rows(loaded: Dataset, original: Dataset) -> None:
    assert loaded.features == original.features
    assert len(loaded) == len(original)
    assert loaded.remove_columns("images").to_dict() == original.remove_columns("images").to_dict()
    for a, b in zip(loaded["images"], original["images"]):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert x.size == y.size and np.array_equal(np.asarray(x.convert("RGB")), np.asarray(y.convert("RGB")))


def test_round_trip_every_config_and_split(curated, published, tmp_path):
    tree, _ = curated
    for config, dd in tree.items():
        loaded = load_dataset(published, config, cache_dir=str(tmp_path / "cache"))
        assert set(loaded) == set(dd)
        for split in dd:
            _same_rows(loaded[split], dd[split])
    # The snapshot of the version loads the same way (the local `revision="v1"`).
    v1 = load_dataset(os.path.join(published, "versions", "v1"), "beta", split="train", cache_dir=str(tmp_path / "c2"))
    _same_rows(v1, tree["beta"]["train"])


def test_layout_is_push_to_hub_layout(curated, published, tmp_path):
    """Same paths, same Parquet bytes and same README YAML as datasets' push_to_hub would write."""
    from datasets.arrow_dataset import _get_updated_dataset_card
    from datasets.splits import SplitInfo
    from datasets.table import embed_table_storage
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    tree, _ = curated
    files = layout.repo_files(published)
    assert "data/alpha/train-00000-of-00001.parquet" in files and "data/beta/train-00000-of-00001.parquet" in files
    assert not any(f.startswith("versions/") for f in files)

    # Shard bytes: push_to_hub embeds with map(embed_table_storage) then to_parquet (beta's images are files).
    ds = tree["beta"]["train"]
    batch = layout.get_writer_batch_size_from_features(ds.features) or layout.get_writer_batch_size_from_data_size(
        len(ds), ds._estimate_nbytes())
    ref = ds.with_format("arrow").map(embed_table_storage, batched=True, batch_size=batch, keep_in_memory=True)
    ref.to_parquet(str(tmp_path / "ref.parquet"), batch_size=batch)
    with open(tmp_path / "ref.parquet", "rb") as a, open(os.path.join(published, "data/beta/train-00000-of-00001.parquet"), "rb") as b:
        assert a.read() == b.read()

    # README YAML: replay push_to_hub's card update config by config on an empty repo folder.
    repo = tmp_path / "replay"
    repo.mkdir()
    fs = DirFileSystem(path=str(repo), fs=LocalFileSystem())
    man = manifest.load_manifest(published)
    for config, dd in tree.items():
        splits = [SplitInfo(name=s, num_bytes=d._estimate_nbytes(), num_examples=len(d)) for s, d in dd.items()]
        sizes = [man["configs"][config]["splits"][s]["parquet_bytes"] for s in dd]
        card, _ = _get_updated_dataset_card(fs=fs, config_name=config, splits_info=splits, features=dd["train"].features,
                                            data_dir=f"data/{config}", set_default=None, uploaded_sizes=sizes,
                                            deleted_sizes=[], remove_other_splits=True)
        (repo / "README.md").write_text(str(card))
    theirs = DatasetCard.load(str(repo / "README.md")).data
    ours = DatasetCard.load(os.path.join(published, "README.md")).data
    assert ours["dataset_info"] == theirs["dataset_info"] and ours["configs"] == theirs["configs"]


def test_default_config_and_sharding(curated, tmp_path):
    tree, _ = curated
    dd = DatasetDict({"train": tree["alpha"]["train"]})
    out = publish(dd, "me/one", local_dir=str(tmp_path / "one"), max_shard_size=2000)
    n = layout.num_shards_for(dd["train"], 2000)
    assert n > 1
    shards = [f for f in layout.repo_files(out) if f.startswith("data/")]
    assert shards == [f"data/train-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    _same_rows(load_dataset(out, split="train", cache_dir=str(tmp_path / "cache")), dd["train"])
    # load_dataset cannot read a split without rows, so publish refuses one up front.
    with pytest.raises(ValueError, match="no rows"):
        publish(DatasetDict({"train": dd["train"], "test": dd["train"].select([])}), "me/one", local_dir=out)


def test_card_yaml_counts_rejections_and_plots(curated, published):
    tree, rejected = curated
    card = DatasetCard.load(os.path.join(published, "README.md"))
    meta = card.data.to_dict()
    assert meta["license"] == "cc-by-4.0"
    assert "visual-question-answering" in meta["task_categories"] and meta["size_categories"] == ["n<1K"]
    assert "revo-lion" in meta["tags"]
    counts = {(i["config_name"], s["name"]): s["num_examples"] for i in meta["dataset_info"] for s in i["splits"]}
    assert counts == {(c, s): len(d) for c, dd in tree.items() for s, d in dd.items()}
    text = card.text
    # Rejected rows by reason: from the validate step and from the rejected dataset given to publish.
    reasons = {r: 0 for r in rejected["reject_reason"]}
    assert set(reasons) == {"last_not_gpt", "image_placeholder_mismatch"}
    for reason in reasons:
        assert f"| {reason} | 1 |" in text
    # Every step with its parameters, model and seed; sources with licenses and counts in/out.
    assert "| nbgs | select |" in text and "tiny-llava" in text and '"tau": 1.0' in text
    assert "| shapes_conv | cc-by-4.0 | 21 | 19 |" in text  # 16+5 converted, 14+5 kept
    assert f'load_dataset({json.dumps(published)}, "alpha")' in text and "versions/v1/" in text  # not pushed
    assert f"hf_vitcurate {__version__}" in text
    assert "### DQ matrix" in text and "| alpha | 1 | 0.42 |" in text
    # Score histograms for numeric stage columns only (never `_truth`), linked and present.
    links = [line[line.index("](") + 2 : -1] for line in text.splitlines() if line.startswith("![")]
    assert "assets/alpha/sq.png" in links and "assets/beta/necessity_tokens.png" in links
    assert not any("_truth" in link for link in links)
    for link in links:
        with open(os.path.join(published, link), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_card_statistics_are_the_columns_own(tmp_path):
    """A constant column shows its value as min and max; NaN is a null, out of n, mean and histogram."""
    from hf_vitcurate.hub.plots import column_stats

    ds = Dataset.from_dict({"c": [0.3] * 4, "necessity": [float("nan"), 1.0, 3.0, None], "k": [7, 7, 7, 7]})
    const = column_stats(ds, "c")
    assert (const["min"], const["max"], const["n"], sum(const["counts"])) == (0.3, 0.3, 4, 4)
    assert (column_stats(ds, "k")["min"], column_stats(ds, "k")["max"]) == (7, 7)
    nan = column_stats(ds, "necessity")
    assert (nan["n"], nan["nulls"], nan["mean"], nan["min"], nan["max"], sum(nan["counts"])) == (2, 2, 2.0, 1.0, 3.0, 2)


def test_card_load_snippet_loads_and_urls_exist(curated, tmp_path):
    """Not pushed: the snippet reads the local folder and runs; the card names only URLs it was given."""
    import re

    tree, _ = curated
    out = publish({"beta": tree["beta"]}, "me/never-pushed", local_dir=str(tmp_path / "repo"), card_data=CARD_DATA)
    text = DatasetCard.load(os.path.join(out, "README.md")).text
    code = text.split("## Load it", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the card's own snippet, run as a reader would
    assert len(scope["ds"]["train"]) == len(tree["beta"]["train"])
    assert 'load_dataset("me/never-pushed"' not in text
    assert set(re.findall(r"https?://[^\s)\]]+", text)) <= {"https://example.org/conv"}


def test_every_card_template_renders(curated, tmp_path):
    tree, _ = curated
    dd = {"beta": tree["beta"]}
    for name in ("generic", "mllm_selector", "svit_core", "mminstruct", "individual_select"):
        out = publish(dd, "me/x", local_dir=str(tmp_path / name), card=name, card_data={"extra_fact": 7})
        card = DatasetCard.load(os.path.join(out, "README.md"))
        assert card.data.license == "unknown" and "## Curation steps" in card.text and "extra_fact" in card.text
    custom = tmp_path / "mine.md"
    custom.write_text('{% extends "generic.md" %}{% block method %}## My method{% endblock %}')
    out = publish(dd, "me/x", local_dir=str(tmp_path / "custom"), card=str(custom))
    assert "## My method" in DatasetCard.load(os.path.join(out, "README.md")).text


def test_manifest_stable_and_sensitive_to_selection(curated, published):
    tree, rejected = curated
    kwargs = {"card": "revo_lion", "card_data": CARD_DATA, "rejected": rejected}
    m = manifest.load_manifest(published)
    assert m["identity_sha256"] == manifest.identity_sha256(manifest.describe(tree, **kwargs))
    split = m["configs"]["alpha"]["splits"]["train"]
    assert split["num_rows"] == len(tree["alpha"]["train"]) and split["files"] and split["fingerprint"]
    # ids hash = sha256 of sorted ids, one per line (same definition as select.common.ids_hash).
    import hashlib
    ids = sorted(tree["alpha"]["train"]["id"])
    assert split["ids_sha256"] == hashlib.sha256("".join(f"{i}\n" for i in ids).encode()).hexdigest()
    assert not would_change(tree, published, **kwargs)
    # A different selection (one row fewer) or different card data would publish something else.
    other = dict(tree)
    other["beta"] = DatasetDict({"train": tree["beta"]["train"].select(range(len(tree["beta"]["train"]) - 1))})
    assert would_change(other, published, **kwargs)
    assert would_change(tree, published, card="revo_lion", card_data={**CARD_DATA, "license": "mit"}, rejected=rejected)
    assert would_change(tree, str(published) + "-nothing-here")


def test_versions_are_never_overwritten(curated, tmp_path):
    tree, _ = curated
    out = str(tmp_path / "repo")
    small = {"beta": DatasetDict({"train": tree["beta"]["train"].select(range(3))})}
    publish(small, "me/v", local_dir=out, version="v1")
    with pytest.raises(VersionExistsError):
        publish({"beta": tree["beta"]}, "me/v", local_dir=out, version="v1")
    publish({"beta": tree["beta"]}, "me/v", local_dir=out, version="v2")
    assert list_versions(out) == ["v1", "v2"]
    cache = str(tmp_path / "cache")
    assert len(load_dataset(os.path.join(out, "versions", "v1"), "beta", split="train", cache_dir=cache)) == 3
    assert len(load_dataset(os.path.join(out, "versions", "v2"), "beta", split="train", cache_dir=cache)) == 9
    assert len(load_dataset(out, "beta", split="train", cache_dir=cache)) == 9
    assert manifest.load_manifest(os.path.join(out, "versions", "v1"))["version"] == "v1"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The Hub API server of tests/hub_server.py on 127.0.0.1, with both clients pointed at it."""
    with HubServer(token=SECRET) as server:
        point_clients_at(server.url, monkeypatch, str(tmp_path / "hf-cache"))
        monkeypatch.setenv("HF_TOKEN", SECRET)
        yield server


SECRET = "hf_SENTINEL_token_never_written_0123456789"


def test_push_plans_one_commit_and_a_tag(curated, tmp_path, hub):
    tree, rejected = curated
    stale = ["data/alpha/train-00000-of-00002.parquet", "data/old/train-00000-of-00001.parquet", "LICENSE"]
    hub.add_repo("me/shapes-mix", {f: b"old" for f in stale + ["README.md"]})
    out = str(tmp_path / "repo")
    publish(tree, "me/shapes-mix", local_dir=out, version="v1", push=True, private=True, rejected=rejected)

    assert hub.requests.count(("POST", "commit")) == 1  # exactly one commit
    adds = hub.committed
    assert adds == [f for f in adds if f not in ("README.md", "curation.json")] + ["README.md", "curation.json"]
    assert sorted(adds) == layout.repo_files(out) and not any(a.startswith("versions/") for a in adds)
    assert "data/alpha/train-00000-of-00001.parquet" in adds and "assets/alpha/sq.png" in adds
    assert sorted(hub.deleted) == stale[:2]  # old shards go, files publish does not own stay
    assert sorted(hub.files("me/shapes-mix")) == sorted(layout.repo_files(out) + ["LICENSE"])
    assert hub.tags("me/shapes-mix") == {"v1": hub.repos[("datasets", "me/shapes-mix")].branches["main"]}
    assert list_versions(out) == ["v1"]
    # The token went to the server, and into no file anywhere under tmp (caches included).
    for root, _, names in os.walk(tmp_path):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                assert SECRET.encode() not in f.read()

    # A tag that exists on the Hub is refused before anything is written or committed.
    hub.add_repo("me/tagged", {"README.md": b"x"}, tags=["v1", "v2"])
    with pytest.raises(VersionExistsError):
        publish({"beta": tree["beta"]}, "me/tagged", local_dir=str(tmp_path / "tagged"), version="v2", push=True)
    assert hub.requests.count(("POST", "commit")) == 1 and not os.path.exists(tmp_path / "tagged" / "README.md")


def test_large_upload_splits_commits_card_last(published, monkeypatch):
    monkeypatch.setattr(upload, "MAX_OPERATIONS_PER_COMMIT", 2)
    ops = plan_operations(published, remote_files=["data/gone-00000-of-00001.parquet"])
    batches = upload.commit_batches(ops)
    assert len(batches) > 1 and all(len(b) <= 2 for b in batches)
    assert [op.path_in_repo for op in batches[-1]] == ["README.md", "curation.json"]
    kinds = [type(op).__name__ for b in batches for op in b]
    assert kinds == sorted(kinds[:-2]) + ["CommitOperationAdd"] * 2  # adds, then the deletion, then the card
    assert sum(len(b) for b in batches) == len(ops)


def test_cli_publish(curated, tmp_path, capsys):
    from hf_vitcurate.cli import main

    tree, _ = curated
    tree["beta"].save_to_disk(str(tmp_path / "in"))
    (tmp_path / "card.json").write_text(json.dumps({"sources": {"shapes_vqa": "mit"}}))
    code = main([
        "publish", str(tmp_path / "in"), "--repo-id", "me/cli", "--local-dir", str(tmp_path / "out"), "--configs", "vqa",
        "--card", "svit_core", "--card-data", str(tmp_path / "card.json"), "--version", "v1",
    ])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == {"vqa": {"train": len(tree["beta"]["train"])}}
    assert DatasetCard.load(str(tmp_path / "out" / "README.md")).data.license == "mit"
    assert list_versions(str(tmp_path / "out")) == ["v1"]
    # A folder of saved datasets publishes one config per subfolder.
    for name in ("alpha", "beta"):
        tree[name].save_to_disk(str(tmp_path / "many" / name))
    assert main(["publish", str(tmp_path / "many"), "--repo-id", "me/many", "--local-dir", str(tmp_path / "out2")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["rows"]) == {"alpha", "beta"} and report["rows"]["alpha"]["test"] == len(tree["alpha"]["test"])


def test_shards_equal_push_to_hub_writer_on_many_chunks(tmp_path):
    """Pages depend on Arrow chunking: with 20k rows in 700-row chunks the files must still match."""
    from datasets import concatenate_datasets
    from datasets.table import embed_table_storage

    rng = np.random.default_rng(0)
    words = np.array(["the", "red", "blue", "small", "circle", "square", "left", "of", "is", "a"])

    def piece(k, n=700):
        text = [" ".join(w) for w in words[rng.integers(0, len(words), (n, int(rng.integers(3, 20))))]]
        return Dataset.from_dict({
            "id": [f"r{k}-{i}" for i in range(n)], "images": [[]] * n, "source": ["s"] * n, "task": ["t"] * n,
            "conversations": [[{"from": "human", "value": t + "?"}, {"from": "gpt", "value": t + "."}] for t in text],
        }, features=FEATURES)

    ds = concatenate_datasets([piece(k) for k in range(30)])
    out = layout.write_split(ds, str(tmp_path), "data", "train")
    batch = layout.get_writer_batch_size_from_data_size(len(ds), ds._estimate_nbytes())
    ref = ds.with_format("arrow").map(embed_table_storage, batched=True, batch_size=batch, keep_in_memory=True)
    ref.to_parquet(str(tmp_path / "ref.parquet"), batch_size=batch)
    assert out.files == ["data/train-00000-of-00001.parquet"]
    assert (tmp_path / "ref.parquet").read_bytes() == (tmp_path / out.files[0]).read_bytes()


def test_round_trip_shapesworld_when_available(tmp_path):
    """The same round trip on ShapesWorld sources (one config per source), once the generator exists."""
    import re
    from collections.abc import Mapping

    from hf_vitcurate import synthetic

    if not hasattr(synthetic, "shapesworld"):
        pytest.skip("hf_vitcurate.synthetic.shapesworld is not available yet")
    pool = synthetic.shapesworld(4, seed=0)
    items = pool.items() if isinstance(pool, Mapping) else [("default", pool)]
    tree = {}
    for name, value in items:
        dd = value if isinstance(value, DatasetDict) else DatasetDict({"train": value})
        dd = DatasetDict({s: d.select(range(min(len(d), 20))) for s, d in dd.items() if len(d)})
        if dd:
            tree[re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name))] = dd
    out = publish(tree, "me/shapesworld", local_dir=str(tmp_path / "repo"))
    for config, dd in tree.items():
        loaded = load_dataset(out, config, cache_dir=str(tmp_path / "cache"))
        for split in dd:
            assert loaded[split].features == dd[split].features
            if "images" in dd[split].column_names and dd[split].features["images"] == FEATURES["images"]:
                _same_rows(loaded[split], dd[split])
            else:
                assert loaded[split].to_dict() == dd[split].to_dict()


def test_publish_names_the_row_of_a_missing_image(tmp_path):
    """Unvalidated rows whose image file is gone: one NotFoundError naming row, field and path."""
    from datasets import Features, Image, List, Value

    from hf_vitcurate.errors import NotFoundError
    from hf_vitcurate.hub import publish

    gone = str(tmp_path / "gone.png")
    ds = Dataset.from_dict({"id": ["a", "b"], "images": [[], [gone]]},
                           features=Features({"id": Value("string"), "images": List(Image())}))
    with pytest.raises(NotFoundError, match=r"row id='b' field='images': no such file or folder: .*gone\.png"):
        publish(ds, "t/x", local_dir=str(tmp_path / "hub"))


def test_hashes_computed_during_the_write_equal_the_plain_ones(curated, published):
    """curation.json's hashes are computed in a thread during the write; they must equal the plain functions'."""
    from hf_vitcurate.columns import ids_sha256
    from hf_vitcurate.identity import data_fingerprint

    tree, _ = curated
    m = manifest.load_manifest(published)
    for config, dd in tree.items():
        for split, ds in dd.items():
            got = m["configs"][config]["splits"][split]
            assert got["content_sha256"] == data_fingerprint(ds).removeprefix("sha256:")
            assert got["ids_sha256"] == ids_sha256(ds) and got["sources"] == manifest.value_counts(ds, "source")


def test_shards_with_image_bytes_equal_push_to_hub_writer(curated, published, tmp_path):
    """alpha's images are bytes without paths: they are not re-embedded, and the files still match push_to_hub's."""
    from datasets.table import embed_table_storage

    tree, _ = curated
    ds = tree["alpha"]["train"]
    assert not layout._has_paths(ds.with_format("arrow")[:]) and layout._has_paths(tree["beta"]["train"].with_format("arrow")[:])
    batch = layout.get_writer_batch_size_from_features(ds.features) or layout.get_writer_batch_size_from_data_size(
        len(ds), ds._estimate_nbytes())
    ref = ds.with_format("arrow").map(embed_table_storage, batched=True, batch_size=batch, keep_in_memory=True)
    ref.to_parquet(str(tmp_path / "ref.parquet"), batch_size=batch)
    ours = os.path.join(published, "data/alpha/train-00000-of-00001.parquet")
    assert (tmp_path / "ref.parquet").read_bytes() == open(ours, "rb").read()


def test_publish_draws_histograms_without_pyplot(tmp_path):
    """pyplot's import alone cost ~0.7 s of every publish; the Agg Figure does not need it."""
    import subprocess
    import sys

    code = (
        "import sys; from datasets import Dataset; from hf_vitcurate.hub import publish\n"
        "ds = Dataset.from_dict({'id': ['a', 'b'], 'images': [[], []], 'source': ['s'] * 2, 'task': ['t'] * 2,\n"
        "    'conversations': [[{'from': 'human', 'value': 'q'}, {'from': 'gpt', 'value': 'a'}]] * 2, 'sq': [0.1, 0.9]})\n"
        f"publish(ds, 'me/x', local_dir={str(tmp_path / 'out')!r})\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "out" / "assets" / "default" / "sq.png").stat().st_size > 1000


@pytest.mark.parametrize("size", ["lots", 0, -5, "0MB", None])
def test_check_shard_size_refuses_what_is_not_a_size(size):
    from hf_vitcurate.errors import ConfigError

    with pytest.raises(ConfigError, match="is not a size"):
        layout.check_shard_size(size)
    assert layout.check_shard_size("500MB") == 500_000_000 and layout.check_shard_size(2000) == 2000
