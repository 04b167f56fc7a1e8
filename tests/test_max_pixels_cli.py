"""`--max-pixels` on the command line (score necessity / generate): larger images flag their row
instead of being decoded, the others are scored; the default cap lets ordinary images through."""

from __future__ import annotations

import json

from datasets import load_from_disk


def test_max_pixels_flag_flags_larger_images_and_scores_the_rest(tiny_model_path, toy_vit, tmp_path, capsys):
    from hf_vitcurate.cli import main

    pool = toy_vit.select(range(2))
    pool.save_to_disk(str(tmp_path / "pool"))
    with_image = [i for i, ims in enumerate(pool["images"]) if ims]
    assert with_image
    side = pool[with_image[0]]["images"][0].size
    base = ["-q", "score", "necessity", str(tmp_path / "pool"), "--model", tiny_model_path, "--dtype", "float32",
            "--batch-size", "2"]
    assert main(base + ["--max-pixels", "100", "--output", str(tmp_path / "capped")]) == 0
    json.loads(capsys.readouterr().out)
    flags = list(load_from_disk(str(tmp_path / "capped"))["necessity_flag"])
    for i in with_image:
        assert flags[i] == f"image_error: too large ({side[0]}x{side[1]} = {side[0] * side[1]} pixels > max_pixels 100)"
    assert all(flags[i] == "" for i in range(len(pool)) if i not in with_image)
    assert main(base + ["--output", str(tmp_path / "default")]) == 0  # the default cap (40M pixels)
    capsys.readouterr()
    assert set(load_from_disk(str(tmp_path / "default"))["necessity_flag"]) == {""}
