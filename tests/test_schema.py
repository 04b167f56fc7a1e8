"""Validation rules: each rule has a bad-input case, and rows in = kept + rejected."""

from __future__ import annotations

import io
import json

import pytest
from datasets import Dataset
from PIL import Image as PILImage

from hf_vitcurate import FEATURES, ValidationError, provenance, validate
from hf_vitcurate.results import Split
from hf_vitcurate.schema import REASONS, cast_canonical, check


def turns(*pairs):
    out = []
    for role, value in pairs:
        out.append({"from": role, "value": value})
    return out


def good_row(i: int, **over):
    row = {
        "id": f"r{i}",
        "images": [],
        "conversations": turns(("human", "What is it?"), ("gpt", "A square.")),
        "source": "src",
        "task": "conversation",
    }
    row.update(over)
    return row


def png_bytes(color=(255, 0, 0)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def make(rows) -> Dataset:
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    return Dataset.from_dict(cols, features=FEATURES)


BAD_CASES = {
    "missing_id": {"id": "  "},
    "missing_source": {"source": ""},
    "missing_task": {"task": None},
    "empty_conversation": {"conversations": []},
    "non_text_value": {"conversations": turns(("human", "Hi"), ("gpt", None))},
    "unknown_role": {"conversations": turns(("human", "Hi"), ("assistant", "Yo"))},
    "first_not_human": {"conversations": turns(("gpt", "Hi"), ("human", "Yo"), ("gpt", "x"))},
    "not_alternating": {"conversations": turns(("human", "Hi"), ("human", "Hi"), ("gpt", "x"))},
    "last_not_gpt": {"conversations": turns(("human", "Hi"), ("gpt", "x"), ("human", "more?"))},
    "empty_question": {"conversations": turns(("human", " "), ("gpt", "x"))},
    "empty_answer": {"conversations": turns(("human", "Hi"), ("gpt", "   "))},
    "image_placeholder_mismatch": {"conversations": turns(("human", "<image>\nWhat?"), ("gpt", "x"))},
}


@pytest.mark.parametrize("code", sorted(BAD_CASES))
def test_each_rule_rejects_with_its_reason(code):
    rows = [good_row(0), good_row(1, **BAD_CASES[code]), good_row(2)]
    kept, rejected = validate(make(rows))
    assert len(kept) + len(rejected) == 3
    assert list(rejected["reject_reason"]) == [code]
    assert list(kept["id"]) == ["r0", "r2"]
    with pytest.raises(ValidationError) as err:
        validate(make(rows), strict=True)
    assert err.value.code == code
    # The message names the row id and the field.
    assert repr(rows[1]["id"]) in str(err.value)
    assert f"field={err.value.field!r}" in str(err.value)


def test_validate_returns_a_split_and_takes_options_by_keyword():
    rows = [good_row(0), good_row(1, conversations=turns(("human", "Hi"))), good_row(2)]
    split = validate(make(rows), check_images=False, map_batch_size=1)  # one row per Arrow batch
    assert isinstance(split, Split)
    assert [len(split.kept), len(split.rejected)] == [2, 1] and split.rejected[0]["reject_reason"] == "last_not_gpt"
    with pytest.raises(TypeError):
        validate(make(rows), True)  # strict is keyword-only


def test_duplicate_ids_keep_first_occurrence():
    rows = [good_row(0), good_row(1), good_row(0), good_row(0)]
    kept, rejected = validate(make(rows))
    assert list(kept["id"]) == ["r0", "r1"]
    assert list(rejected["reject_reason"]) == ["duplicate_id", "duplicate_id"]


def test_images_good_missing_and_undecodable(tmp_path):
    ok_path = tmp_path / "ok.png"
    ok_path.write_bytes(png_bytes())
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    conv = turns(("human", "<image>\nWhat?"), ("gpt", "Red."))
    rows = [
        good_row(0, images=[{"bytes": png_bytes(), "path": None}], conversations=conv),
        good_row(1, images=[{"bytes": None, "path": str(ok_path)}], conversations=conv),
        good_row(2, images=[{"bytes": None, "path": str(tmp_path / "gone.png")}], conversations=conv),
        good_row(3, images=[{"bytes": None, "path": str(junk)}], conversations=conv),
    ]
    ds = Dataset.from_dict({k: [r[k] for r in rows] for k in rows[0]}, features=FEATURES)
    kept, rejected = validate(ds)
    assert list(kept["id"]) == ["r0", "r1"]
    assert list(rejected["reject_reason"]) == ["image_missing", "image_undecodable"]
    # Without file checks only the placeholder count is checked.
    kept, rejected = validate(ds, check_images=False)
    assert len(kept) == 4 and len(rejected) == 0


def test_two_images_need_two_placeholders():
    img = {"bytes": png_bytes(), "path": None}
    one = turns(("human", "<image>\nCompare."), ("gpt", "Same."))
    two = turns(("human", "<image><image>\nCompare."), ("gpt", "Same."))
    ds = make([good_row(0, images=[img, img], conversations=one), good_row(1, images=[img, img], conversations=two)])
    codes = check(ds)
    assert list(codes) == ["image_placeholder_mismatch", ""]


def test_first_failing_rule_wins_and_codes_are_known():
    # Empty answer AND wrong placeholder count: the earlier rule in REASONS is reported.
    row = good_row(0, conversations=turns(("human", "<image> hi"), ("gpt", "")))
    codes = check(make([row]))
    assert codes[0] == "empty_answer"
    assert set(BAD_CASES) | {"duplicate_id", "image_missing", "image_undecodable"} == set(REASONS)


def test_provenance_records_counts_on_both_outputs():
    rows = [good_row(0), good_row(1, conversations=[]), good_row(2, task="")]
    kept, rejected = validate(make(rows))
    step = provenance.steps(kept)[-1]
    assert step["name"] == "validate" and step["rows_in"] == 3 and step["rows_out"] == 1
    assert step["rejected"] == {"empty_conversation": 1, "missing_task": 1}
    assert provenance.steps(rejected)[-1]["rows_out"] == 2
    json.loads(provenance.to_json(kept))


def test_validate_on_a_selection_uses_the_selected_rows():
    ds = make([good_row(i) for i in range(5)] + [good_row(5, conversations=[])])
    sub = ds.select([5, 1])  # an indices mapping over the Arrow table
    kept, rejected = validate(sub)
    assert list(kept["id"]) == ["r1"] and list(rejected["id"]) == ["r5"]


def test_missing_column_is_an_error_naming_it():
    ds = Dataset.from_dict({"id": ["a"], "conversations": [turns(("human", "a"), ("gpt", "b"))]})
    with pytest.raises(ValidationError, match="images"):
        validate(ds)
    with pytest.raises(ValueError, match="images"):
        cast_canonical(ds)


def test_strict_names_the_row_whose_image_is_missing(tmp_path):
    """The error is built from the id column only (a whole row would decode the missing image)."""
    rows = [good_row(0), good_row(1, images=[{"bytes": None, "path": str(tmp_path / "gone.png")}],
                                   conversations=turns(("human", "<image>\nWhat?"), ("gpt", "Red.")))]
    ds = make(rows)
    with pytest.raises(ValidationError, match=r"row id='r1' field='images'.*\[image_missing\]") as err:
        validate(ds, strict=True)
    assert not isinstance(err.value, FileNotFoundError)


def _one_chunk(n: int, bad_every: int) -> Dataset:
    """``n`` two-turn rows as ONE Arrow chunk, built in Arrow; every ``bad_every``-th row has an empty answer."""
    import numpy as np
    import pyarrow as pa

    answers = np.where(np.arange(n) % bad_every == 0, "", "A.").astype(object)
    values = np.empty(2 * n, dtype=object)
    values[0::2], values[1::2] = "Q?", answers
    turn = pa.StructArray.from_arrays([pa.array(["human", "gpt"] * n), pa.array(values, pa.string())], names=["from", "value"])
    table = pa.table({
        "id": pa.array([f"r{i}" for i in range(n)]),
        "images": pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], FEATURES["images"].feature.pa_type)),
        "conversations": pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), turn),
        "source": pa.array(["src"] * n),
        "task": pa.array(["conversation"] * n),
    }, schema=FEATURES.arrow_schema)
    return Dataset(table.combine_chunks())


