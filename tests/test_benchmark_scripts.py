"""The benchmark scripts of the product start and stop on bad options with one line.

Running a benchmark takes minutes (benchmarks/RESULTS.md has the commands); here each script's
``--help`` runs in a subprocess, as a user would start it. The tiny-model studies and their
scripts are in ``research/`` (``python -m pytest research/tests``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_no_research_scripts_in_benchmarks():
    """The studies of how tiny models learn live in research/, outside the product's benchmarks."""
    names = {p.name for p in BENCHMARKS.glob("*.py")}
    assert not names & {"bench_lm_pretraining.py", "probe_comparisons.py"}
    assert "def gap(" not in (BENCHMARKS / "bench_models.py").read_text()
    assert (BENCHMARKS.parent / "research" / "bench_models.py").exists()


@pytest.mark.parametrize("argv, message", [
    (["gap"], "invalid choice: 'gap'"),
    (["speed", "--rows", "5"], "unrecognized arguments: --rows"),
])
def test_bench_models_is_the_speed_benchmark(argv, message):
    run = subprocess.run([sys.executable, str(BENCHMARKS / "bench_models.py"), *argv], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
