"""The Space's actions, called directly: what the page does, without a browser.

ShapesWorld load -> validate -> concepts -> selection -> the exported zip loads back; uploads
(a LLaVA file with a zip of images; bad files, unsafe zips, files over the limits) give one
line; a publish with a token entered on the page leaves the token in no output, file or log.
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile

import pytest
from datasets import load_dataset
from PIL import Image

from hf_vitcurate.errors import ConfigError, FormatError, MissingColumnError, VitCurateError
from hf_vitcurate.space import Limits, actions, counting, views

SECRET = "hf_SPACE_session_token_never_kept_0123456789"


@pytest.fixture
def limits(tmp_path):
    return Limits(work_dir=str(tmp_path / "space"), max_upload_mb=1, max_rows=500)


@pytest.fixture(scope="module")
def shapes():
    return actions.load_shapesworld(n_images=8, limits=Limits(max_rows=500))


def test_shapesworld_load_validate_tag_select_and_export_a_zip_that_loads_back(shapes, limits, tmp_path):
    s = shapes
    assert len(s.pool) == len(s.kept) + len(s.rejected) and s.tagged is s.kept
    assert views.counts(s).startswith("**ShapesWorld (8 images, seed 0)** · loaded")

    tagged = actions.run_stage(s, "concepts", limits=limits)
    assert {"concepts", "informativeness"} <= set(tagged.tagged.column_names) and tagged.steps == ["concepts"]
    assert "informativeness" not in s.tagged.column_names  # the earlier session is untouched

    with pytest.raises(MissingColumnError, match="run the stage 'yes_no' first"):
        actions.run_selection(tagged, "core", n=10)
    picked = actions.run_selection(actions.run_stage(tagged, "yes_no", limits=limits), "diversity", n=12)
    assert 0 < len(picked.selected) <= 12 and picked.manifest["n_selected"] == len(picked.selected)
    assert views.before_after(picked)[-1][:3] == ["all", len(s.kept), len(picked.selected)]
    assert "selected" in views.counts(picked)

    zipped = actions.export(picked, repo_id="me/shapes-12", limits=limits)
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(zipped) as z:
        z.extractall(folder)
    assert (folder / "README.md").exists() and (folder / "curation.json").exists()
    back = load_dataset(str(folder), "default", split="train")
    assert sorted(back["id"]) == sorted(picked.selected["id"])


@pytest.mark.parametrize("method", [m for m, need in actions.SELECTIONS.items() if need])
def test_a_selection_without_its_column_names_a_stage_the_page_offers(shapes, method):
    stage = str(pytest.raises(MissingColumnError, actions.run_selection, shapes, method, n=4).value).split("'")[-2]
    assert stage in actions.STAGES


def test_statistics_give_the_tables_and_the_first_word_chart(shapes, tmp_path):
    report, markdown = actions.statistics(shapes.kept, chart=str(tmp_path / "chart.png"))
    assert report["rows"] == len(shapes.kept) and "| task |" in markdown
    assert (tmp_path / "chart.png").stat().st_size > 1000
    assert views.per_group(report)[-1][:2] == ["all", len(shapes.kept)]
    assert views.compare(report, None)[0] == ["rows", len(shapes.kept), "-"]


def _llava(tmp_path, *, n=3):
    """A LLaVA JSON file naming images/0.png ... and a zip holding them."""
    records = [{"id": f"r{i}", "image": f"images/{i}.png",
                "conversations": [{"from": "human", "value": "<image>\nWhat color is it?"},
                                  {"from": "gpt", "value": "It is red."}]} for i in range(n)]
    path = tmp_path / "pool.json"
    path.write_text(json.dumps(records))
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(n):
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), "red").save(buf, format="PNG")
            z.writestr(f"images/{i}.png", buf.getvalue())
    return str(path), str(archive)


def test_an_upload_of_llava_json_with_a_zip_of_images_loads(limits, tmp_path):
    records, images = _llava(tmp_path)
    s = actions.load_upload(records, images, limits=limits)
    assert len(s.kept) == 3 and s.name == "pool.json" and set(s.kept["source"]) == {"pool"}
    assert s.kept[0]["images"][0].size == (8, 8)


def test_bad_uploads_are_one_line_each(limits, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "a", "conversations": [oops')
    with pytest.raises(FormatError, match="bad.json: no readable record") as err:
        actions.load_upload(str(bad), limits=limits)
    assert "\n" not in str(err.value)

    records, _ = _llava(tmp_path)
    escaping = tmp_path / "evil.zip"
    with zipfile.ZipFile(escaping, "w") as z:
        z.writestr("../outside.png", b"x")
    with pytest.raises(ConfigError, match="holds a path outside its folder"):
        actions.load_upload(records, str(escaping), limits=limits)
    assert not (tmp_path / "space" / "uploads" / "outside.png").exists()
    with pytest.raises(ConfigError, match="is not a zip archive"):
        actions.load_upload(records, records, limits=limits)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 * 1024 * 1024))
    with pytest.raises(ConfigError, match=r"big.json is 2.0 MB; this Space takes files up to 1 MB"):
        actions.load_upload(str(big), limits=limits)
    with pytest.raises(ConfigError, match="this Space takes at most 10"):
        actions.load_shapesworld(n_images=8, limits=Limits(work_dir=limits.work_dir, max_rows=10))
    with pytest.raises(ConfigError, match="not a Hub repo id"):
        actions.load_hub("./local/folder", limits=limits)


@pytest.mark.slow  # importing gradio alone takes ~6 s
def test_the_page_shows_a_bad_file_as_one_line_without_the_server_folder(limits, tmp_path):
    pytest.importorskip("gradio")
    from hf_vitcurate.space.app import Page

    bad = tmp_path / "uploads" / "bad.json"
    bad.parent.mkdir()
    bad.write_text("[{]")
    out = Page(limits).load_upload(str(bad), None, "auto")
    message = out[-1]
    assert message.startswith("**Error:** bad.json:") and str(tmp_path) not in message and "Traceback" not in message
    assert len(out) == 13  # every view is left as it was (gr.skip()), then the message line


def test_a_checkpoint_with_its_own_code_is_refused_unless_enabled(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llava", "auto_map": {"AutoModel": "x.Y"}}))
    with pytest.raises(ConfigError, match="runs its own code"):
        Limits(work_dir=str(tmp_path)).check_model(str(folder))
    Limits(work_dir=str(tmp_path), trust_remote_code=True).check_model(str(folder))


def test_a_recipe_checkpoint_with_its_own_code_is_refused_before_the_recipe_runs(shapes, limits, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llava", "auto_map": {"AutoModel": "x.Y"}}))
    recipe = actions.DEFAULT_RECIPE + f"model: {{checkpoint: {folder}}}\n"
    with pytest.raises(ConfigError, match="runs its own code"):
        actions.run_recipe(shapes, recipe, limits=limits)
    assert not os.path.isdir(os.path.join(limits.work_dir, "recipes"))  # refused before anything ran


@pytest.mark.parametrize("bad", [{"max_rows": 0}, {"max_rows": -5}, {"max_upload_mb": 0}, {"max_upload_mb": -1.5},
                                 {"max_rows": "10"}, {"max_model_mb": 0}])
def test_limits_refuse_zero_negative_or_non_numbers(bad, tmp_path):
    with pytest.raises(ConfigError, match=f"^{next(iter(bad))} must be a positive number") as err:
        Limits(work_dir=str(tmp_path), **bad)
    assert "\n" not in str(err.value)


def test_limits_come_from_the_environment_and_flags_win(monkeypatch, tmp_path):
    monkeypatch.setenv("VITCURATE_SPACE_MAX_ROWS", "77")
    monkeypatch.setenv("VITCURATE_SPACE_TRUST_REMOTE_CODE", "1")
    monkeypatch.setenv("VITCURATE_SPACE_WORK_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("VITCURATE_SPACE_MAX_MODEL_MB", "900")
    limits = Limits.from_env(max_upload_mb=3)
    assert (limits.max_rows, limits.trust_remote_code, limits.max_upload_mb, limits.max_model_mb) == (77, True, 3, 900)
    assert Limits.from_env(max_model_mb=5).max_model_mb == 5
    assert os.path.isdir(tmp_path / "w")
    monkeypatch.setenv("VITCURATE_SPACE_MAX_ROWS", "lots")
    with pytest.raises(ConfigError, match="^VITCURATE_SPACE_MAX_ROWS='lots' is not a number"):
        Limits.from_env(work_dir=str(tmp_path))


def test_a_recipe_runs_on_the_loaded_pool(shapes, limits):
    s, rows = actions.run_recipe(shapes, actions.DEFAULT_RECIPE, limits=limits)
    assert set(rows) == {"svit_core", "random"} and len(s.selected) == rows["svit_core"]["train"]
    assert "yes_no" in s.tagged.column_names and s.steps[-1] == "recipe"
    assert set(s.manifest["configs"]) == {"svit_core", "random"} and "removed" in s.manifest["configs"]["random"]
    with pytest.raises(ConfigError):
        actions.run_recipe(shapes, "- just\n- a list", limits=limits)
    with pytest.raises(ConfigError, match="^the recipe is not valid YAML"):
        actions.run_recipe(shapes, "stages: [concepts", limits=limits)


def test_a_recipe_name_is_a_built_in_one_never_a_file_on_the_server(shapes, limits, tmp_path, monkeypatch):
    from hf_vitcurate.errors import NotFoundError

    for name in ("mine", "mine.yaml"):
        (tmp_path / name).write_text(actions.DEFAULT_RECIPE)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFoundError, match="no built-in recipe 'mine'"):
        actions.run_recipe(shapes, "mine", limits=limits)
    with pytest.raises(ConfigError, match="recipe"):  # YAML text (a bare string), not the file
        actions.run_recipe(shapes, "mine.yaml", limits=limits)


def test_the_token_is_used_once_and_appears_in_no_output_file_or_log(shapes, limits, monkeypatch, tmp_path, caplog, capsys):
    from hub_server import HubServer, point_clients_at

    for name in ("huggingface_hub", "datasets", "hf_vitcurate"):
        caplog.set_level(logging.DEBUG, logger=name)
    picked = actions.run_selection(shapes, "random_subset", n=10)
    with HubServer(token=SECRET) as hub:
        point_clients_at(hub.url, monkeypatch, str(tmp_path / "hf-cache"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        url = actions.publish_to_hub(picked, "me/space-push", token=SECRET, version="v1", limits=limits)
        assert url.endswith("datasets/me/space-push") and "v1" in hub.tags("me/space-push", repo_type="dataset")
        assert any(p.endswith(".parquet") for p in hub.files("me/space-push", repo_type="dataset"))
        with pytest.raises(VitCurateError) as wrong:  # a rejected token is not echoed either
            actions.publish_to_hub(picked, "me/space-push", token=SECRET[::-1], limits=limits)
        assert SECRET[::-1] not in str(wrong.value) and str(wrong.value).startswith("the Hub refused the push (")
    seen = caplog.text + "".join(capsys.readouterr()) + url + repr(picked)
    assert SECRET not in seen
    for root, _dirs, files in os.walk(limits.work_dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert SECRET.encode() not in f.read(), os.path.join(root, name)
    with pytest.raises(ConfigError, match="enter a Hub token"):
        actions.publish_to_hub(picked, "me/space-push", token="", limits=limits)


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and every exception it holds (``__cause__`` and ``__context__``, suppressed or not)."""
    seen: list[BaseException] = []
    todo = [err]
    while todo:
        e = todo.pop()
        if e is not None and not any(e is s for s in seen):
            seen.append(e)
            todo += [e.__cause__, e.__context__]
    return seen


