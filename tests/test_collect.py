"""MMInstruct step (a): image embeddings, collection by similarity search, image de-duplication (ShapesWorld).

The embedder is a tiny LLaVA checkpoint whose tower sees one ShapesWorld cell per patch
(63 px, 21-px patches), at its random initialisation: pooled patch features already separate
scenes by the kind of object they show (benchmarks/bench_pooling.py, 5 towers: p@10 0.56 for the
max, the default, 0.53 for the mean, against 0.25 by chance on four kinds), while a random tiny CLIP (any patch size) and the 32-px toy tower stay near chance,
and 60 steps of cell pretraining made it worse (0.32: colour dominates). Random towers give
every picture nearly the same direction (distinct scenes up to cosine 0.99999), so near-duplicate
tests use thumbnails (``column=None``) or thumbnail vectors stored as the embedding column.
"""

from __future__ import annotations

import io
import os
import json

import numpy as np
import pytest
from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage

from hf_vitcurate.engine import collect
from hf_vitcurate.images import decode
from hf_vitcurate.stages import image_duplicates, image_embeddings
from hf_vitcurate.stages.image_dedup import thumbnail_vector
from hf_vitcurate.synthetic.world import SHAPES, make_scene, png_bytes
from hf_vitcurate.synthetic.world import kind_scene as world_kind_scene

FEATS = Features({"id": Value("string"), "images": List(Image())})


def kind_scene(i: int, shape: str, seed: int) -> tuple[str, bytes]:
    """A ShapesWorld picture whose 1-4 objects are all ``shape`` (random colours, sizes, cells)."""
    scene = world_kind_scene(i, shape, seed)
    return scene.image_id, png_bytes(scene)


def images(pairs) -> Dataset:
    pairs = list(pairs)
    return Dataset.from_dict({"id": [p[0] for p in pairs], "images": [[{"bytes": p[1], "path": None}] for p in pairs]},
                             features=FEATS)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory, toy_vit) -> str:
    from hf_vitcurate.testing import tiny_checkpoint

    return tiny_checkpoint(toy_vit, output_dir=tmp_path_factory.mktemp("emb") / "ck", vision_width=32, vision_mlp=64,
                           vision_heads=2, text_width=32, text_layers=1, text_heads=2, text_mlp=64, vocab_size=300)



def embedded_repo(*, seed: int, per_kind: int, domains: tuple[str, str]) -> tuple[Dataset, Dataset]:
    """A repository of two kinds of pictures with thumbnail embeddings, and its first two rows as seeds."""
    pictures = [kind_scene(i, s, seed=seed) for i in range(per_kind) for s in SHAPES[:2]]
    vectors = [thumbnail_vector(decode({"bytes": png, "path": None}, max_pixels=None)).tolist() for _, png in pictures]
    repo = images(pictures).add_column("image_embedding", vectors)
    return repo, repo.select([0, 1]).add_column("domain", list(domains))

