"""Fault corpus (issue 19): bad input of many kinds, mixed into good rows, through load, validate, concepts and publish.

Every kind is one test id. Each format gets one file: a good row, then each of its bad kinds
followed by a good row. A kind is either rejected at load (``load_vit(errors="reject")``:
reason, record number, field), rejected by ``validate`` (``"validate"``: by the default image
check too; ``"verify"``: only by ``check_images="verify"``), or kept (and checked). Rows in =
kept + rejected, no record lost, nothing crashes; the rows that pass go through
``stages.concepts`` and ``hub.publish`` (local, no push).
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import datasets
import numpy as np
import pytest
from datasets import concatenate_datasets
from PIL import Image

from hf_vitcurate import load_vit, validate
from hf_vitcurate.schema import CORE_COLUMNS

IMG = "<image>\n"


def qa(q="<image>\nWhat colour is the square?", a="Red.") -> list[dict[str, str]]:
    return [{"from": "human", "value": q}, {"from": "gpt", "value": a}]


def llava(kind: str, **over: Any) -> dict[str, Any]:
    return {"id": kind, "image": "good.png", "conversations": qa(), **over}


def sharegpt(kind: str, **over: Any) -> dict[str, Any]:
    return {"id": kind, "messages": [{"role": "user", "content": "<image>\nWhat is it?"}, {"role": "assistant", "content": "A square."}],
            "images": ["good.png"], **over}


def mminstruct(kind: str, **over: Any) -> dict[str, Any]:
    return {"id": kind, "image": "good.png", "domain": "image_scene", "type": "judgement",
            "output": "<Q1> Is it red? </Q1> <A1> Yes </A1>", **over}


def svit(kind: str, **over: Any) -> dict[str, Any]:
    return {"image_id": kind, "conversations": [{"content": [{"from": "user", "value": "What colour is it?"},
                                                             {"from": "gpt", "value": "Red."}]}], **over}


def caption(kind: str, **over: Any) -> dict[str, Any]:
    return {"image_id": kind, "caption": "A red square on white.", **over}


def cauldron(kind: str, **over: Any) -> dict[str, Any]:
    return {"id": kind, "images": ["good.png"], "texts": [{"user": "What colour?", "assistant": "Red."}], **over}


GOOD = {"llava": llava, "sharegpt": sharegpt, "mminstruct": mminstruct, "svit": svit, "captions": caption, "cauldron": cauldron}
# Load options per file: SVIT and caption images are named after image_id.
OPTIONS = {"svit": {"image_name": "{image_id}.png"}, "captions": {"image_name": "{image_id}.png"}}


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@dataclass(frozen=True)
class Kind:
    name: str
    fmt: str
    lines: Callable[[str], list[bytes]]  # kind name -> the record lines (blank lines allowed)
    expect: str  # "load", "validate", "verify" or "kept"
    reason: str | None = None
    field: str | None = None  # a substring of the reject detail (load) naming the field
    check: Callable[[dict[str, Any]], bool] | None = None  # kept: a check of the row (images undecoded)


LONG = "x" * 1_000_000
UNICODE = "\u202eRTL\u0301 zero\u200bwidth NUL\u0000 \U0001F600 done."


def _image_path(row, k=0):
    return row["images"][k]["path"]


KINDS = [
    # ---- LLaVA: lines that do not read
    Kind("malformed_json", "llava", lambda k: [b'{"id": "malformed_json", "conversations": [{"from": "hu'], "load", "malformed_json", "line "),
    Kind("truncated_object", "llava", lambda k: [b'{"id": "truncated_object", "image": "good.png"'], "load", "malformed_json", "line "),
    Kind("array_line", "llava", lambda k: [b"[1, 2, 3]"], "load", "not_an_object", "record"),
    Kind("null_line", "llava", lambda k: [b"null"], "load", "not_an_object", "record"),
    Kind("number_line", "llava", lambda k: [b"42"], "load", "not_an_object", "record"),
    Kind("invalid_utf8", "llava", lambda k: [line(llava(k, conversations=qa(a="RED"))).replace(b"RED", b"R\xffD")], "load", "invalid_utf8", "conversations[1].value"),
    Kind("invalid_utf8_key", "llava", lambda k: [line(llava(k, extra=1)).replace(b"extra", b"ex\xfetra")], "load", "invalid_utf8", "'ex\\udcfetra'"),
    Kind("lone_high_surrogate", "llava", lambda k: [line(llava(k, conversations=qa(a="@@"))).replace(b"@@", b"\\ud800")], "load", "lone_surrogate", "conversations[1].value"),
    Kind("lone_low_surrogate", "llava", lambda k: [line(llava(k, conversations=qa(q="<image>\n@@"))).replace(b"@@", b"\\udc00")], "load", "lone_surrogate", "conversations[0].value"),
    Kind("duplicate_key", "llava", lambda k: [b'{"id": "duplicate_key", "id": "again", "image": "good.png", "conversations": []}'], "load", "duplicate_key", "id: line "),
    Kind("nan_literal", "llava", lambda k: [line(llava(k, score=float("nan")))], "kept"),
    Kind("deep_nesting", "llava", lambda k: [b'{"id": "deep_nesting", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"], "load", "malformed_json", "line "),
    # ---- LLaVA: lines that read, kept as they are
    Kind("surrogate_pair", "llava", lambda k: [line(llava(k, conversations=qa(a="smile \U0001F600")))], "kept",
         check=lambda r: r["conversations"][1]["value"] == "smile \U0001F600"),
    Kind("blank_lines", "llava", lambda k: [b"", b"   ", b"\t", line(llava(k))], "kept"),
    Kind("bom_in_line", "llava", lambda k: [b"\xef\xbb\xbf" + line(llava(k))], "kept"),
    Kind("crlf", "llava", lambda k: [line(llava(k)) + b"\r"], "kept"),
    Kind("int_id", "llava", lambda k: [line(llava(7001))], "kept"),
    Kind("empty_id", "llava", lambda k: [line(llava(""))], "kept"),
    Kind("huge_string", "llava", lambda k: [line(llava(k, conversations=qa(a=LONG)))], "kept",
         check=lambda r: len(r["conversations"][1]["value"]) == len(LONG)),
    Kind("many_turns", "llava", lambda k: [line(llava(k, conversations=qa() + qa(q="And?", a="Yes.") * 300))], "kept",
         check=lambda r: len(r["conversations"]) == 602),
    Kind("odd_unicode", "llava", lambda k: [line(llava(k, conversations=qa(a=UNICODE)))], "kept",
         check=lambda r: r["conversations"][1]["value"] == UNICODE),
    Kind("extra_fields", "llava", lambda k: [line(llava(k, weight=0.5, conversations=[{**t, "weight": 1} for t in qa()]))], "kept"),
    Kind("no_placeholder", "llava", lambda k: [line(llava(k, conversations=qa(q="What colour?")))], "kept",
         check=lambda r: r["conversations"][0]["value"] == IMG + "What colour?"),
    Kind("two_images", "llava", lambda k: [line(llava(k, image=["good.png", "rgba.png"], conversations=qa(q="Compare.")))], "kept",
         check=lambda r: len(r["images"]) == 2 and r["conversations"][0]["value"].count("<image>") == 2),
    Kind("text_only", "llava", lambda k: [line({"id": k, "conversations": qa(q="Tell me a joke.", a="No.")})], "kept",
         check=lambda r: r["images"] == []),
    Kind("dotdot_inside", "llava", lambda k: [line(llava(k, image="sub/../good.png"))], "kept"),
    Kind("cmyk_jpeg", "llava", lambda k: [line(llava(k, image="cmyk.jpg"))], "kept"),
    Kind("rgba_png", "llava", lambda k: [line(llava(k, image="rgba.png"))], "kept"),
    Kind("png_16bit", "llava", lambda k: [line(llava(k, image="i16.png"))], "kept"),
    Kind("palette_png", "llava", lambda k: [line(llava(k, image="pal.png"))], "kept"),
    Kind("grey_jpeg", "llava", lambda k: [line(llava(k, image="grey.jpg"))], "kept"),
    # ---- LLaVA: records that convert badly
    Kind("missing_conversations", "llava", lambda k: [line({"id": k, "image": "good.png"})], "load", "missing_field", "conversations"),
    Kind("conversations_string", "llava", lambda k: [line(llava(k, conversations="human: hi"))], "load", "bad_conversations", "conversations"),
    Kind("turn_not_object", "llava", lambda k: [line(llava(k, conversations=["hi", "there"]))], "load", "bad_turn", "conversations[0]"),
    Kind("missing_role", "llava", lambda k: [line(llava(k, conversations=[{"value": "<image>\nhi"}, qa()[1]]))], "load", "missing_role", "conversations[0]"),
    Kind("unknown_role", "llava", lambda k: [line(llava(k, conversations=[qa()[0], {"from": "alien", "value": "?"}]))], "load", "unknown_role", "conversations[1]"),
    Kind("value_number", "llava", lambda k: [line(llava(k, conversations=[qa()[0], {"from": "gpt", "value": 42}]))], "load", "non_text_value", "conversations[1]"),
    Kind("value_null", "llava", lambda k: [line(llava(k, conversations=[qa()[0], {"from": "gpt", "value": None}]))], "load", "non_text_value", "conversations[1]"),
    Kind("float_id", "llava", lambda k: [line(llava(1.5))], "load", "bad_value", "id"),
    Kind("object_id", "llava", lambda k: [line(llava({"n": 1}))], "load", "bad_value", "id"),
    Kind("image_number", "llava", lambda k: [line(llava(k, image=5))], "load", "bad_image", "image"),
    Kind("image_list_null", "llava", lambda k: [line(llava(k, image=["good.png", None]))], "load", "bad_image", "image"),
    Kind("path_dotdot", "llava", lambda k: [line(llava(k, image="../secret.png"))], "load", "image_outside_root", "images[0]"),
    Kind("path_absolute", "llava", lambda k: [line(llava(k, image="@SECRET@"))], "load", "image_outside_root", "images[0]"),
    Kind("path_file_url", "llava", lambda k: [line(llava(k, image="file://@SECRET@"))], "load", "image_outside_root", "images[0]"),
    Kind("symlink_out", "llava", lambda k: [line(llava(k, image="link_out.png"))], "load", "image_outside_root", "images[0]"),
    Kind("dir_symlink_out", "llava", lambda k: [line(llava(k, image="outdir/secret.png"))], "load", "image_outside_root", "images[0]"),
    # ---- LLaVA: rows validate rejects
    Kind("first_not_human", "llava", lambda k: [line(llava(k, conversations=qa()[::-1]))], "validate", "first_not_human"),
    Kind("not_alternating", "llava", lambda k: [line(llava(k, conversations=[qa()[0], qa()[0], qa()[1]]))], "validate", "not_alternating"),
    Kind("last_not_gpt", "llava", lambda k: [line(llava(k, conversations=qa() + [qa()[0]]))], "validate", "last_not_gpt"),
    Kind("empty_conversation", "llava", lambda k: [line(llava(k, image=None, conversations=[]))], "validate", "empty_conversation"),
    Kind("empty_answer", "llava", lambda k: [line(llava(k, conversations=qa(a="")))], "validate", "empty_answer"),
    Kind("blank_question", "llava", lambda k: [line(llava(k, image=None, conversations=qa(q="   ")))], "validate", "empty_question"),
    Kind("extra_placeholder", "llava", lambda k: [line(llava(k, conversations=qa(q="<image>\n<image>\nWhat?")))], "validate", "image_placeholder_mismatch"),
    Kind("placeholder_no_image", "llava", lambda k: [line({"id": k, "conversations": qa()})], "validate", "image_placeholder_mismatch"),
    Kind("duplicate_id", "llava", lambda k: [line(llava("good-0"))], "validate", "duplicate_id"),
    Kind("image_missing", "llava", lambda k: [line(llava(k, image="nope.png"))], "validate", "image_missing"),
    Kind("image_zero_bytes", "llava", lambda k: [line(llava(k, image="zero.png"))], "validate", "image_undecodable"),
    Kind("image_directory", "llava", lambda k: [line(llava(k, image="folder.png"))], "validate", "image_missing"),
    Kind("image_symlink_loop", "llava", lambda k: [line(llava(k, image="loop_a.png"))], "validate", "image_missing"),
    Kind("image_corrupt", "llava", lambda k: [line(llava(k, image="corrupt.png"))], "validate", "image_undecodable"),
    Kind("image_text_file", "llava", lambda k: [line(llava(k, image="notes.png"))], "validate", "image_undecodable"),
    Kind("decompression_bomb", "llava", lambda k: [line(llava(k, image="bomb.png"))], "validate", "image_undecodable"),
    Kind("truncated_png", "llava", lambda k: [line(llava(k, image="trunc.png"))], "verify", "image_undecodable"),
    Kind("truncated_jpeg", "llava", lambda k: [line(llava(k, image="trunc.jpg"))], "verify", "image_undecodable"),
    # ---- ShareGPT
    Kind("sg_malformed", "sharegpt", lambda k: [b'{"id": "sg_malformed", "messages": [}'], "load", "malformed_json", "line "),
    Kind("sg_messages_string", "sharegpt", lambda k: [line(sharegpt(k, messages="hi"))], "load", "bad_conversations", "messages"),
    Kind("sg_unknown_part", "sharegpt", lambda k: [line(sharegpt(k, messages=[{"role": "user", "content": [{"type": "audio"}]}]))], "load", "unknown_part", "messages[0]"),
    Kind("sg_tool_role", "sharegpt", lambda k: [line(sharegpt(k, messages=[{"role": "tool", "content": "{}"}]))], "load", "unknown_role", "messages[0]"),
    Kind("sg_content_null", "sharegpt", lambda k: [line(sharegpt(k, messages=[{"role": "user", "content": None}]))], "load", "non_text_value", "messages[0]"),
    Kind("sg_image_number", "sharegpt", lambda k: [line(sharegpt(k, images=[5]))], "load", "bad_image", "images[0]"),
    Kind("sg_surrogate", "sharegpt", lambda k: [line(sharegpt(k, id="@@")).replace(b"@@", b"sg\\udfff")], "load", "lone_surrogate", "id"),
    Kind("sg_images_number", "sharegpt", lambda k: [line(sharegpt(k, images=-1))], "load", "bad_image", "images"),
    Kind("sg_images_one_path", "sharegpt", lambda k: [line(sharegpt(k, images="good.png"))], "kept",
         check=lambda r: len(r["images"]) == 1 and _image_path(r).endswith("/good.png")),
    Kind("sg_outside", "sharegpt", lambda k: [line(sharegpt(k, images=["../secret.png"]))], "load", "image_outside_root", "images[0]"),
    Kind("sg_system_only", "sharegpt", lambda k: [line(sharegpt(k, images=[], messages=[{"role": "system", "content": "Be brief."}]))], "validate", "empty_conversation"),
    Kind("sg_image_url_part", "sharegpt", lambda k: [line({"id": k, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "good.png"}}, {"type": "text", "text": "What?"}]},
        {"role": "assistant", "content": "Red."}]})], "kept", check=lambda r: _image_path(r).endswith("/good.png")),
    # ---- MMInstruct
    Kind("mm_missing_domain", "mminstruct", lambda k: [line(mminstruct(k, domain=None))], "load", "missing_field", "domain"),
    Kind("mm_unknown_type", "mminstruct", lambda k: [line(mminstruct(k, type="riddle"))], "load", "unknown_type", "type"),
    Kind("mm_unparsable", "mminstruct", lambda k: [line(mminstruct(k, output="I cannot help with that."))], "load", "unparsable", "output"),
    Kind("mm_empty_output", "mminstruct", lambda k: [line(mminstruct(k, output=""))], "load", "empty_output", "output"),
    Kind("mm_unclosed_tag", "mminstruct", lambda k: [line(mminstruct(k, output="<Q1> Is it red? <A1> Yes </A1>"))], "load", "unclosed_tag", "output"),
    Kind("mm_not_yes_no", "mminstruct", lambda k: [line(mminstruct(k, output="<Q1> Is it red? </Q1> <A1> Maybe </A1>"))], "load", "judgement_not_yes_no", "output"),
    Kind("mm_bad_options", "mminstruct", lambda k: [line(mminstruct(k, type="multiple_choice", output="<Q1> Which? </Q1> <C1> A. x B. y </C1> <A1> A </A1>"))], "load", "bad_options", "output"),
    Kind("mm_malformed", "mminstruct", lambda k: [b'{"id": "mm_malformed", "output": "<Q1>'], "load", "malformed_json", "line "),
    # ---- SVIT (native)
    Kind("svit_no_image_id", "svit", lambda k: [line({"conversations": svit(k)["conversations"], "image_id": None})], "load", "missing_field", "image_id"),
    Kind("svit_empty_conversations", "svit", lambda k: [line(svit(k, conversations=[]))], "load", "missing_field", "conversations"),
    Kind("svit_content_string", "svit", lambda k: [line(svit(k, conversations=[{"content": "hi"}]))], "load", "bad_conversations", "conversations[0].content"),
    Kind("svit_invalid_utf8", "svit", lambda k: [line(svit(k)).replace(b"Red.", b"R\xc3(d.")], "load", "invalid_utf8", "conversations[0].content[1].value"),
    Kind("svit_image_missing", "svit", lambda k: [line(svit(k))], "validate", "image_missing"),  # no {image_id}.png
    # ---- caption files
    Kind("cap_empty_caption", "captions", lambda k: [line(caption(k, caption="  "))], "load", "empty_value", "caption"),
    Kind("cap_caption_number", "captions", lambda k: [line(caption(k, caption=3))], "load", "non_text_value", "caption"),
    Kind("cap_no_image_id", "captions", lambda k: [line({"image_id": "", "caption": "x", "id": k})], "load", "missing_field", "image_id"),
    Kind("cap_truncated_image", "captions", lambda k: [line(caption(k))], "verify", "image_undecodable"),  # {image_id}.png truncated
    # ---- the_cauldron
    Kind("cd_texts_string", "cauldron", lambda k: [line(cauldron(k, texts="hi"))], "load", "missing_field", "texts"),
    Kind("cd_user_null", "cauldron", lambda k: [line(cauldron(k, texts=[{"user": None, "assistant": "x"}]))], "load", "non_text_value", "texts[0].user"),
    Kind("cd_images_bool", "cauldron", lambda k: [line(cauldron(k, images=True))], "load", "bad_image", "images"),
    Kind("cd_outside", "cauldron", lambda k: [line(cauldron(k, images=["/etc/hostname"]))], "load", "image_outside_root", "images[0]"),
    Kind("cd_bom_start", "cauldron", None, "kept"),  # the file starts with a byte order mark (first record)
]
BY_NAME = {k.name: k for k in KINDS}
IDS = {"int_id": "7001", "empty_id": None, "duplicate_id": "good-0", "cd_bom_start": "good-0"}  # kept ids that are not the kind's name (None: derived)


# ---------------------------------------------------------------- the corpus


def _png(path: Path, mode="RGB", size=(8, 8), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, {"RGB": (255, 0, 0), "RGBA": (255, 0, 0, 128), "CMYK": (0, 255, 255, 0)}.get(mode, 1)).save(buf, format=fmt)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _noise(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def _bomb() -> bytes:
    """A valid-looking PNG whose header claims 40000 x 40000 pixels (PIL refuses it on open)."""
    ihdr = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def _images(root: Path) -> None:
    root.mkdir(parents=True)
    good = _png(root / "good.png")
    (root / "sub").mkdir()
    _png(root / "rgba.png", "RGBA")
    _png(root / "i16.png", "I;16")
    _png(root / "pal.png", "P")
    _png(root / "cmyk.jpg", "CMYK", fmt="JPEG")
    _png(root / "grey.jpg", "L", fmt="JPEG")
    (root / "zero.png").write_bytes(b"")
    (root / "folder.png").mkdir()
    os.symlink("loop_b.png", root / "loop_a.png")
    os.symlink("loop_a.png", root / "loop_b.png")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (root / "notes.png").write_text("not an image")
    (root / "bomb.png").write_bytes(_bomb())
    png, jpg = _noise("PNG"), _noise("JPEG")
    (root / "trunc.png").write_bytes(png[: len(png) // 2])
    (root / "trunc.jpg").write_bytes(jpg[: len(jpg) // 2])
    (root / "cap_truncated_image.png").write_bytes(png[: len(png) // 2])
    _png(root.parent / "secret.png")
    (root.parent / "outside").mkdir()
    _png(root.parent / "outside" / "secret.png")
    os.symlink(root.parent / "secret.png", root / "link_out.png")
    os.symlink(root.parent / "outside", root / "outdir")
    for i in range(len(KINDS) + 1):  # SVIT / caption good rows: {image_id}.png
        (root / f"good-{i}.png").write_bytes(good)


@dataclass
class Loaded:
    path: Path
    records: dict[str, list[int]]  # kind or good id -> its record numbers
    n_records: int
    kept: datasets.Dataset
    rejected: datasets.Dataset
    valid: Any  # validate(kept) with the default image check
    verified: Any  # validate(kept, check_images="verify")


def _write(fmt: str, root: Path) -> tuple[Path, dict[str, list[int]], int]:
    secret = str(root.parent / "secret.png")
    out, records, n = [], {}, 0

    def add(name: str, lines: list[bytes]) -> None:
        nonlocal n
        for data in lines:
            out.append(data.replace(b"@SECRET@", secret.encode()))
            if data.strip(b" \t\r\xef\xbb\xbf"):
                records.setdefault(name, []).append(n)
                n += 1

    first = line(GOOD[fmt]("good-0"))
    add("good-0", [b"\xef\xbb\xbf" + first if fmt == "cauldron" else first])
    for i, kind in enumerate((k for k in KINDS if k.fmt == fmt), start=1):
        if kind.lines is not None:
            add(kind.name, kind.lines(kind.name))
        add(f"good-{i}", [line(GOOD[fmt](f"good-{i}"))])
    if fmt == "cauldron":
        records["cd_bom_start"] = records["good-0"]
    path = root / f"{fmt}.jsonl"
    path.write_bytes(b"\n".join(out) + b"\n")
    return path, records, n


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Loaded]:
    base = tmp_path_factory.mktemp("faults")
    cache = base / "hf_cache"
    old = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = str(cache)
    try:
        root = base / "data"
        _images(root)
        out = {}
        for fmt in GOOD:
            path, records, n = _write(fmt, root)
            kept, rejected = load_vit(str(path), format=fmt, errors="reject", **OPTIONS.get(fmt, {}))
            out[fmt] = Loaded(path, records, n, kept, rejected, validate(kept), validate(kept, check_images="verify"))
        yield out
    finally:
        datasets.config.HF_DATASETS_CACHE = old


def _ids(ds) -> list[str]:
    return list(ds.select_columns(["id"])["id"])


def _rows_of(ids: list[str], kind: Kind, loaded: Loaded) -> list[int]:
    """Positions in ``ids`` of the rows made from ``kind``'s records."""
    name = IDS.get(kind.name, kind.name)
    if name is None:  # a derived id: "{source}-{record}"
        return [i for i, x in enumerate(ids) if x in {f"{kind.fmt}-{r}" for r in loaded.records[kind.name]}]
    return [i for i, x in enumerate(ids) if x == name or x.startswith(name + "-")]


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_fault_kind(corpus, kind):
    loaded = corpus[kind.fmt]
    records = loaded.records[kind.name]
    if kind.expect == "load":
        rej = loaded.rejected.select_columns(["row", "reject_reason", "reject_detail"]).to_list()
        mine = [r for r in rej if r["row"] in records]
        assert mine, f"{kind.name}: not rejected at load; rejected rows: {rej}"
        assert {r["reject_reason"] for r in mine} == {kind.reason}, mine
        assert all(kind.field in r["reject_detail"] for r in mine), mine
        if kind.field == "line ":
            assert any(f"line {n}" in r["reject_detail"] for r in mine for n in range(1, 10_000)), mine
        assert not _rows_of(_ids(loaded.kept), kind, loaded), f"{kind.name}: also kept"
        return
    kept_ids = _ids(loaded.kept)
    rows = _rows_of(kept_ids, kind, loaded)
    assert rows, f"{kind.name}: lost at load; rejected: {loaded.rejected.select_columns(['row', 'reject_reason', 'reject_detail']).to_list()}"
    checked = loaded.verified if kind.expect == "verify" else loaded.valid
    got = [r["reject_reason"] for r in checked.rejected.select_columns(["id", "reject_reason"]).to_list() if r["id"] in {kept_ids[i] for i in rows}]
    if kind.expect in ("validate", "verify"):
        assert got and set(got) == {kind.reason}, f"{kind.name}: validate gave {got}"
        if kind.expect == "verify":
            assert kind.name in " ".join(_ids(loaded.valid.kept)), "the default check keeps it (header only)"
        return
    assert not got, f"{kind.name}: validate rejected it: {got}"
    assert not [r for r in loaded.verified.rejected["id"] if r in {kept_ids[i] for i in rows}], "verify rejected it"
    if kind.check is not None:
        row = loaded.kept.with_format("arrow").select_columns(list(CORE_COLUMNS))[rows[0] : rows[0] + 1].to_pylist()[0]
        assert kind.check(row), row