@pytest.mark.parametrize("fault", ["quote_token", "echo"])
def test_a_failing_publish_whose_error_quotes_the_token_raises_an_error_that_holds_no_token(
        shapes, limits, monkeypatch, tmp_path, fault):
    """The Hub's answer (or a broken proxy's) quotes the Authorization header: the error the page
    shows and logs holds the token nowhere, not in its message, traceback or chained errors."""
    import traceback

    from hub_server import HubServer, point_clients_at

    picked = actions.run_selection(shapes, "random_subset", n=10)
    with HubServer(token=SECRET) as hub:
        point_clients_at(hub.url, monkeypatch, str(tmp_path / "hf-cache"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        hub.fail("commit", fault, times=None)
        with pytest.raises(VitCurateError) as caught:
            actions.publish_to_hub(picked, "me/space-fail", token=SECRET, limits=limits)
        assert ("POST", "commit") in hub.requests  # it failed where the fault is, not before
    err = caught.value
    assert "\n" not in str(err) and SECRET not in str(err)
    assert SECRET not in "".join(traceback.format_exception(err))
    assert _chain(err) == [err]  # no chained error: the Hub's HTTP error holds its request, Authorization header and all
    if fault == "quote_token":
        assert str(err).startswith("the Hub refused the push (HTTP 400: Bad request for commit endpoint); check")


def test_necessity_runs_with_a_chosen_checkpoint(shapes, limits, tiny_model_path):
    small = actions.run_selection(shapes, "random_subset", n=6)
    small = actions.Session(name="six", pool=small.selected, kept=small.selected, rejected=shapes.rejected,
                            tagged=small.selected)
    scored = actions.run_stage(small, "necessity", model=str(tiny_model_path), limits=limits)
    assert len(scored.tagged) == 6 and "necessity" in scored.tagged.column_names
    picked = actions.run_selection(scored, "top", n=2)
    assert sorted(picked.selected["necessity"]) == sorted(scored.tagged["necessity"])[-2:]


def test_a_hub_dataset_loads_by_repo_id(limits, monkeypatch, tmp_path):
    from datasets import DatasetDict

    from hf_vitcurate.hub import publish
    from hf_vitcurate.testing import toy_dataset
    from hub_server import HubServer, point_clients_at

    with HubServer() as hub:
        point_clients_at(hub.url, monkeypatch, str(tmp_path / "hf-cache"))
        publish(DatasetDict({"train": toy_dataset(6)}), "me/pool", local_dir=str(tmp_path / "repo"), push=True)
        s = actions.load_hub("me/pool", limits=limits)
        assert len(s.pool) == 6 and len(s.kept) + len(s.rejected) == 6 and s.name == "me/pool"
        assert counting.known_rows("me/pool", "train") == 6  # read from the Parquet footers: refused before any download
        with pytest.raises(ConfigError, match="this Space takes at most 4"):
            actions.load_hub("me/pool", limits=Limits(work_dir=limits.work_dir, max_rows=4))


def test_a_hub_dataset_whose_card_states_no_rows_is_refused_before_it_is_downloaded(limits, monkeypatch, tmp_path):
    """No card row count: the Parquet footers count the split (streaming counts up to the limit), not a download."""
    import io as _io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from hub_server import HubServer, point_clients_at

    rows = 1000
    buf = _io.BytesIO()  # row groups of 100: a streamed count stops after the first few
    turns = [[{"from": "human", "value": f"What is shape {i}?"}, {"from": "gpt", "value": "A red square. " * 10}]
             for i in range(rows)]  # text-only LLaVA rows: the old code loaded them all, then refused
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(rows)], "conversations": turns}), buf, row_group_size=100)
    with HubServer() as hub:
        hub.add_repo("me/nocard", {"data/train-00000-of-00001.parquet": buf.getvalue()}, private=False)
        cache = tmp_path / "hf-cache"
        point_clients_at(hub.url, monkeypatch, str(cache))
        assert counting.known_rows("me/nocard", "train") == rows  # no card: the Parquet footers count
        with pytest.raises(ConfigError, match="^the dataset has 1000 rows; this Space takes at most 10 "):
            actions.load_hub("me/nocard", limits=Limits(work_dir=limits.work_dir, max_rows=10))
        kept = [p for p in cache.rglob("*") if p.is_file() and p.suffix in (".parquet", ".arrow")]
        assert kept == []  # nothing downloaded to the caches
        assert counting.streamed_rows("me/nocard", "train", stop=rows + 5) == rows


