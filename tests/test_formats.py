"""Format converters, load_vit, detection, explode_turns and `vitcurate convert`.

Every fixture is written into tmp_path (small PNGs drawn with PIL); real rows come from
tests/data (with their licenses) through the `real_data` fixture. The Hub is unreachable here, so
repo ids are tested up to the `datasets.load_dataset` call: a local folder of data
files goes through exactly that call, and a fake `load_dataset` checks the arguments
a repo id is passed with.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import datasets
import pytest
from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage

from hf_vitcurate import FormatError, ValidationError, explode_turns, load_vit, provenance, validate
from hf_vitcurate.errors import ConfigError, NotFoundError
from hf_vitcurate.results import Split
from hf_vitcurate.commands import convert as convert_command
from hf_vitcurate.commands.common import add_input_args
from hf_vitcurate.formats import FORMATS, detect_format, llava, mminstruct, save_vit, sharegpt, svit
from hf_vitcurate.formats.mminstruct import ParseError, load_seeds, parse_output
from hf_vitcurate.schema import FEATURES

PKG = Path(__file__).resolve().parents[1] / "hf_vitcurate"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    # Keep the Arrow caches of these small files out of the user's HF cache.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.getbasetemp() / "hf_cache"))


def png(path: Path, color=(255, 0, 0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (8, 8), color).save(path, format="PNG")
    return path


def png_bytes(color=(0, 255, 0)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def write_json(path: Path, rows, lines: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        if lines:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        else:
            json.dump(rows, f)
    return path


def arrow_rows(ds: Dataset) -> list[dict]:
    """Rows without decoding images (images as {bytes, path})."""
    return ds.with_format("arrow")[:].to_pylist()


def assert_valid(ds: Dataset, check_images="open") -> None:
    kept, rejected = validate(ds, check_images=check_images)
    assert len(rejected) == 0, list(zip(rejected["id"], rejected["reject_reason"]))


def turn(role, value):
    return {"from": role, "value": value}


# ---------------------------------------------------------------- LLaVA


@pytest.fixture
def llava_dir(tmp_path):
    imgs = tmp_path / "imgs"
    png(imgs / "coco" / "1.png")
    png(imgs / "coco" / "2.png", (0, 0, 255))
    rows = [
        {"id": "000001", "image": "coco/1.png", "conversations": [
            turn("human", "<image>\nWhat color is it?"), turn("gpt", "Red."),
            turn("human", "Is it square?"), turn("gpt", "Yes.")]},
        {"id": "000002", "image": "coco/2.png", "conversations": [
            turn("human", "What is shown?\nAnswer the question using a single word or phrase."), turn("gpt", "Blue")]},
        {"conversations": [turn("human", "Tell me a joke."), turn("gpt", "No.")]},  # text-only, no id
    ]  # fmt: skip
    write_json(tmp_path / "llava_mix.json", rows)
    write_json(tmp_path / "llava_mix.jsonl", rows, lines=True)
    return tmp_path


@pytest.mark.parametrize("name", ["llava_mix.json", "llava_mix.jsonl"])
def test_llava_load(llava_dir, name):
    ds = load_vit(str(llava_dir / name), image_root=str(llava_dir / "imgs"))
    assert ds.features == FEATURES
    rows = arrow_rows(ds)
    assert [r["id"] for r in rows] == ["000001", "000002", "llava_mix-2"]  # missing id: "{source}-{row}"
    assert {r["source"] for r in rows} == {"llava_mix"}
    assert [r["task"] for r in rows] == ["conversation", "short_vqa", "conversation"]
    # Lazy images: absolute paths, no bytes read.
    assert rows[0]["images"] == [{"bytes": None, "path": str(llava_dir / "imgs" / "coco" / "1.png")}]
    assert rows[2]["images"] == []
    # The row without a placeholder gets one, as LLaVA puts it.
    assert rows[1]["conversations"][0]["value"].startswith("<image>\nWhat is shown?")
    assert_valid(ds)
    (step,) = provenance.steps(ds)
    assert step["kind"] == "convert" and step["params"]["format"] == "llava" and step["rows_in"] == 3


def test_llava_mixed_types_and_overrides(tmp_path):
    png(tmp_path / "a.png")
    png(tmp_path / "b.png")
    rows = [
        {"id": 7, "image": ["a.png", "b.png"], "conversations": [
            turn("user", "<image>\n<image>\nCompare."), {"from": "assistant", "value": "Same.", "weight": 1}]},
        {"id": "x", "image": "a.png", "conversations": [turn("human", "What?"), turn("gpt", "A square.")]},
    ]  # fmt: skip
    ds = load_vit(str(write_json(tmp_path / "mixed.json", rows)), source="mine", task="caption")
    rows = arrow_rows(ds)
    assert [r["id"] for r in rows] == ["7", "x"]
    assert [len(r["images"]) for r in rows] == [2, 1]
    assert rows[0]["conversations"][0]["from"] == "human" and rows[0]["conversations"][1]["from"] == "gpt"
    assert {r["source"] for r in rows} == {"mine"} and {r["task"] for r in rows} == {"caption"}
    assert_valid(ds)


def test_llava_schema_changes_late(tmp_path):
    # datasets infers the schema from the first block (chunksize here: 4 kB) and fails or
    # garbles values on later blocks that differ; load_vit must give every row right.
    png(tmp_path / "a.png")
    png(tmp_path / "b.png")
    rows = [{"id": f"t{i}", "conversations": [turn("human", "Hi " * 40), turn("gpt", "Hello")]} for i in range(60)]
    rows += [{"id": i, "image": ["a.png", "b.png"] if i % 2 else "a.png", "conversations": [
        turn("human", "<image>\n" * (1 + i % 2) + "What?"), {"from": "gpt", "value": "Red [sic] \"quoted\"\n2nd line", "weight": 1}]}
        for i in range(60, 80)]  # fmt: skip
    with open(tmp_path / "late.json", "w") as f:
        json.dump(rows, f, indent=2)  # pretty-printed array: cut into lines by json_lines_copy
    ds = load_vit(str(tmp_path / "late.json"), chunksize=1 << 12)
    got = arrow_rows(ds)
    assert [r["id"] for r in got] == [r["id"] if isinstance(r["id"], str) else str(r["id"]) for r in rows]
    assert [len(r["images"]) for r in got] == [0] * 60 + [1 + i % 2 for i in range(60, 80)]
    assert got[61]["images"][1]["path"] == str(tmp_path / "b.png")
    assert got[79]["conversations"][1]["value"] == 'Red [sic] "quoted"\n2nd line'
    assert_valid(ds)
    (tmp_path / "broken.json").write_text('[{"id": "a", "conversations": []}, {"id": "b", "conv')
    with pytest.raises(FormatError, match=r"broken\.json: record 1 .*not valid JSON"):
        load_vit(str(tmp_path / "broken.json"))


def test_llava_bad_rows(tmp_path):
    rows = [
        {"id": "ok", "conversations": [turn("human", "Hi"), turn("gpt", "Hello")]},
        {"id": "bad", "conversations": [turn("human", "Hi"), turn("robot", "Beep")]},
        {"id": "none"},
    ]
    path = str(write_json(tmp_path / "bad.jsonl", rows, lines=True))
    with pytest.raises(FormatError, match=r"bad\.jsonl: row 1 \(id='bad'\) field 'conversations\[1\]\.from'.*robot"):
        load_vit(path)
    split = load_vit(path, errors="reject")
    assert isinstance(split, Split)
    kept, rejected = split
    assert split.kept is kept and split.rejected is rejected
    assert list(kept["id"]) == ["ok"]
    assert list(rejected["reject_reason"]) == ["unknown_role", "missing_field"]
    assert list(rejected["row"]) == [1, 2]
    assert len(kept) + len(rejected) == len(rows)
    assert provenance.steps(kept)[-1]["rejected"] == {"unknown_role": 1, "missing_field": 1}


def test_llava_round_trip(llava_dir, tmp_path):
    ds = load_vit(str(llava_dir / "llava_mix.json"), image_root=str(llava_dir / "imgs"))
    # One more row whose image exists only as bytes: save writes it as a file.
    extra = Dataset.from_dict(
        {"id": ["mem"], "images": [[{"bytes": png_bytes(), "path": None}]],
         "conversations": [[turn("human", "<image>\nColor?"), turn("gpt", "Green.")]],
         "source": ["llava_mix"], "task": ["short_vqa"]},
        features=FEATURES,
    )  # fmt: skip
    ds = datasets.concatenate_datasets([ds, extra])
    for name in ("out/again.json", "out/again.jsonl"):
        out = llava.save(ds, str(tmp_path / name), image_root=str(llava_dir / "imgs"))
        saved = [json.loads(x) for x in open(out)] if out.endswith("l") else json.load(open(out))
        assert saved[0]["image"] == "coco/1.png" and "image" not in saved[2]
        back = load_vit(out, image_root=str(llava_dir / "imgs"))
        a, b = arrow_rows(ds), arrow_rows(back)
        assert [r["id"] for r in b] == [r["id"] for r in a]
        assert [r["conversations"] for r in b] == [r["conversations"] for r in a]
        assert [(r["source"], r["task"]) for r in b] == [(r["source"], r["task"]) for r in a]
        assert [r["images"] for r in b][:3] == [r["images"] for r in a][:3]
        assert b[3]["images"][0]["path"].endswith("images/mem-0.png")
        assert_valid(back)
    bare = json.load(open(llava.save(ds, str(tmp_path / "bare.json"), extra_keys=())))
    assert set(bare[0]) == {"id", "image", "conversations"}


def test_llava_bench_real(real_data, tmp_path):
    ds = load_vit(str(real_data / "llava_bench_coco_qa90.jsonl"), image_root=str(tmp_path))
    rows = arrow_rows(ds)
    assert len(rows) == 90 and len({r["id"] for r in rows}) == 90  # ids repeat in the file: "{id}-{type}"
    assert rows[0]["id"] == "000000525439-conv"
    assert {r["task"] for r in rows} == {"conversation", "detail_description", "complex_reasoning"}
    assert rows[0]["images"][0]["path"] == str(tmp_path / "COCO_val2014_000000525439.jpg")
    assert rows[0]["conversations"][0]["value"].startswith("<image>\nWhat is the position of the skateboard")
    assert_valid(ds, check_images=False)  # the file ships no images


# ---------------------------------------------------------------- SVIT


BOX_Q = "Why might the <st>car<ed> [0.386, 0.435, 0.996, 0.715] be stopped?"
BOX_A = "Place more <st>cones<ed>[0.354, 0.573, 0.774, 0.875], [0.1, 0.2, 0.3, 0.4] around it."


def svit_native(tmp_path, name, rows):
    for rec in rows:
        if isinstance(rec.get("image_id"), int):
            png(tmp_path / "vg" / f"{rec['image_id']}.jpg")
    return str(write_json(tmp_path / name, rows))


def test_svit_native(tmp_path):
    conv = [{"from": "user", "value": "What is this?"}, {"from": "gpt", "value": "A street."},
            {"from": "user", "value": "Is it busy?"}, {"from": "gpt", "value": "Yes."}]  # fmt: skip
    path = svit_native(tmp_path, "conversation.json", [
        {"image_id": 11, "conversations": [{"content": conv}, {"content": conv[:2]}]},
        {"image_id": 12, "conversations": [{"content": conv[:2]}]},
    ])  # fmt: skip
    ds = load_vit(path, image_root=str(tmp_path / "vg"))
    rows = arrow_rows(ds)
    assert [r["id"] for r in rows] == ["11-conversation-0", "11-conversation-1", "12-conversation-0"]
    assert {r["task"] for r in rows} == {"conversation"} and rows[0]["source"] == "conversation"
    assert rows[0]["images"][0]["path"] == str(tmp_path / "vg" / "11.jpg")
    assert rows[0]["conversations"][0]["value"] == "<image>\nWhat is this?" and len(rows[0]["conversations"]) == 4
    assert_valid(ds)

    ref = svit_native(tmp_path, "referring_qa.json", [
        {"image_id": 13, "conversations": [{"content": [{"from": "user", "value": BOX_Q}, {"from": "gpt", "value": BOX_A}]}]}])  # fmt: skip
    (row,) = arrow_rows(svit.load(ref, image_root=str(tmp_path / "vg")))
    assert row["task"] == "referring_qa" and row["id"] == "13-referring_qa-0"
    assert row["conversations"][0]["value"] == "<image>\n" + BOX_Q  # box text intact
    assert row["conversations"][1]["value"] == BOX_A


def test_svit_native_bad_rows(tmp_path):
    good = [{"from": "user", "value": "Q?"}, {"from": "gpt", "value": "A."}]
    path = svit_native(tmp_path, "complex_reasoning.json", [
        {"image_id": 21, "conversations": [{"content": good}]},
        {"image_id": 22, "conversations": [{"content": good}, {"content": [{"from": "user", "value": "Q?"}, {"from": "gpt", "value": None}]}]},
        {"conversations": [{"content": good}]},
    ])  # fmt: skip
    with pytest.raises(FormatError, match=r"row 1 .*field 'conversations\[1\]\.content\[1\]\.value'"):
        load_vit(path)
    kept, rejected = load_vit(path, errors="reject")
    assert list(kept["id"]) == ["21-complex_reasoning-0"]
    assert list(rejected["reject_reason"]) == ["non_text_value", "missing_field"]
    assert rejected[1]["reject_detail"].startswith("image_id:")


def test_svit_llava_layout(tmp_path):
    png(tmp_path / "vg" / "5.jpg")
    rows = [{"id": "svit-5", "image": "vg/5.jpg", "conversations": [turn("human", "<image>\n" + BOX_Q), turn("gpt", BOX_A)]}]
    ds = load_vit(str(write_json(tmp_path / "svit_core_150k.json", rows)), format="svit")
    (row,) = arrow_rows(ds)
    assert row["task"] == "referring_qa" and row["source"] == "svit_core_150k"
    assert row["conversations"][1]["value"] == BOX_A
    assert provenance.steps(ds)[-1]["name"] == "svit"
    assert_valid(ds)


# ---------------------------------------------------------------- MMInstruct


MC_OUT = ("<Q1> Which scene is shown? </Q1> <C1> A. Cityscape B. Mountain C. Seaside D. Countryside </C1> <A1> C </A1>\n"
          "<Q2> What is the weather? </Q2>\n<C2>\nA. Rainy\nB. Sunny\nC. Snowy\nD. Foggy\n</C2>\n<A2> B. Sunny </A2>")  # fmt: skip


def test_mminstruct_parser():
    items = parse_output(MC_OUT, "choice")
    assert [(i.question, i.options, i.answer, i.reject_reason) for i in items] == [
        ("Which scene is shown?", ["A. Cityscape", "B. Mountain", "C. Seaside", "D. Countryside"], "C", ""),
        ("What is the weather?", ["A. Rainy", "B. Sunny", "C. Snowy", "D. Foggy"], "B. Sunny", ""),
    ]
    bad = parse_output(MC_OUT.replace("<A1> C </A1>", "<A1> A and C </A1>").replace("<A2> B. Sunny </A2>", "<A2> Hail </A2>"), "multiple_choice")
    assert [i.reject_reason for i in bad] == ["answer_not_one_option", "answer_not_one_option"]
    three = parse_output(MC_OUT.replace("D. Countryside", ""), "multiple_choice")
    assert three[0].reject_reason == "bad_options"
    judged = parse_output("<Q1> Is it red? </Q1><A1> Maybe. </A1><Q2> Is it big? </Q2><A2> No, it is small. </A2><Q3> Open?", "judge")
    assert [i.reject_reason for i in judged] == ["judgement_not_yes_no", "", "unclosed_tag"]
    missing = parse_output("<Q1> Why? </Q1>", "long_vqa")
    assert missing[0].reject_reason == "missing_answer"
    as_json = parse_output('```json\n[{"question": "Color?", "answer": "Red"}]\n```', "short_vqa")
    assert (as_json[0].question, as_json[0].answer) == ("Color?", "Red")
    with pytest.raises(ParseError) as err:
        parse_output("Sorry, I cannot help with that.", "judgement")
    assert err.value.code == "unparsable"
    with pytest.raises(ValueError, match="unknown instruction type"):
        parse_output(MC_OUT, "essay")


def test_mminstruct_load(tmp_path):
    png(tmp_path / "scene.png")
    rows = [
        {"id": "scene-mc", "image": "scene.png", "domain": "Image Scene", "type": "choice", "output": MC_OUT},
        {"id": "scene-tf", "image": "scene.png", "domain": "image_scene", "instruction_type": "judgement",
         "output": "<Q1> Is it a city? </Q1> <A1> Yes </A1>"},
        {"id": "scene-mr", "image": "scene.png", "domain": "Multi-Round Long VQA", "type": "long_vqa",
         "output": "<Q1> What is here? </Q1><A1> A city. </A1><Q2> Why busy? </Q2><A2> Rush hour. </A2>"},
    ]  # fmt: skip
    ds = load_vit(str(write_json(tmp_path / "gen.jsonl", rows, lines=True)))
    assert set(ds.column_names) == set(FEATURES) | {"domain", "instruction_type"}
    got = arrow_rows(ds)
    assert [r["id"] for r in got] == ["scene-mc-q1", "scene-mc-q2", "scene-tf-q1", "scene-mr"]
    assert [r["instruction_type"] for r in got] == ["multiple_choice", "multiple_choice", "judgement", "long_vqa"]
    assert [r["task"] for r in got] == [r["instruction_type"] for r in got]
    assert {r["domain"] for r in got} == {"image_scene", "multi_round_long_vqa"}
    assert got[0]["conversations"][0]["value"] == (
        "<image>\nWhich scene is shown?\nA. Cityscape\nB. Mountain\nC. Seaside\nD. Countryside\n"
        "Please choose the most appropriate option.")  # fmt: skip
    assert got[2]["conversations"][0]["value"].endswith("Please answer yes or no.")
    assert len(got[3]["conversations"]) == 4
    assert_valid(ds)


def test_mminstruct_bad_items(tmp_path):
    rows = [
        {"id": "g1", "domain": "ocr", "type": "judge", "output": "<Q1> Is there text? </Q1><A1> Yes </A1><Q2> Red? </Q2><A2> Blue </A2>"},
        {"id": "g2", "domain": "ocr", "type": "judge", "output": "I cannot see images."},
        {"id": "g3", "type": "judge", "output": "<Q1> Text? </Q1><A1> No </A1>"},
    ]  # fmt: skip
    path = str(write_json(tmp_path / "gen_bad.jsonl", rows, lines=True))
    with pytest.raises(FormatError, match=r"gen_bad\.jsonl: row 0 \(id='g1-q2'\) field 'output\[item 2\]'.*judgement_not_yes_no"):
        load_vit(path, format="mminstruct")
    kept, rejected = load_vit(path, format="mminstruct", errors="reject")
    assert list(kept["id"]) == ["g1-q1"]
    assert list(rejected["reject_reason"]) == ["judgement_not_yes_no", "unparsable", "missing_field"]
    assert list(rejected["row"]) == [0, 1, 2]


def test_mminstruct_seeds_real(real_data, tmp_path):
    folder = real_data / "mminstruct_seeds"
    seeds = load_seeds(str(folder))
    step = provenance.steps(seeds)[-1]
    assert len(step["params"]["empty_files"]) == 4  # four files are published empty
    assert len(set(seeds["domain"])) == 21 and "end_prompt" not in set(seeds["domain"])
    assert set(seeds["language"]) == {"English"} and all(q.strip() for q in seeds["question"])
    assert len(set(seeds["id"])) == len(seeds)
    landmark = seeds.filter(lambda r: r["domain"] == "landmark")
    assert {tuple(t) for t in landmark["instruction_types"]} == {("judgement",), ("multiple_choice",), ("short_vqa", "long_vqa")}
    assert len(load_seeds(str(folder / "00001_image_style.json"), languages=("Chinese",))) == 5
    # Other spellings of kinds and languages; unknown kinds are named.
    odd = write_json(tmp_path / "00030_odd_domain.json", {"select": {"english": ["Which one?"]}, "Judge": {"EN": ["Is it?"]}})
    assert sorted(load_seeds(str(odd))["seed_kind"]) == ["judge", "select"]
    with pytest.raises(FormatError, match="'essay'"):
        load_seeds(str(write_json(tmp_path / "bad_seed.json", {"essay": {"English": ["?"]}})))
    # Seeds are questions without answers: load_vit says where to read them.
    with pytest.raises(FormatError, match="load_seeds"):
        load_vit(str(folder / "00002_image_scene.json"))


# ---------------------------------------------------------------- the_cauldron and ShareGPT


def test_cauldron_parquet(tmp_path):
    features = Features({"images": List(Image()), "texts": List({"user": Value("string"), "assistant": Value("string"), "source": Value("string")})})
    ds_raw = Dataset.from_dict({
        "images": [[{"bytes": png_bytes(), "path": None}], [{"bytes": png_bytes(), "path": None}, {"bytes": png_bytes((1, 2, 3)), "path": None}]],
        "texts": [[{"user": "What color?", "assistant": "Green.", "source": "ai2d"}, {"user": "Why?", "assistant": "Paint.", "source": "ai2d"}],
                  [{"user": "Same?\nAnswer the question using a single word or phrase.", "assistant": "No", "source": "ai2d"}]],
    }, features=features)  # fmt: skip
    folder = tmp_path / "cauldron_ai2d"
    ds_raw.to_parquet(str(folder / "data" / "train-00000.parquet"))
    ds = load_vit(str(folder))  # a folder of data files: the same load_dataset call as a Hub repo id
    rows = arrow_rows(ds)
    assert [r["id"] for r in rows] == ["cauldron_ai2d-0", "cauldron_ai2d-1"]
    assert rows[0]["images"][0]["bytes"] == png_bytes() and rows[0]["images"][0]["path"] is None
    assert rows[1]["conversations"][0]["value"].startswith("<image>\n<image>\nSame?")
    assert [r["task"] for r in rows] == ["conversation", "short_vqa"]
    assert_valid(ds)
    assert provenance.steps(ds)[-1]["params"]["format"] == "cauldron"


def test_cauldron_json_bad(tmp_path):
    png(tmp_path / "c.png")
    rows = [{"images": ["c.png"], "texts": [{"user": "Q?", "assistant": "A."}, {"user": "Q2?"}]}]
    path = str(write_json(tmp_path / "cauldron.json", rows))
    with pytest.raises(FormatError, match=r"row 0 .*field 'texts\[1\]\.assistant'"):
        load_vit(path)
    rows[0]["texts"][1]["assistant"] = "A2."
    ds = load_vit(str(write_json(tmp_path / "cauldron2.json", rows)), format="cauldron")
    assert arrow_rows(ds)[0]["images"][0]["path"] == str(tmp_path / "c.png")
    assert_valid(ds)


def test_sharegpt_messages(tmp_path):
    png(tmp_path / "s.png")
    rows = [
        {"id": "m1", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "image", "image": "s.png"}, {"type": "text", "text": "What is it?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "A red square."}]}]},
        {"id": "m2", "images": ["s.png"], "messages": [
            {"role": "user", "content": "Describe."}, {"role": "assistant", "content": "Red."}]},
        {"id": "m3", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
    ]  # fmt: skip
    path = str(write_json(tmp_path / "chat.jsonl", rows, lines=True))
    ds = load_vit(path)
    got = arrow_rows(ds)
    assert got[0]["conversations"] == [turn("human", "<image>\nWhat is it?"), turn("gpt", "A red square.")]
    assert got[0]["images"][0]["path"] == str(tmp_path / "s.png")
    assert got[1]["conversations"][0]["value"] == "<image>\nDescribe."
    assert got[2]["images"] == []
    assert_valid(ds)
    prepended = arrow_rows(load_vit(path, system="prepend"))
    assert prepended[0]["conversations"][0]["value"] == "Be brief.\n<image>\nWhat is it?"
    with pytest.raises(FormatError, match="system_message"):
        load_vit(path, format="sharegpt", system="reject")
    with pytest.raises(ConfigError, match="system must be one of"):  # a bad option value: one line, a ValueError too
        load_vit(path, format="sharegpt", system="bogus")
    with pytest.raises(ConfigError, match="layout must be"):
        load_vit(path, format="svit", layout="bogus")
    with pytest.raises(TypeError, match="do not apply to format 'llava'"):
        load_vit(str(write_json(tmp_path / "l.json", [{"conversations": []}])), system="drop")
    # Round trip through the messages layout: the image is outside the output's folder, so reading it back
    # is refused unless allowed.
    out = sharegpt.save(ds, str(tmp_path / "out" / "chat_out.json"))
    with pytest.raises(FormatError, match="image_outside_root"):
        load_vit(out)
    back = load_vit(out, allow_outside_root=True)
    assert [r["conversations"] for r in arrow_rows(back)] == [r["conversations"] for r in got]
    assert [r["images"] for r in arrow_rows(back)] == [r["images"] for r in got]


def test_sharegpt_bad_and_conversations_layout(tmp_path):
    rows = [{"id": "t", "messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "{}"}]}]
    with pytest.raises(FormatError, match=r"field 'messages\[1\]\.role'.*'tool'"):
        load_vit(str(write_json(tmp_path / "tool.jsonl", rows, lines=True)))
    rows = [{"id": "p", "messages": [{"role": "user", "content": [{"type": "audio"}]}, {"role": "assistant", "content": "x"}]}]
    with pytest.raises(FormatError, match=r"messages\[0\]\.content\[0\]\.type"):
        load_vit(str(write_json(tmp_path / "part.jsonl", rows, lines=True)))
    png(tmp_path / "q.png")
    rows = [{"id": "c", "images": ["q.png"], "conversations": [turn("user", "What?"), turn("assistant", "Red.")]}]
    ds = load_vit(str(write_json(tmp_path / "sharegpt_conv.json", rows)))
    assert provenance.steps(ds)[-1]["name"] == "sharegpt"
    assert_valid(ds)


# ---------------------------------------------------------------- detection, Hub path, explode, CLI


def test_detect_format():
    cases = {
        "llava": {"id": "1", "image": "a.jpg", "conversations": [turn("human", "x")]},
        "sharegpt": {"messages": []},
        "cauldron": {"images": [], "texts": []},
        "svit": {"image_id": 1, "conversations": [{"content": []}]},
        "mminstruct": {"domain": "ocr", "type": "judge", "output": ""},
        "canonical": {"id": "1", "images": [], "conversations": [], "source": "s", "task": "t"},
    }
    for name, record in cases.items():
        assert detect_format(record) == name
    assert detect_format({"id": "1", "image": "a", "instruction": "q", "output": "a", "type": "conv"}) == "llava"
    with pytest.raises(FormatError, match="match none of.*llava.*sharegpt"):
        detect_format({"text": "hello"})
    with pytest.raises(FormatError, match="unknown format 'foo'"):
        load_vit("x.json", format="foo")


def test_repo_id_goes_through_load_dataset(monkeypatch):
    calls = []
    rows = {"id": ["r"], "conversations": [[turn("human", "Hi"), turn("gpt", "Hello")]]}

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return datasets.DatasetDict({"train": Dataset.from_dict(rows), "test": Dataset.from_dict(rows)})

    import hf_vitcurate.formats.reading as reading

    monkeypatch.setattr(reading, "load_dataset", fake_load_dataset)
    ds = load_vit("some-org/some-vit", name="subset", revision="v1")
    assert calls == [("some-org/some-vit", "subset", {"revision": "v1"})]
    assert list(ds["source"]) == ["subset"] and list(ds["id"]) == ["r"]
    with pytest.raises(FormatError, match="splits"):
        load_vit("some-org/some-vit", split="validation")


def test_canonical_parquet_and_unreadable(tmp_path, llava_dir):
    ds = load_vit(str(llava_dir / "llava_mix.jsonl"), image_root=str(llava_dir / "imgs"))
    ds.to_parquet(str(tmp_path / "pool.parquet"))
    back = load_vit(str(tmp_path / "pool.parquet"), task="any")
    assert list(back["id"]) == list(ds["id"]) and set(back["task"]) == {"any"}
    assert [s["name"] for s in provenance.steps(back)] == ["canonical"]
    (tmp_path / "empty.json").write_text("")  # 0 records (what a command writes for 0 rows): 0 canonical rows
    assert len(load_vit(str(tmp_path / "empty.json"))) == 0
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FormatError, match="suffix"):
        load_vit(str(tmp_path / "notes.txt"))


def test_explode_turns(tmp_path):
    png(tmp_path / "e.png")
    img = [{"bytes": None, "path": str(tmp_path / "e.png")}]
    ds = Dataset.from_dict({
        "id": ["a", "b", "c"],
        "images": [img, [], img],
        "conversations": [
            [turn("human", "<image>\nQ0?"), turn("gpt", "A0."), turn("human", "Q1?"), turn("gpt", "A1."),
             turn("human", "Q2 <image> again?"), turn("gpt", "A2.")],
            [turn("human", "Hi"), turn("gpt", "Hello")],
            [turn("human", "Look:\n<image>"), turn("gpt", "Ok."), turn("human", "More?"), turn("gpt", "No.")],
        ],
        "source": ["s"] * 3, "task": ["conversation"] * 3, "score": [0.5, 0.1, 0.9],
    }, features=Features({**FEATURES, "score": Value("float32")}))  # fmt: skip
    out = explode_turns(ds)
    assert out[0]["id"] == "a#t0" and out.format["type"] is None  # the input's format, not Arrow
    rows = arrow_rows(out)
    assert [r["id"] for r in rows] == ["a#t0", "a#t1", "a#t2", "b#t0", "c#t0", "c#t1"]
    assert [r["parent_id"] for r in rows] == ["a", "a", "a", "b", "c", "c"] and [r["turn"] for r in rows] == [0, 1, 2, 0, 0, 1]
    assert [r["conversations"][0]["value"] for r in rows] == [
        "<image>\nQ0?", "<image>\nQ1?", "Q2 <image> again?", "Hi", "Look:\n<image>", "<image>\nMore?"]  # fmt: skip
    assert [len(r["images"]) for r in rows] == [1, 1, 1, 0, 1, 1] and rows[1]["score"] == 0.5
    assert_valid(out)
    assert provenance.steps(out)[-1]["name"] == "explode_turns"
    broken = Dataset.from_dict({"id": ["z"], "images": [[]], "conversations": [[turn("human", "Q"), turn("human", "Q")]],
                                "source": ["s"], "task": ["t"]}, features=FEATURES)  # fmt: skip
    with pytest.raises(ValidationError, match="'z'"):
        explode_turns(broken)


def cli_main(argv: list[str]) -> int:
    # Only the `convert` subcommand: the test must not depend on the other commands' modules.
    parser = argparse.ArgumentParser(prog="vitcurate")
    convert_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def test_convert_cli(llava_dir, tmp_path, capsys):
    src = str(llava_dir / "llava_mix.json")
    root = str(llava_dir / "imgs")
    assert cli_main(["convert", src, "--output", str(tmp_path / "pool.parquet"), "--image-root", root]) == 0
    assert len(load_vit(str(tmp_path / "pool.parquet"))) == 3
    assert cli_main(["convert", src, "--output", str(tmp_path / "one_turn.jsonl"), "--image-root", root, "--explode-turns",
                     "--output-image-root", root]) == 0  # fmt: skip
    back = load_vit(str(tmp_path / "one_turn.jsonl"), image_root=root)
    assert list(back["id"]) == ["000001#t0", "000001#t1", "000002#t0", "llava_mix-2#t0"]
    assert_valid(back)
    assert cli_main(["convert", src, "--output", str(tmp_path / "chat.jsonl"), "--to", "sharegpt", "--image-root", root]) == 0
    assert detect_format(json.loads(open(tmp_path / "chat.jsonl").readline())) == "sharegpt"
    bad = write_json(tmp_path / "bad.jsonl", [{"id": "x", "conversations": [turn("alien", "?")]}], lines=True)
    capsys.readouterr()
    assert cli_main(["convert", str(bad), "--output", str(tmp_path / "kept.parquet"), "--errors", "reject",
                     "--rejected", str(tmp_path / "rejected.jsonl")]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["rejected"] == 1 and summary["reasons"] == {"unknown_role": 1}
    assert json.loads(open(tmp_path / "rejected.jsonl").readline())["reject_reason"] == "unknown_role"
    with pytest.raises(FormatError, match="unknown_role"):
        cli_main(["convert", str(bad), "--output", str(tmp_path / "x.parquet")])
    with pytest.raises(ConfigError, match="--rejected: needs --errors reject"):
        cli_main(["convert", str(bad), "--output", str(tmp_path / "x.parquet"), "--rejected", str(tmp_path / "r.jsonl")])


def test_save_vit_and_formats_list(tmp_path):
    assert set(FORMATS) >= {"llava", "svit", "mminstruct", "cauldron", "sharegpt"}
    with pytest.raises(FormatError, match="cannot save"):
        save_vit(Dataset.from_dict({"id": []}), str(tmp_path / "x.json"), format="svit")
    assert mminstruct.TYPE_SUFFIX["long_vqa"] == ""


def test_formats_never_read_shared():
    # The package reads only what the user points it at; ../shared is for tests.
    for path in [*(PKG / "formats").glob("*.py"), PKG / "commands" / "convert.py"]:
        assert "../shared" not in path.read_text() and "shared/data" not in path.read_text(), path


# ---------------------------------------------------------------- caption files (issue 18, item 9)


def test_captions_minigpt4_real(real_data):
    # MiniGPT-4 / CC-SBU-Align: {"annotations": [{image_id, caption, ...}]}, images image/{image_id}.jpg beside the file.
    path = str(real_data / "minigpt4_cc_sbu_align_scored.json")
    ds = load_vit(path)
    first = json.load(open(path))["annotations"][0]
    rows = arrow_rows(ds)
    assert len(ds) == 300 and set(ds["task"]) == {"caption"}
    assert rows[0]["id"] == first["image_id"] and rows[0]["images"][0]["path"] == str(real_data / "image" / f"{first['image_id']}.jpg")
    assert rows[0]["conversations"] == [turn("human", "<image>\nDescribe the image concisely."), turn("gpt", first["caption"])]
    assert_valid(ds, check_images=False)
    detailed = load_vit(path, field="annotations", instruction="Describe this image in detail.", image_root="/cc_sbu_align")
    assert arrow_rows(detailed)[0]["conversations"][0]["value"] == "<image>\nDescribe this image in detail."
    assert arrow_rows(detailed)[0]["images"][0]["path"] == f"/cc_sbu_align/image/{first['image_id']}.jpg"
    assert provenance.steps(detailed)[-1]["params"]["instruction"] == "Describe this image in detail."


def test_captions_field_file_with_a_bad_record_rejects_only_that_record(tmp_path):
    """A record with a lone surrogate under field= is one rejected record, named; the others load."""
    good = {"image_id": "a", "caption": "A red square."}
    bad = {"image_id": "b", "caption": "Red \ud800 square."}
    path = tmp_path / "caps.json"
    path.write_text(json.dumps({"annotations": [good, bad, {**good, "image_id": "c"}]}))  # ascii escapes: valid JSON
    kept, rejected = load_vit(str(path), format="captions", field="annotations", errors="reject", image_root="/imgs")
    assert sorted(kept["id"]) == ["a", "c"]
    assert rejected["reject_reason"] == ["lone_surrogate"] and rejected["row"] == [1]
    with pytest.raises(FormatError, match=r"row 1 .*lone_surrogate"):
        load_vit(str(path), format="captions", field="annotations", image_root="/imgs")


def test_captions_coco_layout(tmp_path):
    png(tmp_path / "val2014" / "COCO_val2014_000000000001.png")
    coco = {
        "info": {}, "licenses": [],
        "images": [{"id": 1, "file_name": "COCO_val2014_000000000001.png"}],
        "annotations": [{"id": 10, "image_id": 1, "caption": "A red square."}, {"id": 11, "image_id": 1, "caption": "Red."},
                        {"id": 12, "image_id": 7, "caption": "No such image."}, {"id": 13, "image_id": 1, "caption": " "}],
    }  # fmt: skip
    path = str(write_json(tmp_path / "annotations" / "captions_val2014.json", coco))
    kept, rejected = load_vit(path, image_root=str(tmp_path / "val2014"), errors="reject")
    assert kept["id"] == ["10", "11"] and kept["source"] == ["captions_val2014"] * 2
    assert arrow_rows(kept)[1]["images"][0]["path"] == str(tmp_path / "val2014" / "COCO_val2014_000000000001.png")
    assert_valid(kept)
    assert rejected["reject_reason"] == ["unknown_image", "empty_value"]
    with pytest.raises(FormatError, match=r"row 2.*image_id"):
        load_vit(path, image_root=str(tmp_path / "val2014"))
    lines = write_json(tmp_path / "caps.jsonl", [{"image_id": "a", "caption": "A cat."}], lines=True)
    assert detect_format({"image_id": "a", "caption": "A cat."}) == "captions"
    assert arrow_rows(load_vit(str(lines), image_name="{image_id}.png"))[0]["images"][0]["path"] == str(tmp_path / "a.png")


def test_field_selects_the_records_list(tmp_path, llava_dir):
    rows = [json.loads(line) for line in open(llava_dir / "llava_mix.jsonl")]
    path = str(write_json(tmp_path / "wrapped.json", {"meta": {"v": 1}, "data": rows, "other": []}))
    with pytest.raises(FormatError, match=r"pass field= \(one of \['data', 'other'\]\)"):
        load_vit(path)
    ds = load_vit(path, field="data", image_root=str(llava_dir / "imgs"))
    assert len(ds) == 3 and ds["id"][0] == "000001"
    with pytest.raises(FormatError, match="field='nope' is not a list of records"):
        load_vit(path, field="nope")


def test_field_and_instruction_in_the_cli(real_data, llava_dir, tmp_path, capsys):
    from hf_vitcurate.formats import captions

    src = str(real_data / "minigpt4_cc_sbu_align_scored.json")
    out = tmp_path / "caps.jsonl"
    assert cli_main(["convert", src, "--output", str(out), "--to", "jsonl", "--field", "annotations", "--instruction", "Describe this image in detail."]) == 0
    back = load_vit(str(out))
    assert len(back) == 300 and arrow_rows(back)[0]["conversations"][0]["value"] == "<image>\nDescribe this image in detail."
    rows = [json.loads(line) for line in open(llava_dir / "llava_mix.jsonl")]
    wrapped = str(write_json(tmp_path / "wrapped.json", {"data": rows, "other": []}))
    from hf_vitcurate.commands import validate as validate_command

    parser = argparse.ArgumentParser(prog="vitcurate")
    validate_command.register(parser.add_subparsers(dest="command"))
    capsys.readouterr()
    args = parser.parse_args(["validate", wrapped, "--field", "data", "--image-root", str(llava_dir / "imgs")])
    assert args.func(args) == 0  # every command that reads inputs reads them with load_input(args)
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_in"] == 3 and summary["kept"] == 3
    p = argparse.ArgumentParser()
    add_input_args(p)
    assert captions.INSTRUCTION in " ".join(p.format_help().split())


# ---------------------------------------------------------------- convert: outputs that move (issue 18, item 11)


@pytest.mark.parametrize("to", ["llava", "sharegpt", "jsonl"])
def test_convert_paths_stay_valid_when_the_folder_moves(llava_dir, tmp_path, to):
    import shutil

    tree = tmp_path / "project"
    shutil.copytree(llava_dir, tree / "data")
    src, root = str(tree / "data" / "llava_mix.json"), str(tree / "data" / "imgs")
    assert cli_main(["convert", src, "--output", str(tree / "out" / "pool.jsonl"), "--to", to, "--image-root", root]) == 0
    assert cli_main(["convert", src, "--output", str(tree / "alone" / "pool.jsonl"), "--to", to, "--image-root", root, "--embed-images"]) == 0
    moved = tmp_path / "moved"
    shutil.move(str(tree), str(moved))  # data and output move together: relative paths hold
    # llava/sharegpt outputs point to ../data: outside their folder, so reading needs allow_outside_root (canonical allows it)
    back = load_vit(str(moved / "out" / "pool.jsonl"), allow_outside_root=True if to != "jsonl" else None)
    if to != "jsonl":  # the same on the command line
        with pytest.raises(FormatError, match="image_outside_root"):
            cli_main(["convert", str(moved / "out" / "pool.jsonl"), "--output", str(tmp_path / "again.parquet")])
        assert cli_main(["convert", str(moved / "out" / "pool.jsonl"), "--output", str(tmp_path / "again.parquet"),
                         "--allow-outside-root"]) == 0
    assert back[0]["images"][0].size == (8, 8) and all(not p.startswith(str(tree)) for p in
                                                        (img["path"] for row in arrow_rows(back) for img in row["images"]))
    shutil.move(str(moved / "alone"), str(tmp_path / "elsewhere"))  # an --embed-images output moves alone
    shutil.rmtree(moved)
    alone = load_vit(str(tmp_path / "elsewhere" / "pool.jsonl"))
    assert [img.size for img in alone[0]["images"]] == [(8, 8)] and len(alone) == 3
    assert (tmp_path / "elsewhere" / "images").is_dir()


def test_convert_embed_images_names_a_missing_file(llava_dir, tmp_path):
    (llava_dir / "imgs" / "coco" / "2.png").unlink()
    with pytest.raises(NotFoundError, match=r"row '000002': images\[0\]: cannot copy .*2.png: no such file"):
        cli_main(["convert", str(llava_dir / "llava_mix.json"), "--output", str(tmp_path / "o.json"),
                  "--image-root", str(llava_dir / "imgs"), "--embed-images"])  # fmt: skip


def test_mminstruct_files_read_choices_by_the_engine_rule(tmp_path):
    """Raw MMInstruct output loads by the same option/answer rule as the engine's parser."""
    from hf_vitcurate import load_vit

    def rec(i, options, answer):
        return {"id": f"r{i}", "image": "x.jpg", "domain": "image_scene", "type": "multiple_choice",
                "output": f"<Q1>Which fruit?</Q1><C1>{options}</C1><A1>{answer}</A1>"}

    records = [rec(0, "A. Pear B. Banana C. Plum D. Kiwi", "A red apple"),
               rec(1, "A. U.S. B. Vitamin C. C. Plum D. Kiwi", "B"),
               rec(2, "A. Pear B. Banana C. Plum D. Kiwi", "Answer: (C)")]
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg")
    path = tmp_path / "gen.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    kept, rejected = load_vit(str(path), format="mminstruct", errors="reject")
    assert [i[:2] for i in kept["id"]] == ["r1", "r2"], kept["id"]
    assert len(rejected) == 1 and rejected[0]["id"].startswith("r0"), rejected["id"]
    human = {i: c[0]["value"] for i, c in zip(kept["id"], kept["conversations"])}
    assert any("B. Vitamin C." in v and "A. U.S." in v for v in human.values())


