"""Sharded, resumable runs: same result as a plain map, resume skips finished chunks,
and a real 2-process `accelerate launch` gives the same columns as one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets import Dataset

from hf_vitcurate.distributed import done_chunks, run_sharded

SCRIPT = Path(__file__).parent / "scripts" / "sharded_job.py"
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def data(n=103):
    return Dataset.from_dict({"id": [f"r{i}" for i in range(n)], "x": list(range(n))})


def test_same_as_plain_map_and_keeps_order(tmp_path):
    ds = data().shuffle(seed=1)  # an indices mapping: order must be the shuffled one
    out = run_sharded(ds, lambda b: {"y": [v * 3 for v in b["x"]]}, str(tmp_path), chunk_size=8)
    assert list(out["y"]) == [v * 3 for v in ds["x"]]
    assert list(out["id"]) == list(ds["id"])


def test_failed_run_resumes_only_missing_chunks(tmp_path):
    ds = data()
    calls = []
    fail_at = [4]

    def flaky(batch):
        calls.append(batch["id"][0])
        if len(calls) == fail_at[0]:
            raise RuntimeError("killed")
        return {"y": [v + 1 for v in batch["x"]]}

    with pytest.raises(RuntimeError, match="killed"):
        run_sharded(ds, flaky, str(tmp_path), chunk_size=10)
    assert sorted(done_chunks(str(tmp_path))) == [0, 1, 2]
    calls.clear()
    fail_at[0] = -1
    out = run_sharded(ds, flaky, str(tmp_path), chunk_size=10)
    assert len(calls) == 11 - 3  # only the unfinished chunks were computed again
    assert list(out["y"]) == [v + 1 for v in range(103)]


def test_other_parameters_never_reuse_chunks(tmp_path):
    ds = data(20)
    run_sharded(ds, lambda b: {"y": b["x"]}, str(tmp_path), chunk_size=5, params={"a": 1})
    with pytest.raises(RuntimeError, match="another run"):
        run_sharded(ds, lambda b: {"y": b["x"]}, str(tmp_path), chunk_size=5, params={"a": 2})
    out = run_sharded(ds, lambda b: {"y": [0] * len(b["x"])}, str(tmp_path), chunk_size=5, params={"a": 2}, restart=True)
    assert set(out["y"]) == {0}
    other = run_sharded(ds, lambda b: {"y": [1] * len(b["x"])}, str(tmp_path), chunk_size=5, params={"a": 3},
                        replace_other_run=True)
    assert set(other["y"]) == {1}


def test_restart_discards_this_runs_chunks(tmp_path):
    ds = data(20)
    run_sharded(ds, lambda b: {"y": [0] * len(b["x"])}, str(tmp_path), chunk_size=5)
    resumed = run_sharded(ds, lambda b: {"y": [1] * len(b["x"])}, str(tmp_path), chunk_size=5)
    assert set(resumed["y"]) == {0}  # same run: the finished chunks are reused
    restarted = run_sharded(ds, lambda b: {"y": [1] * len(b["x"])}, str(tmp_path), chunk_size=5, restart=True)
    assert set(restarted["y"]) == {1}


def test_wrong_length_from_compute_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="returned"):
        run_sharded(data(10), lambda b: {"y": [1]}, str(tmp_path), chunk_size=5)


@pytest.mark.slow
def test_killed_process_resumes_where_it_stopped(tmp_path):
    work_dir, result = tmp_path / "chunks", tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(work_dir), str(result), "--sleep", "0.4"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(done_chunks(str(work_dir))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = set(done_chunks(str(work_dir)))
    assert 3 <= len(before) < 11 and not result.exists()
    subprocess.run([sys.executable, str(SCRIPT), str(work_dir), str(result)], env=ENV, check=True, capture_output=True)
    after = done_chunks(str(work_dir))
    assert len(after) == 11
    # Finished chunks were not rewritten by the second run.
    for c in before:
        assert os.path.getmtime(after[c]) < os.path.getmtime(result)
    assert json.loads(result.read_text())["square"] == [i * i for i in range(103)]


@pytest.mark.slow
def test_two_process_accelerate_launch_equals_one_process(tmp_path, free_port):
    one = tmp_path / "one.json"
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "c1"), str(one)], env=ENV, check=True, capture_output=True)
    two = tmp_path / "two.json"
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port),
           str(SCRIPT), str(tmp_path / "c2"), str(two)]
    run = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert a["procs"] == 1 and b["procs"] == 2
    assert a["square"] == b["square"] and a["label"] == b["label"]
    ranks = sorted(p.name for p in (tmp_path / "c2").iterdir() if p.is_dir())
    assert ranks == ["rank-00000", "rank-00001"]


@pytest.mark.slow
def test_two_processes_without_work_dir_share_one_temporary_folder(tmp_path, free_port):
    """Without ``work_dir`` every rank must write where the merge reads (a bug when each made its own)."""
    two = tmp_path / "two.json"
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port),
           str(SCRIPT), "none", str(two)]
    run = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(two.read_text())
    assert result["procs"] == 2 and result["square"] == [i * i for i in range(103)]