def test_a_parquet_split_is_counted_from_its_footers_not_from_a_card_that_states_fewer_rows(limits, monkeypatch, tmp_path):
    """The card says 5 rows, the two Parquet files hold 300: refused by the footers, only their tails read.

    Where the files are not Parquet the card is what there is: a JSON Lines repo's stated rows are used.
    """
    import base64
    import io as _io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from hub_server import HubServer, point_clients_at

    def shard(first: int, n: int) -> bytes:
        buf = _io.BytesIO()  # ~1.3 KB of incompressible text a row: each file is far larger than its footer
        turns = [[{"from": "human", "value": f"What is shape {i}?"},
                  {"from": "gpt", "value": base64.b64encode(os.urandom(1000)).decode()}] for i in range(first, first + n)]
        pq.write_table(pa.table({"id": [f"r{i}" for i in range(first, first + n)], "conversations": turns}), buf,
                       row_group_size=50)
        return buf.getvalue()

    card = b"---\ndataset_info:\n  splits:\n  - name: train\n    num_examples: 5\n---\n"
    files = {"data/train-00000-of-00002.parquet": shard(0, 150), "data/train-00001-of-00002.parquet": shard(150, 150)}
    jsonl = b"\n".join(json.dumps({"id": f"r{i}", "conversations": [{"from": "human", "value": "Shape?"},
                                                                      {"from": "gpt", "value": "A square."}]}).encode()
                       for i in range(5))
    with HubServer() as hub:
        hub.add_repo("me/understated", {"README.md": card, **files}, private=False)
        hub.add_repo("me/jsonl", {"README.md": card.replace(b"5", b"3"), "data/train.jsonl": jsonl}, private=False)
        cache = tmp_path / "hf-cache"
        point_clients_at(hub.url, monkeypatch, str(cache))
        with pytest.raises(ConfigError, match="^the dataset has 300 rows; this Space takes at most 100 "):
            actions.load_hub("me/understated", limits=Limits(work_dir=limits.work_dir, max_rows=100))
        read = [(p, start, end) for p, start, end in hub.served if p.endswith(".parquet")]
        assert {p for p, _, _ in read} == set(files)  # both files' footers were read ...
        for path, start, end in read:  # ... and nothing else of them: no row group was fetched
            assert start > 0 and end == len(files[path]) and end - start <= 64 * 1024 < len(files[path]) // 2, (path, start)
        assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix in (".parquet", ".arrow")]
        assert counting.known_rows("me/jsonl", "train") == 3  # not Parquet: the card's count