def test_seeds_of_one_kind_collect_that_kind_far_more_often_than_random(embedder, tmp_path):
    repo = image_embeddings(images(kind_scene(i, s, seed=1) for i in range(40) for s in SHAPES), model=embedder)
    seeds = image_embeddings(images(kind_scene(i, s, seed=2) for i in range(3) for s in SHAPES), model=embedder)
    seeds = seeds.add_column("domain", [i.split("-")[0] for i in seeds["id"]])
    index = tmp_path / "repo.faiss"
    found = collect(repo, seeds, per_domain=15, k=20, index_path=index)
    assert set(found.column_names) >= {"id", "images", "domain", "query_id", "similarity"}
    kinds = [i.split("-")[0] for i in found["id"]]
    rate = float(np.mean([k == d for k, d in zip(kinds, found["domain"])]))
    chance = 1 / len(SHAPES)  # a random draw from the repository (equal kinds)
    assert len(found) == 15 * len(SHAPES) and len(set(found["id"])) == len(found)  # one domain per image
    assert rate >= 1.8 * chance, f"collected the seeds' kind at {rate:.2f} against {chance:.2f} for random draws"
    assert all(q.split("-")[0] in SHAPES for q in found["query_id"])
    sims = np.array(found["similarity"])
    for d in SHAPES:
        mine = sims[np.array(found["domain"]) == d]
        assert (np.diff(mine) <= 1e-6).all()  # best first inside a domain
    # The index is saved with what it was built from, and reused: same answer from the file.
    meta = json.loads((tmp_path / "repo.faiss.json").read_text())
    assert meta["rows"] == len(repo) and index.exists()
    mtime = index.stat().st_mtime_ns
    again = collect(repo, seeds, per_domain=15, k=20, index_path=index)
    assert again["id"] == found["id"] and index.stat().st_mtime_ns == mtime
    # Other embeddings (fewer rows) rebuild it.
    collect(repo.select(range(100)), seeds, per_domain=5, k=5, index_path=index)
    assert json.loads((tmp_path / "repo.faiss.json").read_text())["rows"] == 100


def test_collect_skips_seeds_in_the_repository_and_null_embeddings():
    vecs = np.eye(4, dtype=np.float32)
    repo = Dataset.from_dict({"id": ["a", "b", "c", "d"], "image_embedding": [vecs[0], vecs[0] * 0.9 + vecs[1] * 0.1, None, vecs[3]]},
                             features=Features({"id": Value("string"), "image_embedding": List(Value("float32"))}))
    seeds = Dataset.from_dict({"id": ["a"], "domain": ["x"], "image_embedding": [vecs[0]]})
    found = collect(repo, seeds, per_domain=5, k=4)
    assert found["id"] == ["b", "d"] and found["query_id"] == ["a", "a"]  # "a" is the seed itself, "c" has no vector
    with pytest.raises(ValueError, match="per_domain"):
        collect(repo, seeds, per_domain=0)
    with pytest.raises(KeyError, match="domain"):
        collect(repo, seeds.remove_columns("domain"), per_domain=1)


def near_copy(png: bytes, how: int) -> bytes:
    """The same picture, other bytes: JPEG q95, PNG at another compression, a resize round trip, WebP q95."""
    im, out = PILImage.open(io.BytesIO(png)).convert("RGB"), io.BytesIO()
    if how == 0:
        im.save(out, format="JPEG", quality=95)
    elif how == 1:
        im.save(out, format="PNG", compress_level=1)
    elif how == 2:
        im.resize((128, 128)).resize((64, 64)).save(out, format="PNG")
    else:
        im.save(out, format="WEBP", quality=95)
    return out.getvalue()


@pytest.fixture(scope="module")
def planted() -> Dataset:
    """300 distinct ShapesWorld scenes, then 10 exact copies and 40 near copies of some of them."""
    scenes = [make_scene(i, seed=5) for i in range(300)]
    pairs = [(s.image_id, png_bytes(s)) for s in scenes]
    pairs += [(f"exact-{i}", pairs[i][1]) for i in range(10)]
    pairs += [(f"near-{i}", near_copy(pairs[i][1], i % 4)) for i in range(10, 50)]
    return images(pairs)


def _check_planted(kept, rejected, ds):
    assert len(kept) + len(rejected) == len(ds)
    assert sorted(rejected["id"]) == sorted(i for i in ds["id"] if i.startswith(("exact", "near")))  # none distinct
    for row in rejected.select_columns(["id", "reject_reason", "duplicate_of"]):
        n = int(row["id"].split("-")[1])
        assert row["duplicate_of"] == ds[n]["id"], row
        assert row["reject_reason"] == ("duplicate_image" if row["id"].startswith("exact") else "near_duplicate_image")


def test_planted_exact_and_near_duplicates_are_all_found_by_thumbnails(planted):
    kept, rejected = image_duplicates(planted, column=None)
    _check_planted(kept, rejected, planted)
    assert kept["id"] == planted["id"][:300]  # first occurrences kept, in order


