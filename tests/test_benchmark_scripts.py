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


@pytest.mark.parametrize("script, argv, message", [
    ("bench_nbgs.py", ["--rows", "ten"], "argument --rows: invalid int value: 'ten'"),
    ("bench_svit.py", ["speed"], "invalid choice: 'speed'"),
    ("bench_metrics.py", ["--ref-n", "1000"], "unrecognized arguments: --ref-n"),  # equal N: no separate reference size
    ("bench_collect.py", ["--methods", "lsh"], "argument --methods: invalid choice: 'lsh'"),
])
def test_speed_benchmarks_stop_on_bad_options(script, argv, message):
    import os

    # The scripts import the package at the top: the checkout must be importable from them.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCHMARKS.parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(BENCHMARKS / script), *argv], capture_output=True, text=True, timeout=120,
                         env=env)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_bench_curation_runs_at_toy_size(tmp_path):
    """bench_curation.py end to end on a toy world: every model-free output reported against random."""
    import importlib.util
    import os

    spec = importlib.util.spec_from_file_location("bench_curation", BENCHMARKS / "bench_curation.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--images", "30", "--worlds", "1", "--seeds", "2", "--work-dir", os.fspath(tmp_path)])
    assert set(result["outputs"]) == {"cleanup", "near_duplicates", "balance", "svit_core", "recommended"}
    assert result["outputs"]["cleanup"]["measures"]["leak"]["share"] == 0.0
    run = subprocess.run([sys.executable, str(BENCHMARKS / "bench_curation.py"), "--world", "{easy"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "--world: not JSON" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_effect_trains_on_each_config_random_draws_and_the_pool(tmp_path):
    """benchmarks/effect.py at toy size: a table row per config, per random size and for the whole pool."""
    import json
    import os

    from datasets import DatasetDict

    from hf_vitcurate import validate
    from hf_vitcurate.hub import publish
    from hf_vitcurate.synthetic import pool_and_truth

    kept, _ = validate(pool_and_truth(4, seed=0)[0])
    half = kept.select(range(len(kept) // 2))
    repo = publish({"first_half": DatasetDict({"tune": half, "eval": kept.select(range(2))})}, "local/effect-toy",
                   local_dir=str(tmp_path / "repo"))
    env = {**os.environ, "HF_VITCURATE_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(BENCHMARKS.parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(BENCHMARKS / "effect.py"), "--curated", repo, "--out", str(tmp_path / "out"),
                          "--pool-images", "4", "--seeds", "1", "--bench-images", "1", "--max-steps", "1",
                          "--vision-steps", "1", "--max-new-tokens", "2"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "effect.json").read_text())
    names = [r["training set"] for r in summary["rows"]]
    assert names == ["first_half", f"random ({len(half)} rows)", f"whole pool ({len(kept)} rows)"]
    assert summary["rows"][0]["rows"] == len(half) and summary["benchmark_rows"] == 4  # the eval split is not trained on
    assert (tmp_path / "out" / "effect.png").stat().st_size > 0
    assert "| first_half |" in run.stdout