def test_a_hub_llava_json_without_a_card_is_counted_and_refused_before_it_is_downloaded(limits, monkeypatch, tmp_path):
    """One LLaVA JSON array, no card: its features are unknown, so the streamed count must not ask to skip decoding."""
    from hub_server import HubServer, point_clients_at

    records = [{"id": f"r{i}", "conversations": [{"from": "human", "value": f"What is shape {i}?"},
                                                  {"from": "gpt", "value": "A red square."}]} for i in range(40)]
    with HubServer() as hub:
        hub.add_repo("me/llava", {"llava_mix.json": json.dumps(records).encode()}, private=False)
        cache = tmp_path / "hf-cache"
        point_clients_at(hub.url, monkeypatch, str(cache))
        with pytest.raises(ConfigError, match="^the dataset has 11 rows; this Space takes at most 10 "):
            actions.load_hub("me/llava", limits=Limits(work_dir=limits.work_dir, max_rows=10))
        assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix in (".json", ".arrow")]  # nothing kept
        assert len(actions.load_hub("me/llava", limits=limits).kept) == 40


def test_a_hub_dataset_whose_rows_cannot_be_counted_is_refused_with_the_reason(limits, monkeypatch, tmp_path):
    """Several configs, no such split, no such repo: "could not count" is never 0 rows (which passed any limit)."""
    from hf_vitcurate.errors import NotFoundError
    from hub_server import HubServer, point_clients_at

    rows = b"\n".join(json.dumps({"id": f"r{i}", "conversations": [{"from": "human", "value": "Shape?"},
                                                                    {"from": "gpt", "value": "A square."}]}).encode()
                      for i in range(5))
    card = b"---\nconfigs:\n- config_name: a\n  data_files: x/*.jsonl\n- config_name: b\n  data_files: x/*.jsonl\n---\n"
    with HubServer() as hub:
        hub.add_repo("me/two", {"README.md": card, "x/train.jsonl": rows}, private=False)
        hub.add_repo("me/one", {"x/train.jsonl": rows}, private=False)
        point_clients_at(hub.url, monkeypatch, str(tmp_path / "hf-cache"))
        with pytest.raises(ConfigError, match=r"^the rows of me/two \(split 'train'\) cannot be counted before loading "
                                              r"\(Config name is missing\..*\['a', 'b'\]") as err:
            actions.load_hub("me/two", limits=limits)
        assert "\n" not in str(err.value) and "VITCURATE_SPACE_MAX_ROWS" in str(err.value)
        with pytest.raises(ConfigError, match=r"^the rows of me/one \(split 'test'\) cannot be counted"):
            actions.load_hub("me/one", split="test", limits=limits)
        with pytest.raises(NotFoundError, match=r"^no Hub dataset me/none with a split 'train' \("):
            actions.load_hub("me/none", limits=limits)
        assert len(actions.load_hub("me/one", limits=limits).kept) == 5