def test_planted_duplicates_by_embedding_column_and_against_the_pool(planted):
    vectors = [thumbnail_vector(decode(r[0])).tolist() for r in planted.with_format("arrow")["images"].to_pylist()]
    ds = planted.add_column("image_embedding", vectors, feature=List(Value("float32")))
    _check_planted(*image_duplicates(ds, threshold=0.985), ds)
    pool, new = ds.select(range(300)), ds.select(range(300, len(ds)))
    extra = images([kind_scene(0, "cross", seed=9)])
    extra = extra.add_column("image_embedding", [thumbnail_vector(decode(extra[0]["images"][0])).tolist()],
                             feature=List(Value("float32")))
    from datasets import concatenate_datasets

    kept, rejected = image_duplicates(concatenate_datasets([new, extra]), against=pool, threshold=0.985)
    assert kept["id"] == ["cross-9-0"] and len(rejected) == 50
    assert set(rejected["duplicate_of"]) <= set(pool["id"])
    with pytest.raises(KeyError, match="image_embeddings"):
        image_duplicates(planted)  # no embedding column: say what adds it


def test_undecodable_images_are_flagged_and_a_killed_run_resumes(embedder, tmp_path, monkeypatch):
    import importlib

    module = importlib.import_module("hf_vitcurate.stages.image_embeddings")  # the module, not the function

    good = [kind_scene(i, "circle", seed=3) for i in range(20)]
    ds = images(good[:5] + [("broken", good[5][1][:40])] + good[5:])
    clean = image_embeddings(ds, model=embedder, chunk_size=4).select_columns(["image_embedding", "image_embedding_flag"])
    assert clean[5]["image_embedding"] is None and clean[5]["image_embedding_flag"].startswith("image_error: ")
    assert clean.features["image_embedding"] == List(Value("float32"))
    assert abs(np.linalg.norm(clean[0]["image_embedding"]) - 1) < 1e-5
    assert sum(f != "" for f in clean["image_embedding_flag"]) == 1
    real, calls, kill_at = module.embed_rows, [], [3]

    def killed_at_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == kill_at[0]:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "embed_rows", killed_at_third_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        image_embeddings(ds, model=embedder, chunk_size=4, work_dir=tmp_path / "w")
    calls.clear()
    kill_at[0] = -1
    resumed = image_embeddings(ds, model=embedder, chunk_size=4, work_dir=tmp_path / "w").select_columns(
        ["image_embedding", "image_embedding_flag"])
    assert len(calls) == 6 - 2  # 6 chunks, 2 finished before the kill: only 4 computed again
    np.testing.assert_allclose(np.array(resumed.select(range(5))["image_embedding"]),
                               np.array(clean.select(range(5))["image_embedding"]), atol=1e-6)
    assert resumed["image_embedding_flag"] == clean["image_embedding_flag"]