def test_corpus_size_and_spread():
    assert len(KINDS) >= 60
    assert {k.fmt for k in KINDS} == set(GOOD)


@pytest.mark.parametrize("fmt", list(GOOD))
def test_no_row_lost(corpus, fmt):
    """Every record is kept or rejected at load (rows in = kept + rejected for one-row-per-record formats)."""
    loaded = corpus[fmt]
    kept_ids = _ids(loaded.kept)
    rejected_rows = set(loaded.rejected["row"])
    for name, records in loaded.records.items():
        kind = BY_NAME.get(name)
        if kind is not None and kind.expect == "load":
            assert set(records) <= rejected_rows, name
        elif kind is not None:
            assert _rows_of(kept_ids, kind, loaded), name
        else:
            assert name in kept_ids or any(x.startswith(name + "-") for x in kept_ids), name
    if fmt not in ("mminstruct",):  # MMInstruct makes one row per generated item
        assert len(loaded.kept) + len(loaded.rejected) == loaded.n_records
    for check in (loaded.valid, loaded.verified):
        assert len(check.kept) + len(check.rejected) == len(loaded.kept)


def test_kept_rows_go_through_concepts_and_publish(corpus, tmp_path):
    from hf_vitcurate.hub import publish
    from hf_vitcurate.stages.concepts import concepts

    pool = concatenate_datasets([corpus[f].verified.kept.select_columns(list(CORE_COLUMNS)) for f in GOOD])
    tagged = concepts(pool)
    assert len(tagged) == len(pool) and "informativeness" in tagged.column_names
    rejected = {f: len(corpus[f].rejected) + len(corpus[f].verified.rejected) for f in GOOD}
    out = publish(tagged, "local/faults", local_dir=str(tmp_path / "repo"), push=False, rejected=rejected)
    back = datasets.load_dataset("parquet", data_dir=os.path.join(out, "data"), split="train")
    assert len(back) == len(pool)


