"""The benchmark scripts stop on options that would be ignored or rewritten, with one line naming them.

Running a benchmark takes minutes to hours (benchmarks/RESULTS.md has the commands); here only
their argument checks run, in a subprocess as a user would start them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


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
    ("bench_models.py", ["gap", "--rows-per-image", '{"typo": 2}'], "--rows-per-image: unknown source(s) ['typo']"),
    ("bench_models.py", ["gap", "--recipe", "3"], "--recipe must be a JSON object"),
    ("bench_models.py", ["gap", "--kinds", "both"], "--kinds must be"),
    ("bench_models.py", ["binding", "--recipe", '{"batch_size": 8}'], "--rows-per-image, --recipe and --kinds are options of 'gap'"),
])
def test_bad_options_stop_with_one_line(script, argv, message):
    run = subprocess.run([sys.executable, str(BENCHMARKS / script), *argv], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