# ---------------------------------------------------------------- bad lines, paths and empty outputs (issue 19, item 4)


def test_one_bad_line_is_one_rejected_record(tmp_path):
    """1,072 good rows and one malformed line: 1,072 kept, 1 rejected naming its line (was: the whole file refused)."""
    good = [json.dumps({"id": f"r{i}", "conversations": [turn("human", "Hi"), turn("gpt", "Hello")]}) for i in range(1072)]
    path = tmp_path / "pool.jsonl"
    path.write_text("\n".join(good[:500] + ['{"id": "bad", "conversations": [{"from": "hum'] + good[500:]) + "\n")
    kept, rejected = load_vit(str(path), errors="reject")
    assert len(kept) == 1072 and list(kept["id"][:1]) == ["r0"] and kept["id"][500] == "r500"
    assert rejected.select_columns(["row", "reject_reason"]).to_list() == [{"row": 500, "reject_reason": "malformed_json"}]
    assert rejected[0]["reject_detail"].startswith("record: line 501: not valid JSON")
    with pytest.raises(FormatError, match=r"pool.jsonl: row 500 .*line 501: not valid JSON.*\[malformed_json\]") as err:
        load_vit(str(path))
    assert "\n" not in str(err.value)


def test_bad_text_in_a_json_array_names_the_record(tmp_path):
    """Invalid UTF-8 and a lone surrogate inside a JSON array: rejected with record and field, never changed."""
    rows = [{"id": f"r{i}", "conversations": [turn("human", "Hi"), turn("gpt", f"A{i}")]} for i in range(4)]
    data = b"\xef\xbb\xbf" + json.dumps(rows).encode().replace(b"A1", b"A\xff").replace(b"A2", b"\\udbff")  # and a BOM
    (tmp_path / "pool.json").write_bytes(data)
    kept, rejected = load_vit(str(tmp_path / "pool.json"), errors="reject")
    assert list(kept["id"]) == ["r0", "r3"]
    got = rejected.select_columns(["row", "reject_reason", "reject_detail"]).to_list()
    assert [(r["row"], r["reject_reason"]) for r in got] == [(1, "invalid_utf8"), (2, "lone_surrogate")]
    assert got[0]["reject_detail"] == "conversations[1].value: record 1: bytes that are not UTF-8"