NOT_DECODING = {"image_missing", "image_zero_bytes", "image_directory", "image_symlink_loop", "image_corrupt", "image_text_file",
                "decompression_bomb", "truncated_png", "truncated_jpeg", "svit_image_missing", "cap_truncated_image"}


@pytest.mark.slow
def test_necessity_runs_on_the_corpus(corpus, tmp_path):
    """Necessity and generate with a tiny checkpoint on every row that loaded (validate not run): bad images and rows the model
    cannot take are flagged, the good rows scored, the run goes on.

    (Before the stages' each_batch fix, length-sorted batches put several bad rows together, every
    row of such a batch failed alone, and the run stopped with an IndexError from the chat template.)
    """
    from hf_vitcurate.stages.necessity import necessity
    from hf_vitcurate.testing import tiny_checkpoint

    pool = concatenate_datasets([corpus[f].kept.select_columns(list(CORE_COLUMNS)) for f in GOOD])
    ckpt = tiny_checkpoint(["<image>What colour is the square?", "Red.", "A red square on white."], output_dir=str(tmp_path / "tiny"),
                           image_size=32, patch_size=8, vision_layers=1, text_layers=1)
    out = necessity(pool, model=ckpt, batch_size=8, max_length=256)
    assert len(out) == len(pool)
    flags = dict(zip(out["id"], out["necessity_flag"]))
    for kind in NOT_DECODING:
        ids = [i for i in flags if i == kind or i.startswith(kind + "-")]
        assert ids and all(flags[i].startswith("image_error") for i in ids), (kind, [flags[i] for i in ids])
    good = [i for i in flags if i.startswith("good-")]
    scores = dict(zip(out["id"], out["necessity"]))
    assert len(good) > 60 and all(flags[i] == "" and scores[i] is not None for i in good), [(i, flags[i]) for i in good if flags[i]]
    # Generation on the same rows: the same images flagged, every good row answered, no crash.
    from hf_vitcurate.stages.generate import generate

    answered = generate(pool, model=ckpt, column="answer", max_new_tokens=2, batch_size=8)
    assert len(answered) == len(pool)
    gflags = dict(zip(answered["id"], answered["answer_flag"]))
    answers = dict(zip(answered["id"], answered["answer"]))
    for kind in NOT_DECODING:
        ids = [i for i in gflags if i == kind or i.startswith(kind + "-")]
        assert ids and all(gflags[i].startswith("image_error") and answers[i] is None for i in ids), kind
    assert all(gflags[i] == "" and answers[i] is not None for i in good), [(i, gflags[i]) for i in good if gflags[i]]