def test_loading_from_the_loopback_hub_looks_up_no_other_host(limits, monkeypatch, tmp_path):
    """``datasets`` also calls S3 (download counts) and ``datasets-server.<host>``: where name lookups
    hang rather than fail, each cost seconds per test; ``point_clients_at`` turns both off."""
    import socket

    from datasets import DatasetDict

    from hf_vitcurate.hub import publish
    from hf_vitcurate.testing import toy_dataset
    from hub_server import HubServer, point_clients_at

    hosts, lookup = [], socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: hosts.append(host) or lookup(host, *a, **k))
    with HubServer() as hub:
        point_clients_at(hub.url, monkeypatch, str(tmp_path / "hf-cache"))
        publish(DatasetDict({"train": toy_dataset(4)}), "me/pool", local_dir=str(tmp_path / "repo"), push=True)
        files = hub.files("me/pool")
        del files["README.md"]  # no card: rows are counted by streaming
        hub.add_repo("me/nocard", files, private=False)
        assert len(actions.load_hub("me/pool", limits=limits).pool) == 4
        assert len(actions.load_hub("me/nocard", limits=limits).pool) == 4
    assert hosts and set(hosts) == {"127.0.0.1"}


def test_what_sessions_leave_is_pruned_after_a_day(tmp_path):
    from hf_vitcurate.space.limits import prune

    old, new, model = tmp_path / "exports" / "old.zip", tmp_path / "charts" / "new.png", tmp_path / "tiny" / "m"
    for path in (old, new, model):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    os.utime(old, (0, 0))
    os.utime(model, (0, 0))
    assert prune(str(tmp_path)) == 1
    assert not old.exists() and new.exists() and model.exists()


