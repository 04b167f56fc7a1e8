"""The research scripts stop on options that would be ignored or rewritten, with one line naming them.

Running a study takes minutes to hours (research/RESULTS.md has the commands); here their
argument checks run, in a subprocess as a user would start them (``python -m research.NAME``
from the repository root), and one ``gap`` run at a toy size (a few training steps) checks
that its pool and recipe options reach the fine-tune.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _script(name: str, *argv: str, timeout: int) -> subprocess.CompletedProcess:
    """``python -m research.<name> ARGV`` from the repository root."""
    return subprocess.run([sys.executable, "-m", f"research.{name.removesuffix('.py')}", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("script, argv, message", [
    ("probe_comparisons.py", ["--task", "mc", "--answer", "svit"], "--task mc answers in short or opt"),
    ("probe_comparisons.py", ["--task", "match", "--input", "image"], "text only"),
    ("probe_comparisons.py", ["--task", "judgement", "--queries", "4"], "--queries is an option of --task match"),
    ("bench_models.py", ["binding", "--caption-share", "1"], "--caption-share must be in [0, 1)"),
    ("bench_models.py", ["binding", "--qa-sources", "mm_short_vqa,typo"], "unknown source(s) ['typo']"),
    ("bench_models.py", ["gap", "--batches", "mixed"], "are options of 'binding'"),
    ("bench_models.py", ["binding", "--language-steps", "5"], "are options of 'gap'"),
    ("bench_lm_pretraining.py", ["--match-share", "1.5"], "--match-share and --forward must be in [0, 1]"),
    ("bench_lm_pretraining.py", ["--questions", "0"], "must be >= 1"),
    ("bench_lm_pretraining.py", ["--until-match", "120"], "--until-match must be in [0, 100]"),
    ("bench_lm_pretraining.py", ["--formats", "short,essay"], "--formats: choose from"),
    ("bench_lm_pretraining.py", ["--match-kinds", "color,size"], "--match-kinds: choose from"),
    ("bench_models.py", ["gap", "--language-steps", "-1"], "--language-steps and --text-rows must be >= 0"),
    ("bench_models.py", ["gap", "--language-options", "[1]"], "--language-options must be a JSON object"),
    ("bench_models.py", ["gap", "--start", "/nonexistent"], "not a tiny checkpoint with its tower pretrained"),
    ("bench_models.py", ["gap", "--stage1-parts", "language"], "--stage1-parts must be"),
    ("bench_models.py", ["gap", "--text-rows", "-5"], "--text-rows must be >= 0"),
    ("bench_models.py", ["binding", "--text-rows", "5"], "are options of 'gap'"),
    ("bench_models.py", ["gap", "--rows-per-image", '{"typo": 2}'], "--rows-per-image: source(s) ['typo'] not in the pools"),
    ("bench_models.py", ["gap", "--rows-per-image", '{"captions": 2}'], "source(s) ['captions'] not in the pools"),
    ("bench_models.py", ["gap", "--sources", "all", "--rows-per-image", '{"captions": 2}', "--caption-rows", "3"],
     "give one"),
    ("bench_models.py", ["gap", "--recipe", '{"epochs": 3}'], "have options of their own"),
    ("bench_models.py", ["gap", "--recipe", '{"batch": 3}'], "unknown recipe option(s) ['batch']"),
    ("bench_models.py", ["gap", "--recipe", "3"], "--recipe must be a JSON object"),
    ("bench_models.py", ["gap", "--kinds", "both"], "argument --kinds: invalid choice: 'both'"),
    ("bench_models.py", ["binding", "--recipe", '{"batch_size": 8}'], "--rows-per-image, --recipe and --kinds are options of 'gap'"),
])
def test_bad_options_stop_with_one_line(script, argv, message):
    run = _script(script, *argv, timeout=120)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_gap_runs_a_clean_fine_tune_with_text_rows_shares_and_recipe(toy_vit, tmp_path):
    """``bench_models.py gap`` end to end on a tiny start: the text rows join the pool, the
    rows-per-image shares and the recipe overrides reach the fine-tune, --kinds picks it."""
    import json

    from hf_vitcurate.testing import pretrain_vision_tower, tiny_checkpoint

    start = tiny_checkpoint(toy_vit, output_dir=tmp_path / "start")  # the ShapesWorld architecture (3x3 patches)
    pretrain_vision_tower(start, steps=2, progress=False)
    out = tmp_path / "gap"
    run = _script(
        "bench_models", "gap", "--rows", "60", "--yes-ratio", "1",
        "--sources", "mm_multiple_choice,svit_judgement", "--start", str(start), "--text-rows", "12",
        "--language-options", '{"match_kinds": ["color"], "match_share": 1, "questions": 1}',
        "--rows-per-image", '{"mm_multiple_choice": 3}', "--kinds", "clean",
        "--recipe", '{"max_steps": 2, "batch_size": 4, "save_steps": 0}', "--out", str(out), timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    log = json.loads((out / "ft_clean" / "train_log.json").read_text())
    assert log["rows"] == 60 + 12 and log["steps"] == 2 and log["recipe"]["batch_size"] == 4
    assert not (out / "ft_degraded").exists()
    result = json.loads((out / "bench_models.json").read_text())
    assert set(result["results"]) == {"start", "clean"} and result["gap"] is None
    # Three multiple-choice rows per image against svit_judgement's default 1.5; the text rows' own task.
    tasks = result["results"]["clean"]["tasks"]
    assert tasks["match"] == 12 and 1.6 < tasks["multiple_choice"] / tasks["judgement"] < 2.4, tasks
    scores = result["results"]["clean"]["scores"]
    assert all(0 <= scores[k] <= 100 for k in ("average", "judgement", "multiple_choice"))