SOLO = [k for k in KINDS if k.expect in ("load", "kept") and k.lines is not None]


@pytest.mark.parametrize("kind", SOLO, ids=[k.name for k in SOLO])
def test_fault_kind_alone(corpus, kind, tmp_path):
    """The kind between two good rows, alone in its file: a clean-looking file takes the fast path, so a kind must
    not depend on another bad line sending the file to the line pass."""
    root = corpus[kind.fmt].path.parent
    lines = [line(GOOD[kind.fmt]("good-1")), *kind.lines(kind.name), line(GOOD[kind.fmt]("good-2"))]
    path = root / f"solo-{kind.name}.jsonl"
    path.write_bytes(b"\n".join(d.replace(b"@SECRET@", str(root.parent / "secret.png").encode()) for d in lines) + b"\n")
    kept, rejected = load_vit(str(path), format=kind.fmt, errors="reject", **OPTIONS.get(kind.fmt, {}))
    ids = _ids(kept)
    assert any(i.startswith("good-1") for i in ids) and any(i.startswith("good-2") for i in ids), (ids, rejected.to_list())
    if kind.expect == "load":
        assert set(rejected["reject_reason"]) == {kind.reason}, rejected.to_list()
        assert all(kind.field in d for d in rejected["reject_detail"]), rejected.to_list()
    else:
        assert len(rejected) == 0, rejected.to_list()