def test_a_hub_split_that_is_not_parquet_is_refused_by_its_files_size_before_it_is_read(limits, monkeypatch, tmp_path):
    """A JSON split larger than the operator's size limit is refused from the Hub's file listing alone:
    its card may understate its rows, and counting a JSON array by streaming reads it whole."""
    from hub_server import HubServer, point_clients_at

    records = [{"id": f"r{i}", "conversations": [{"from": "human", "value": f"What is shape {i}?"},
                                                  {"from": "gpt", "value": "A red square."}]} for i in range(40)]
    data = json.dumps(records).encode()
    card = b"---\ndataset_info:\n  splits:\n  - name: train\n    num_examples: 40\n---\n"  # under the row limit
    with HubServer() as hub:
        hub.add_repo("me/bigjson", {"README.md": card, "data/train.json": data}, private=False)
        point_clients_at(hub.url, monkeypatch, str(tmp_path / "hf-cache"))
        small = Limits(work_dir=limits.work_dir, max_upload_mb=len(data) / 2 / (1024 * 1024))
        with pytest.raises(ConfigError, match=r"^the data files of me/bigjson \(split 'train'\) are 0\.0 MB; this Space "
                                              r"reads at most 0\.\d+ MB of data that is not Parquet") as err:
            actions.load_hub("me/bigjson", limits=small)
        assert "\n" not in str(err.value)
        assert not [p for p, _, _ in hub.served if p.endswith(".json")]  # its bytes were never served
        assert len(actions.load_hub("me/bigjson", limits=limits).kept) == 40  # under the limit it loads (all 40 rows)