def test_rejected_rows_of_one_large_chunk_are_gathered_in_arrow():
    """One large chunk gives the same split as small chunks (old: select(bad) + add_column cast every
    rejected row against the whole chunk, quadratic; the speed is measured in benchmarks/bench_validate.py)."""
    import pyarrow as pa

    ds = _one_chunk(30_000, bad_every=10)
    assert ds.data.table.column("conversations").num_chunks == 1
    kept, rejected = validate(ds)
    assert (len(kept), len(rejected)) == (27_000, 3_000)
    # Same rows and reasons as with small chunks (the layout must not change the answer).
    small = Dataset(pa.Table.from_batches(ds.data.table.to_batches(max_chunksize=1000)))
    kept2, rejected2 = validate(small)
    arrow, arrow2 = rejected.with_format("arrow")[:], rejected2.with_format("arrow")[:]
    assert arrow.equals(arrow2) and arrow.column("id")[:2].to_pylist() == ["r0", "r10"]
    assert kept._indices.column(0).equals(kept2._indices.column(0))  # the same rows kept
    assert rejected.features["reject_reason"] == rejected2.features["reject_reason"]


def test_rejected_rows_of_a_selection_are_its_rows_with_every_column():
    ds = make([good_row(i) for i in range(6)] + [good_row(6, source="")]).add_column("extra", list(range(7)))
    sub = ds.select([6, 3, 0]).select([0, 2])  # nested selection of the Arrow table
    kept, rejected = validate(sub)
    assert list(kept["id"]) == ["r0"]
    assert rejected.column_names == [*ds.column_names, "reject_reason", "reject_detail"]
    assert rejected[0]["extra"] == 6 and rejected[0]["reject_reason"] == "missing_source"
    assert rejected[0]["reject_detail"] == "source: source is missing or empty"
    assert rejected.features["extra"] == ds.features["extra"]


def test_check_of_a_shuffled_selection_equals_check_of_its_rows():
    """A selection is gathered with Arrow take, batch by batch: same codes as the same rows written out."""
    import numpy as np

    ds = _one_chunk(5000, bad_every=7)
    order = np.random.default_rng(0).permutation(len(ds))
    sel = ds.select(order)
    assert list(check(sel, map_batch_size=777)) == list(check(sel.flatten_indices(), map_batch_size=777))
    assert list(check(sel, map_batch_size=777)) == list(np.asarray(check(ds))[order])