def test_image_paths_stay_inside_the_root_unless_allowed(tmp_path):
    png(tmp_path / "secret.png")
    png(tmp_path / "data" / "a.png")
    rows = [{"id": "in", "image": "a.png", "conversations": [turn("human", "<image>\nHi"), turn("gpt", "Hi")]},
            {"id": "up", "image": "../secret.png", "conversations": [turn("human", "<image>\nHi"), turn("gpt", "Hi")]}]
    path = str(write_json(tmp_path / "data" / "pool.jsonl", rows, lines=True))
    kept, rejected = load_vit(path, errors="reject")
    assert list(kept["id"]) == ["in"] and list(rejected["reject_reason"]) == ["image_outside_root"]
    assert "allow_outside_root" in rejected[0]["reject_detail"]
    assert len(load_vit(path, allow_outside_root=True)) == 2
    with pytest.raises(FormatError, match=r"row 1 \(id='up'\) field 'images\[0\]': resolves to .*secret.png, outside image_root"):
        load_vit(path)


def test_a_missing_local_path_is_not_a_hub_id(tmp_path):
    for path in (str(tmp_path / "no" / "such"), "./typo_folder", "pool_typo.jsonl"):
        with pytest.raises(NotFoundError, match="no such file or folder: "):
            load_vit(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ""])