# ---------------------------------------------------------------- fuzzing (fixed seeds)

TOKENS = [b"null", b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"\\u", b"\\ud800", b"\xff", b"\xc3", b"\x00", b"NaN",
          b"1e999", b"-", b"\xef\xbb\xbf", b"\r", b"true", b'"id"', b"  "]
VALUES = [None, 0, 1.5, -1, True, "", "x", "good.png", "../secret.png", [], [None], ["x"], [1, 2], {}, {"a": 1},
          {"from": "human", "value": "hi"}, [{"type": "text"}], [{"type": "image_url", "image_url": [1]}], [{"from": None}],
          {"url": 5}, "<Q1>", [{"content": 5}], [{"user": 1}], "\U0001F600", "x" * 5000]


def _mutate_bytes(data: bytes, rng) -> bytes:
    out = bytearray(data)
    for _ in range(rng.integers(1, 5)):
        op, pos = rng.random(), int(rng.integers(0, len(out) + 1))
        if op < 0.3:
            out[pos:pos] = TOKENS[rng.integers(len(TOKENS))]
        elif op < 0.5:
            del out[pos : pos + int(rng.integers(1, 6))]
        elif op < 0.7 and pos < len(out):
            out[pos] = int(rng.integers(256))
        else:
            del out[pos:]
    return bytes(out).replace(b"\n", b" ")


