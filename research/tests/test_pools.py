"""research.pools: the package's pools with the research options (rows per image, grouped captions)."""

from __future__ import annotations

from hf_vitcurate.synthetic import stage1_captions, training_pool
from research.pools import grouped_stage1_captions, study_pool


def test_study_pool_caption_rows_and_grouped_share():
    sources = ["mm_short_vqa", "captions"]
    plain = study_pool("clean", 600, seed=3, sources=sources)
    assert plain["id"] == training_pool("clean", 600, seed=3, sources=sources)["id"]  # no option: the package's pool
    more = study_pool("clean", 600, seed=3, sources=sources, rows_per_image={"captions": 4.0}, grouped_captions=1.0)
    share = {name: sum(t == "caption" for t in p["task"]) / len(p) for name, p in (("plain", plain), ("more", more))}
    assert len(more) == 600 and 0.3 < share["plain"] < 0.5 and share["more"] > 0.7, share
    grouped = [c[0]["value"] for c, t in zip(more["conversations"], more["task"]) if t == "caption"]
    assert all(" by " in q for q in grouped)
    assert not any(" by " in c[0]["value"] for c in plain["conversations"])
    degraded = study_pool("degraded", 300, seed=3, sources=sources, grouped_captions=0.5)
    assert len(degraded) == 300 and set(degraded["_truth"]) > {"clean"}


def test_grouped_stage1_captions():
    caps = grouped_stage1_captions(30, seed=7, grouped=0.5)
    assert len(caps) == 30 and set(caps["_truth"]) == {"clean"}
    grouped = sum(" by " in c[0]["value"] for c in caps["conversations"])
    assert 5 < grouped < 25
    # The same images as the package's stage-1 captions: only the wording differs.
    assert caps["image_id"] == stage1_captions(30, seed=7)["image_id"]
    assert grouped_stage1_captions(30, seed=7)["id"] == stage1_captions(30, seed=7)["id"]
