"""stages.near_duplicates: same images and nearly the same text (MinHash LSH), never across images."""

from __future__ import annotations

import hashlib
import io
import random

from datasets import Dataset
from PIL import Image as PILImage

from hf_vitcurate import provenance
from hf_vitcurate.schema import FEATURES
from hf_vitcurate.stages import near_duplicates


def png(color) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


WORDS = "red blue green small large circle square triangle left right top bottom near far above below".split()


def row(i: int, text: str, image: bytes | None) -> dict:
    return {"id": f"r{i}", "images": [{"bytes": image, "path": None}] if image else [],
            "conversations": [{"from": "human", "value": ("<image>\n" if image else "") + "Describe the picture in detail."},
                              {"from": "gpt", "value": text}], "source": "s", "task": "conversation"}


def pool(seed: int = 0):
    """60 distinct rows, 12 near copies (one word changed) of some of them, and 10 rows that repeat another
    row's text on another image (must be kept)."""
    rng = random.Random(seed)
    images = [png((rng.randrange(256), rng.randrange(256), rng.randrange(256))) for _ in range(60)]
    texts = [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(60)]
    rows = [row(i, texts[i], images[i] if i % 4 else None) for i in range(60)]
    copies = {}
    for k, src in enumerate(rng.sample(range(60), 12)):
        words = texts[src].split()
        words[rng.randrange(len(words))] = "purple"
        rows.append(row(60 + k, " ".join(words), images[src] if src % 4 else None))
        copies[f"r{60 + k}"] = f"r{src}"
    for k, src in enumerate(rng.sample([i for i in range(60) if i % 4], 10)):
        other = images[(src + 1) % 60] if (src + 1) % 4 else images[(src + 2) % 60]
        rows.append(row(72 + k, texts[src], other))
    order = list(range(len(rows)))
    rng.shuffle(order[60:])  # copies come after their originals, in any order
    return Dataset.from_list([rows[i] for i in order[:60] + sorted(order[60:])], features=FEATURES), copies


def test_near_copies_found_and_same_text_on_other_images_kept():
    ds, copies = pool()
    kept, rejected = near_duplicates(ds, threshold=0.8)
    assert len(kept) + len(rejected) == len(ds)
    found = dict(zip(rejected["id"], rejected["duplicate_of"]))
    assert found == copies  # every planted copy, each pointing at its original; nothing else
    assert set(rejected["reject_reason"]) == {"near_duplicate"}
    assert provenance.steps(rejected)[-1]["rejected"] == {"near_duplicate": 12}
    # Same seed, same result; an exact threshold keeps the one-word changes.
    again = near_duplicates(ds, threshold=0.8)
    assert list(again.kept["id"]) == list(kept["id"])
    assert len(near_duplicates(ds, threshold=1.0).rejected) == 0


def test_a_null_image_in_a_row_is_not_hashed_and_not_fatal():
    from datasets import Features, Image, List, Value

    from hf_vitcurate.stages.image_dedup import content_hashes

    ds = Dataset.from_dict({"id": ["a", "b"], "images": [[None], [{"bytes": b"x", "path": None}]]},
                           features=Features({"id": Value("string"), "images": List(Image(decode=False))}))
    assert content_hashes(ds) == [None, hashlib.sha256(b"x").hexdigest()]