def test_an_empty_output_is_read_by_every_command(llava_dir, tmp_path, suffix, capsys):
    """`validate --rejected` with nothing rejected writes 0 rows; validate, stats and convert read them back."""
    from datasets import load_from_disk

    from hf_vitcurate.cli import main

    src, out = str(llava_dir / "llava_mix.jsonl"), str(tmp_path / f"rejected{suffix}")
    assert main(["-q", "validate", src, "--image-root", str(llava_dir / "imgs"), "--rejected", out]) == 0
    assert json.loads(capsys.readouterr().out)["rejected"] == 0
    for argv in (["validate", out], ["stats", out, "--json"], ["convert", out, "--output", str(tmp_path / "c.parquet")]):
        assert main(["-q", *argv]) == 0, argv
        capsys.readouterr()
    if not suffix:
        assert len(load_from_disk(out)) == 0


def test_cli_strict_with_a_missing_image_is_one_line(llava_dir, capsys):
    from hf_vitcurate.cli import main

    (llava_dir / "imgs" / "coco" / "2.png").unlink()
    src = str(llava_dir / "llava_mix.jsonl")
    assert main(["-q", "validate", src, "--image-root", str(llava_dir / "imgs"), "--strict"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vitcurate validate: error: row id='000002' field='images'") and "Traceback" not in "\n".join(err)


def test_save_output_writes_empty_splits_that_read_back(tmp_path):
    from datasets import DatasetDict, load_from_disk

    from hf_vitcurate.commands.common import load_input, save_output

    empty = Dataset.from_dict({k: [] for k in FEATURES}, features=FEATURES)
    save_output(DatasetDict({"train": empty.select([]), "eval": empty}), str(tmp_path / "parts"))
    assert {k: len(v) for k, v in load_from_disk(str(tmp_path / "parts")).items()} == {"train": 0, "eval": 0}
    (tmp_path / "old").mkdir()  # a 0-row folder written before the fix: no data file
    empty.save_to_disk(str(tmp_path / "old"))
    assert len(load_input(str(tmp_path / "old"))) == 0


def test_deep_nesting_never_kills_the_process(tmp_path):
    """pyarrow's parser overflows its stack on a few thousand levels (a segfault): such a line is one bad record."""
    rows = [json.dumps({"id": f"r{i}", "conversations": [turn("human", "Hi"), turn("gpt", "Yo")]}) for i in range(3)]
    for depth in (20_000, 990, 101):  # pyarrow segfaults; datasets' type inference recurses too deep; over the limit
        deep = '{"id": "deep", "x": ' + "[" * depth + "]" * depth + "}"
        (tmp_path / "pool.jsonl").write_text("\n".join([rows[0], deep, *rows[1:]]) + "\n")
        kept, rejected = load_vit(str(tmp_path / "pool.jsonl"), errors="reject")
        assert list(kept["id"]) == ["r0", "r1", "r2"] and rejected[0]["reject_detail"] == "record: line 2: nested deeper than 100 levels"
    deep = '{"id": "deep", "x": ' + "[" * 20_000 + "]" * 20_000 + "}"
    (tmp_path / "pool.json").write_text("[" + ",".join([rows[0], deep]) + "]")
    with pytest.raises(FormatError, match="record 1 .* nested too deep"):
        load_vit(str(tmp_path / "pool.json"), errors="reject")  # a JSON array: the whole file, but no crash


def test_a_caption_file_with_bad_text_keeps_its_other_records(tmp_path):
    """{"annotations": [...]} read whole: a record with bad bytes or a lone surrogate is one bad record."""
    anns = [{"image_id": str(i), "caption": f"C{i} a red square."} for i in range(4)]
    data = json.dumps({"annotations": anns}).encode().replace(b"C1 a", b"C\xff a").replace(b"C2 a", b"\\ud800 a")
    (tmp_path / "filter_cap.json").write_bytes(data)
    kept, rejected = load_vit(str(tmp_path / "filter_cap.json"), errors="reject")
    assert list(kept["id"]) == ["0", "3"]
    got = rejected.select_columns(["row", "reject_reason", "reject_detail"]).to_list()
    assert [r["row"] for r in got] == [1, 2] and all(r["reject_reason"] == "lone_surrogate" for r in got)
    assert got[0]["reject_detail"].startswith("caption: record 1:")


@pytest.mark.parametrize("layout", ["indent", "one_a_line", "compact"])
def test_a_broken_record_in_a_json_array(tmp_path, layout):
    """Records on lines of their own (json.dump indent=k, or one a line): a broken one is one bad record; compact: refused."""
    rows = [{"id": f"r{i}", "conversations": [turn("human", "Hi"), turn("gpt", f"A{i}")]} for i in range(5)]
    text = {"indent": json.dumps(rows, indent=4), "one_a_line": "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n",
            "compact": json.dumps(rows)}[layout]
    path = tmp_path / "pool.json"
    path.write_text(text.replace('"A2"', '"A2').replace(json.dumps(rows[4], indent=4 if layout == "indent" else None)
                                                         .replace("\n", "\n    "), "null"))
    if layout == "compact":
        with pytest.raises(FormatError, match="record 2 .*not valid JSON"):
            load_vit(str(path), errors="reject")
        return
    kept, rejected = load_vit(str(path), errors="reject")
    assert list(kept["id"]) == ["r0", "r1", "r3"]
    assert [(r["row"], r["reject_reason"]) for r in rejected.select_columns(["row", "reject_reason"]).to_list()] == [
        (2, "malformed_json"), (4, "not_an_object")]


def test_a_compact_json_array_with_a_null_item_is_read_whole(tmp_path):
    rows = [{"id": f"r{i}", "conversations": [turn("human", "Hi"), turn("gpt", "Yo")]} for i in range(3)]
    (tmp_path / "pool.json").write_text(json.dumps([rows[0], None, rows[2]]))
    kept, rejected = load_vit(str(tmp_path / "pool.json"), errors="reject")
    assert list(kept["id"]) == ["r0", "r2"] and list(rejected["row"]) == [1]


@pytest.mark.parametrize("n", [3, 300])  # 300: past inside._SMALL_DIR, the folder is listed instead of a stat per path
def test_outside_root_matches_realpath(tmp_path, n):
    """inside.outside_root gives what os.path.realpath per path gives, in both of its ways of looking."""
    import os

    import pyarrow as pa

    from hf_vitcurate.formats.inside import outside_root

    root, out = tmp_path / "imgs", tmp_path / "elsewhere"
    root.mkdir(), out.mkdir()
    (out / "secret.png").write_bytes(b"x")
    for i in range(n):
        (root / f"{i}.png").write_bytes(b"x")
    os.symlink(out / "secret.png", root / "link.png")
    os.symlink(out, root / "outdir")
    paths = [str(root / f"{i}.png") for i in range(n)] + [
        str(root / "link.png"), str(root / "outdir" / "secret.png"), str(root / ".." / "elsewhere" / "secret.png"),
        "file://" + str(root / "0.png"), "https://example.com/a.png", str(root / "sub" / ".." / "1.png")]
    images = pa.array([[{"bytes": None, "path": p}] for p in paths] + [[{"bytes": b"png", "path": "/etc/passwd"}]])
    want = {i: (0, os.path.realpath(p)) for i, p in enumerate(paths)
            if "://" not in p and not os.path.realpath(p).startswith(os.path.realpath(root) + "/")}
    assert outside_root(images, str(root)) == want
    assert set(want) == {n, n + 1, n + 2}  # the link, the folder link, ../; bytes and URLs pass
