"""Bad rows never stop a model stage: images that do not decode and rows failing inside the model
are flagged with a null score; good rows score as if the bad ones were not there."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from datasets import Dataset
from PIL import Image as PILImage, ImageDraw

from hf_vitcurate import FEATURES, provenance
from hf_vitcurate.images import decode, decode_rows
from hf_vitcurate.stages import generate, mq, necessity

from colour_rows import colour_rows


def encoded(im: PILImage.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def picture(color: str = "red") -> bytes:
    im = PILImage.new("RGB", (32, 32), "white")
    ImageDraw.Draw(im).ellipse([6, 6, 26, 26], fill=color)
    return encoded(im)


def noisy(fmt: str) -> bytes:
    return encoded(PILImage.effect_noise((64, 64), 60).convert("RGB"), fmt)


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1x1 PNG whose header claims ``width`` x ``height`` (a few hundred bytes, 400M pixels)."""
    png = encoded(PILImage.new("L", (1, 1)))
    ihdr = png[12:16] + struct.pack(">II", width, height) + png[24:29]
    return png[:8] + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def test_decode_corpus(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    png, jpg = noisy("PNG"), noisy("JPEG")
    bad = {
        "truncated png": {"bytes": png[: len(png) // 2], "path": None},
        "truncated jpeg": {"bytes": jpg[: len(jpg) // 2], "path": None},
        "corrupt bytes": {"bytes": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "path": None},
        "not an image": {"bytes": b"hello world", "path": None},
        "missing file": {"bytes": None, "path": str(tmp_path / "nope.png")},
        "zero-byte file": {"bytes": None, "path": str(tmp_path / "empty.png")},
        "folder": {"bytes": None, "path": str(tmp_path / "folder")},
        "symlink loop": {"bytes": None, "path": str(loop)},
        "nothing": {"bytes": None, "path": None},
        "null reference": None,
        "bomb": {"bytes": bomb_png(), "path": None},
    }
    for kind, ref in bad.items():
        reason = decode(ref)
        assert isinstance(reason, str) and reason and "\n" not in reason, kind
    assert decode(bad["missing file"]) == "missing file" and decode(None) == "no image (no bytes and no path)"
    assert decode(bad["bomb"]).startswith("decompression bomb (Image size (400000000 pixels)")  # PIL's own guard
    big = {"bytes": bomb_png(10_000, 10_000), "path": None}  # under PIL's guard, over the cap: never decoded
    assert decode(big) == "too large (10000x10000 = 100000000 pixels > max_pixels 40000000)"
    assert decode(bad["truncated png"]).startswith("truncated or corrupt")
    # Unusual but valid images decode to RGB.
    for im in [PILImage.new("CMYK", (8, 8), (0, 255, 0, 0)), PILImage.new("RGBA", (8, 8), (255, 0, 0, 128)),
               PILImage.new("I;16", (8, 8), 40000), PILImage.new("P", (8, 8)), PILImage.new("1", (8, 8))]:
        fmt = "JPEG" if im.mode == "CMYK" else "TIFF" if im.mode == "I;16" else "PNG"
        out = decode({"bytes": encoded(im, fmt), "path": None})
        assert not isinstance(out, str) and out.mode == "RGB" and out.size == (8, 8), im.mode
    # The pixel cap is the user's: a 32x32 image is refused under max_pixels=100.
    assert decode({"bytes": picture(), "path": None}, max_pixels=100).startswith("too large")
    good, kept, errors = decode_rows({"images": [[{"bytes": picture(), "path": None}],
                                                 [{"bytes": picture(), "path": None}, bad["missing file"]]],
                                      "x": [1, 2]})
    assert good == [0] and kept["x"] == [1] and errors == {1: "image_error: image 2/2 missing file"}


def rows(n: int = 12) -> Dataset:
    colours = [["red", "blue", "green"][i % 3] for i in range(n)]
    return colour_rows([picture(c) for c in colours], [f"It is {c}." for c in colours])


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from hf_vitcurate.testing import tiny_checkpoint

    return tiny_checkpoint(rows(), output_dir=str(tmp_path_factory.mktemp("tiny")), image_size=32, patch_size=8,
                           vision_layers=1, text_layers=1)


IMAGE_ERRORS = {1: "truncated png", 3: "corrupt bytes", 5: "missing file", 6: "over the pixel cap",
                7: "decompression bomb", 13: "zero-byte file", 14: "a folder", 15: "a symlink loop"}
MODEL_ERRORS = {8: "placeholder mismatch", 9: "placeholder mismatch", 10: "placeholder mismatch",
                11: "placeholder mismatch", 16: "unknown role"}
ODD = {2: "RGBA", 4: "CMYK JPEG", 12: "16-bit TIFF"}  # unusual but valid: scored
EMPTY = 18  # no turns at all


def with_bad_rows(ds: Dataset, tmp_path) -> Dataset:
    """``ds`` (24 rows) with a corpus of bad rows mixed in; rows 8-11 fail in the model and batch together."""
    png = noisy("PNG")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir(exist_ok=True)
    loop = tmp_path / "loop.png"
    if not loop.is_symlink():
        loop.symlink_to(loop)
    refs = {1: {"bytes": png[: len(png) // 2], "path": None}, 3: {"bytes": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "path": None},
            5: {"bytes": None, "path": str(tmp_path / "nope.png")},
            6: {"bytes": encoded(PILImage.new("RGB", (400, 400))), "path": None},
            7: {"bytes": bomb_png(), "path": None},
            13: {"bytes": None, "path": str(tmp_path / "empty.png")},
            14: {"bytes": None, "path": str(tmp_path / "folder.png")},
            15: {"bytes": None, "path": str(loop)},
            2: {"bytes": encoded(PILImage.new("RGBA", (32, 32), (255, 0, 0, 128))), "path": None},
            4: {"bytes": encoded(PILImage.new("CMYK", (32, 32), (0, 255, 0, 0)), "JPEG"), "path": None},
            12: {"bytes": encoded(PILImage.new("I;16", (32, 32), 40000), "TIFF"), "path": None}}
    table = ds.to_dict()
    for i, ref in refs.items():
        table["images"][i] = [ref]
    for i in range(8, 12):  # two placeholders, one image: the processor refuses the row (in a batch, the batch)
        table["conversations"][i] = [{"from": "human", "value": "<image>\n<image>\n" + "Which colour? " * 12},
                                     {"from": "gpt", "value": "Red."}]
    table["conversations"][16] = [{"from": "system", "value": "<image>\nBe brief."}, {"from": "gpt", "value": "Red."}]
    table["conversations"][EMPTY] = []
    return Dataset.from_dict(table, features=FEATURES)


def test_necessity_flags_bad_rows_and_scores_the_others(ckpt, tmp_path):
    """Before: the first truncated image ended the run (OSError: image file is truncated)."""
    ds = with_bad_rows(rows(24), tmp_path)
    scored = necessity(ds, model=ckpt, batch_size=4, chunk_size=8, work_dir=str(tmp_path / "w"),
                       max_pixels=100_000, dtype="float32")
    flags = list(scored["necessity_flag"])
    assert all(flags[i].startswith("image_error: ") for i in IMAGE_ERRORS), flags
    assert all(flags[i].startswith("model_error: ") for i in MODEL_ERRORS), flags
    assert "too large (400x400" in flags[6] and "\n" not in "".join(flags)
    assert flags[EMPTY] in ("no_response_tokens",) or flags[EMPTY].startswith("model_error: ")
    good = [i for i in range(len(ds)) if i not in IMAGE_ERRORS and i not in MODEL_ERRORS and i != EMPTY]
    assert all(flags[i] == "" for i in good)
    values = list(scored["necessity"])
    tokens = list(scored["necessity_tokens"])  # (not scored[i]: that decodes the row's broken image)
    assert all(values[i] is None and tokens[i] is None for i in [*IMAGE_ERRORS, *MODEL_ERRORS])
    clean = necessity(ds.select(good), model=ckpt, batch_size=4, dtype="float32")
    assert np.allclose([values[i] for i in good], list(clean["necessity"]), atol=1e-4, rtol=1e-5)
    counts = provenance.steps(scored)[-1]["params"]["flags"]
    assert counts["image_error"] == len(IMAGE_ERRORS) and counts["model_error"] >= len(MODEL_ERRORS)
    from hf_vitcurate.stages.necessity import unscored_flags

    assert set(unscored_flags(scored)) == {flags[i] for i in [*IMAGE_ERRORS, *MODEL_ERRORS, EMPTY]}


def test_generate_and_mq_flag_bad_rows(ckpt, tmp_path):
    ds = with_bad_rows(rows(24), tmp_path)
    out = generate(ds, model=ckpt, column="answer__T", max_new_tokens=4, batch_size=4, chunk_size=8,
                   max_pixels=100_000, dtype="float32")
    flags = list(out["answer__T_flag"])
    bad = {**IMAGE_ERRORS, **MODEL_ERRORS, EMPTY: "no question"}
    assert [i for i, f in enumerate(flags) if f] == sorted(bad)
    assert all(flags[i].startswith("model_error: ") for i in [*MODEL_ERRORS, EMPTY])
    assert flags[1].startswith("image_error: truncated")
    answers = list(out["answer__T"])
    assert all((a is None) == (i in bad) for i, a in enumerate(answers))
    assert provenance.steps(out)[-1]["params"]["flags"] == {"image_error": len(IMAGE_ERRORS), "model_error": 6}
    scored = mq(out, answer_column="answer__T")
    assert all(v is not None for v in scored["mq__T"])  # an unanswered row scores as the empty answer
    assert provenance.steps(scored)[-1]["params"]["flags"] == {"unanswered": len(bad)}


def test_a_broken_model_still_stops_the_run(ckpt, tmp_path):
    """Every row failing is not a bad row but a broken run: raised, not flagged."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    (broken / "chat_template.jinja").write_text("{{ raise_exception('no template') }}")
    with pytest.raises(Exception, match="no template"):
        necessity(rows(4), model=str(broken), batch_size=2)