def _mutate_value(obj: Any, rng) -> Any:
    if isinstance(obj, (dict, list)) and obj and rng.random() < 0.7:
        key = list(obj)[rng.integers(len(obj))] if isinstance(obj, dict) else int(rng.integers(len(obj)))
        obj[key] = _mutate_value(obj[key], rng) if rng.random() < 0.5 else VALUES[rng.integers(len(VALUES))]
        return obj
    return VALUES[rng.integers(len(VALUES))]


@pytest.mark.parametrize("fmt", list(GOOD))
@pytest.mark.parametrize("how", ["bytes", "values"])
def test_fuzzed_records_never_cost_the_file(corpus, fmt, how):
    """60 mutated records between good rows in one file: every good row kept, every line a row (kept or rejected)."""
    rng = np.random.default_rng(0)
    root = corpus[fmt].path.parent
    lines = [line(GOOD[fmt]("good-0"))]
    for i in range(60):
        bad = _mutate_bytes(line(GOOD[fmt](f"fuzz{i}")), rng) if how == "bytes" else line(_mutate_value(GOOD[fmt](f"fuzz{i}"), rng))
        lines += [bad, line(GOOD[fmt](f"good-{i + 1}"))]
    path = root / f"fuzz-{fmt}-{how}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    kept, rejected = load_vit(str(path), format=fmt, errors="reject", **OPTIONS.get(fmt, {}))
    ids = set(_ids(kept))
    assert all(any(i == f"good-{k}" or i.startswith(f"good-{k}-") for i in ids) for k in range(61))
    records = sum(1 for d in lines if d.strip(b" \t\r\xef\xbb\xbf"))
    if fmt in ("mminstruct", "svit"):  # a record makes one row or more
        assert len(kept) + len(rejected) >= records
    else:
        assert len(kept) + len(rejected) == records