def _tiny_clip(folder, **text) -> None:
    """Save a random CLIP checkpoint (hidden size 32, projection 24, 64x64 images, a class token) to ``folder``;
    ``text`` overrides its text tower's config."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    cfg = CLIPConfig(text_config={"vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                  "num_attention_heads": 2, "max_position_embeddings": 16, **text},
                     vision_config={"image_size": 64, "patch_size": 16, "hidden_size": 32, "intermediate_size": 64,
                                    "num_hidden_layers": 1, "num_attention_heads": 2}, projection_dim=24)
    CLIPModel(cfg).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}).save_pretrained(folder)


def test_clip_checkpoints_embed_through_get_image_features(tmp_path):
    """A CLIP checkpoint (random, tiny) goes through ``AutoModel.get_image_features``: projection-sized unit vectors."""
    _tiny_clip(tmp_path / "clip")
    two = images([kind_scene(0, "square", seed=4), kind_scene(1, "square", seed=4)])
    pair = Dataset.from_dict({"id": ["both"], "images": [two["images"][0] + two["images"][1]]}, features=FEATS)
    out = image_embeddings(two, model=tmp_path / "clip", batch_size=1)
    vecs = np.array(out["image_embedding"])
    assert vecs.shape == (2, 24) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    both = np.array(image_embeddings(pair, model=tmp_path / "clip")["image_embedding"][0])
    np.testing.assert_allclose(both, (vecs.sum(0) / np.linalg.norm(vecs.sum(0))), atol=1e-5)  # a row's images: their mean


def test_cli_collects_from_folders_of_image_files(embedder, tmp_path, capsys):
    """`vitcurate engine collect REPO --seeds DIR`: image files embedded with --model, one sub-folder per domain."""
    from hf_vitcurate.cli import main

    (tmp_path / "repo").mkdir()
    for i in range(6):
        for shape in SHAPES[:2]:
            name, png = kind_scene(i, shape, seed=3)
            (tmp_path / "repo" / f"{name}.png").write_bytes(png)
    for shape in SHAPES[:2]:
        (tmp_path / "seeds" / shape).mkdir(parents=True)
        name, png = kind_scene(99, shape, seed=4)
        (tmp_path / "seeds" / shape / f"{name}.png").write_bytes(png)
    args = ["-q", "engine", "collect", str(tmp_path / "repo"), "--seeds", str(tmp_path / "seeds"), "--per-domain", "3",
            "--k", "6", "--pooling", "mean", "--output", str(tmp_path / "out")]
    assert main(args) == 2  # no embeddings and no --model: one line naming the flag
    assert "--model" in capsys.readouterr().err
    assert main(args + ["--model", embedder, "--work-dir", str(tmp_path / "work")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["repository"] == 12 and summary["seeds"] == 2
    assert set(summary["per_domain"]) <= set(SHAPES[:2]) and all(n <= 3 for n in summary["per_domain"].values())
    from datasets import load_from_disk

    out = load_from_disk(str(tmp_path / "out"))
    assert len(out) == summary["rows"] > 0 and {"domain", "query_id", "similarity"} <= set(out.column_names)
    assert os.path.isdir(tmp_path / "work" / "repository")  # resumable embedding chunks
    from hf_vitcurate import provenance

    emb = [st for st in provenance.steps(out) if st["name"] == "image_embeddings"]
    assert emb and emb[-1]["params"]["pooling"] == "mean"  # --pooling reached the embedder


def test_mminstruct_card_says_how_the_images_were_collected(tmp_path):
    """Issue 23: the card of an MMInstruct-style output records the collection step its rows carry."""
    from hf_vitcurate.hub import publish

    repo, seeds = embedded_repo(seed=5, per_kind=4, domains=("charts", "photos"))
    found = collect(repo, seeds, per_domain=2, k=4)
    rows = found.remove_columns(["images", "image_embedding"]).add_column("instruction_type", ["judgement"] * len(found))
    out = publish(rows, "test/mmi", local_dir=str(tmp_path / "hub"), card="mminstruct")
    readme = open(os.path.join(out, "README.md")).read()
    assert "How the images were collected" in readme and "image repository of 8 images" in readme, readme
    assert "at most 2 per domain" in readme and "4 neighbours per seed" in readme and "exact inner-product search" in readme
    assert "came with its embeddings" in readme
    # With an embedding step on record and an approximate index: the embedder, its pooling, the index and nprobe.
    from hf_vitcurate import provenance

    embedded = provenance.record(repo, "image_embeddings", kind="stage", rows_in=len(repo), model="org/embedder",
                                 params={"pooling": "max"})
    found = collect(embedded, seeds, per_domain=2, k=4, string_factory="IVF2,Flat", nprobe=2)
    rows = found.remove_columns(["images", "image_embedding"]).add_column("instruction_type", ["judgement"] * len(found))
    readme = open(os.path.join(publish(rows, "test/mmi2", local_dir=str(tmp_path / "hub2"), card="mminstruct"),
                               "README.md")).read()
    readme = " ".join(readme.split())
    assert "(faiss IVF2,Flat, nprobe 2, 4 neighbours per seed)" in readme
    assert "embedded with `org/embedder` (pooling: max)" in readme


def test_engine_runs_collection_then_captions_and_questions():
    """Issue 23: one Engine.run call goes from a repository and seed images to instructions (steps a-e)."""
    from hf_vitcurate.engine import EchoBackend, Engine
    from hf_vitcurate import provenance

    repo, seeds = embedded_repo(seed=6, per_kind=5, domains=("landmark", "ocr"))
    engine = Engine(EchoBackend(lambda r: "A picture of shapes." if r.images else "no"), max_attempts=1)
    result = engine.run(repo, seed_images=seeds, per_domain=3, k=5, types=["judgement"], n_questions=1, long_vqa=False)
    assert len(result.captioned) == 6 and sorted(set(result.captioned["domain"])) == ["landmark", "ocr"]
    assert "collect" in [s["name"] for s in provenance.steps(result.captioned)]
    assert result.counts()["kept"] + result.counts()["rejected"] > 0
    with pytest.raises(ValueError, match="per_domain"):
        engine.run(repo, seed_images=seeds)


def test_engine_run_passes_the_index_options_to_collect(tmp_path):
    """A one-call run over a large repository can save and reuse its index (collect_options)."""
    from hf_vitcurate.engine import EchoBackend, Engine

    repo, seeds = embedded_repo(seed=7, per_kind=4, domains=("landmark", "ocr"))
    engine = Engine(EchoBackend(lambda r: "A picture of shapes." if r.images else "no"), max_attempts=1)
    index = tmp_path / "repo.faiss"
    engine.run(repo, seed_images=seeds, per_domain=2, k=3, types=["judgement"], n_questions=1, long_vqa=False,
               collect_options={"index_path": str(index)})
    assert index.exists()


def test_key_phrases_join_the_seed_images_as_queries(tmp_path):
    """Issue 23: a CLIP-like checkpoint's text tower embeds each domain's key phrases in the image space;
    those rows query the repository beside the seed images. A model without one is a clear error."""
    from datasets import concatenate_datasets

    from hf_vitcurate.errors import ConfigError
    from hf_vitcurate.stages import phrase_embeddings
    from hf_vitcurate.testing.tiny import train_tokenizer

    tok = train_tokenizer(["a bar chart of sales", "a photo of a street", "a red square"], vocab_size=300)
    _tiny_clip(tmp_path / "clip", vocab_size=len(tok), max_position_embeddings=32, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.pad_token_id)
    tok.save_pretrained(tmp_path / "clip")
    queries = phrase_embeddings({"charts": ["a bar chart"], "street": ["a photo of a street", "a red square"]},
                                model=tmp_path / "clip")
    assert list(queries["domain"]) == ["charts", "street", "street"] and queries[0]["id"] == "phrase:a bar chart"
    vecs = np.array(queries["image_embedding"])
    assert vecs.shape == (3, 24) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    repo = image_embeddings(images([kind_scene(i, "square", seed=7) for i in range(6)]), model=tmp_path / "clip")
    seeds = concatenate_datasets([queries, image_embeddings(images([kind_scene(9, "square", seed=8)]),
                                                            model=tmp_path / "clip").add_column("domain", ["charts"])
                                  .select_columns(["id", "domain", "image_embedding"])])
    found = collect(repo, seeds, per_domain=2, k=3)
    assert 0 < len(found) <= 4 and set(found["domain"]) <= {"charts", "street"}
    with pytest.raises(ConfigError, match="no text tower"):
        phrase_embeddings({"charts": ["a bar chart"]}, model=_tiny_llava(tmp_path))


def _tiny_llava(tmp_path) -> str:
    from hf_vitcurate.testing import tiny_checkpoint

    return tiny_checkpoint(["a red square"], output_dir=str(tmp_path / "llava"), image_size=32, patch_size=8,
                           vision_layers=1, text_layers=1)


def test_collect_with_an_approximate_index_trains_it():
    """An IVF string_factory is trained before vectors are added (was faiss's raw 'is_trained' failure)."""
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(400, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    repo = Dataset.from_dict({"id": [f"r{i}" for i in range(400)], "image_embedding": vecs.tolist()})
    seeds = Dataset.from_dict({"id": ["s0"], "domain": ["charts"], "image_embedding": [vecs[0].tolist()]})
    found = collect(repo, seeds, per_domain=5, k=5, string_factory="IVF4,Flat")
    assert 0 < len(found) <= 5 and set(found["domain"]) == {"charts"}


def _vectors(n: int = 400, dim: int = 16) -> Dataset:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return Dataset.from_dict({"id": [f"r{i}" for i in range(n)], "image_embedding": vecs.tolist()})


def test_nprobe_and_ef_search_are_set_saved_and_recorded(tmp_path):
    """nprobe (IVF) / ef_search (HNSW) reach the faiss index, its saved JSON and the provenance;
    a reloaded index takes a new setting without a rebuild; a setting the index cannot use is an error."""
    from hf_vitcurate import provenance
    from hf_vitcurate.errors import ConfigError

    repo = _vectors()
    seeds = Dataset.from_dict({"id": ["s0"], "domain": ["charts"], "image_embedding": [repo[0]["image_embedding"]]})
    index = tmp_path / "ivf.faiss"
    found = collect(repo, seeds, per_domain=5, k=5, string_factory="IVF4,Flat", nprobe=3, index_path=index)
    assert provenance.steps(found)[-1]["params"]["search_params"] == {"nprobe": 3}
    assert json.loads((tmp_path / "ivf.faiss.json").read_text())["search_params"] == {"nprobe": 3}
    mtime = index.stat().st_mtime_ns
    again = collect(repo, seeds, per_domain=5, k=5, string_factory="IVF4,Flat", nprobe=4, index_path=index)
    assert index.stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert provenance.steps(again)[-1]["params"]["search_params"] == {"nprobe": 4}
    assert json.loads((tmp_path / "ivf.faiss.json").read_text())["search_params"] == {"nprobe": 4}
    kept = collect(repo, seeds, per_domain=5, k=5, string_factory="IVF4,Flat", index_path=index)
    assert provenance.steps(kept)[-1]["params"]["search_params"] == {"nprobe": 4}  # None: the saved value
    hnsw = collect(repo, seeds, per_domain=5, k=5, string_factory="HNSW8", ef_search=40)
    assert provenance.steps(hnsw)[-1]["params"]["search_params"] == {"ef_search": 40}
    assert provenance.steps(collect(repo, seeds, per_domain=5, k=5))[-1]["params"]["search_params"] == {}
    with pytest.raises(ConfigError, match="nprobe applies to an IVF index"):
        collect(repo, seeds, per_domain=5, k=5, nprobe=8)  # exact search has no lists
    with pytest.raises(ConfigError, match="ef_search must be >= 1"):
        collect(repo, seeds, per_domain=5, k=5, string_factory="HNSW8", ef_search=0)


def test_no_fingerprint_of_the_embeddings_without_an_index_path(tmp_path, monkeypatch):
    """The embeddings' fingerprint (a pass over every vector) is only for reusing a saved index."""
    import hf_vitcurate.identity as identity

    repo = _vectors()
    seeds = Dataset.from_dict({"id": ["s0"], "domain": ["charts"], "image_embedding": [repo[0]["image_embedding"]]})

    def no_fingerprint(*args, **kwargs):
        raise AssertionError("data_fingerprint computed")

    monkeypatch.setattr(identity, "data_fingerprint", no_fingerprint)
    assert len(collect(repo, seeds, per_domain=5, k=5)) == 5
    with pytest.raises(AssertionError, match="data_fingerprint computed"):  # with a path it is needed
        collect(repo, seeds, per_domain=5, k=5, index_path=tmp_path / "i.faiss")


def test_cli_passes_the_index_settings(tmp_path, capsys):
    """`vitcurate engine collect --string-factory IVF4,Flat --nprobe 2` on embedded save_to_disk folders."""
    from hf_vitcurate.cli import main

    repo = _vectors()
    repo.save_to_disk(str(tmp_path / "repo"))
    Dataset.from_dict({"id": ["s0"], "domain": ["charts"], "image_embedding": [repo[0]["image_embedding"]]}).save_to_disk(
        str(tmp_path / "seeds"))
    args = ["-q", "engine", "collect", str(tmp_path / "repo"), "--seeds", str(tmp_path / "seeds"), "--per-domain", "3",
            "--string-factory", "IVF4,Flat", "--nprobe", "2", "--index-path", str(tmp_path / "i.faiss"),
            "--output", str(tmp_path / "out")]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 3 and summary["search_params"] == {"nprobe": 2}
    assert json.loads((tmp_path / "i.faiss.json").read_text())["search_params"] == {"nprobe": 2}
    assert main(args[:-2] + ["--nprobe", "0", "--output", str(tmp_path / "out2")]) == 2
    assert "--nprobe must be >= 1" in capsys.readouterr().err


def test_pooling_max_is_the_tiny_towers_default_and_mean_and_cls_are_asked_for(embedder, tmp_path):
    """image_embeddings(pooling=...): the patches' max (the tiny tower's default, measured better than the
    mean on ShapesWorld: benchmarks/bench_pooling.py), their mean, or the class token, each a different
    vector; each keys its own resumable chunks; a bad name is one clear error."""
    from hf_vitcurate.errors import ConfigError
    from hf_vitcurate.stages.image_embeddings import TOWER_POOLING

    ds = images(kind_scene(i, s, seed=11) for i in range(3) for s in SHAPES[:2])
    vec = {p: np.array(image_embeddings(ds, model=embedder, pooling=p, work_dir=tmp_path / p)["image_embedding"])
           for p in ("mean", "max", "cls")}
    from hf_vitcurate.errors import StaleStateError

    with pytest.raises(StaleStateError, match='pooling "mean" -> "max"'):  # chunks of one pooling are not another's
        image_embeddings(ds, model=embedder, pooling="max", work_dir=tmp_path / "mean")
    default = np.array(image_embeddings(ds, model=embedder)["image_embedding"])
    assert TOWER_POOLING == "max"
    np.testing.assert_allclose(default, vec["max"], atol=1e-6)
    for a, b in (("mean", "max"), ("mean", "cls"), ("max", "cls")):
        assert np.abs(vec[a] - vec[b]).max() > 1e-3, (a, b)
    with pytest.raises(ConfigError, match="pooling must be one of mean, max, cls"):
        image_embeddings(ds, model=embedder, pooling="avg")


def test_pooling_of_a_clip_model_pools_its_vision_tokens(tmp_path):
    """CLIP: no pooling is get_image_features (projection-sized); 'mean'/'max'/'cls' pool the vision model's
    last hidden state (hidden-sized); 'cls' on a tower without a class token is an error."""
    import torch

    from hf_vitcurate.errors import ConfigError
    from hf_vitcurate.stages.image_embeddings import pool

    _tiny_clip(tmp_path / "clip")
    two = images([kind_scene(0, "square", seed=4), kind_scene(1, "circle", seed=4)])
    assert np.array(image_embeddings(two, model=tmp_path / "clip")["image_embedding"]).shape == (2, 24)
    pooled = {p: np.array(image_embeddings(two, model=tmp_path / "clip", pooling=p)["image_embedding"])
              for p in ("mean", "max", "cls")}
    assert all(v.shape == (2, 32) for v in pooled.values())
    assert np.abs(pooled["mean"] - pooled["max"]).max() > 1e-3
    with pytest.raises(ConfigError, match="no class token"):
        pool(torch.zeros(1, 16, 4), "cls", cls=False)
