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

from hf_vitcurate import locks
from hf_vitcurate.distributed import ROW, _chunk_path, _write_chunk, done_chunks, run_sharded
from hf_vitcurate.errors import ConfigError, LockedError, RunError, StaleStateError

SCRIPT = Path(__file__).parent / "scripts" / "sharded_job.py"
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def data(n=103):
    return Dataset.from_dict({"id": [f"r{i}" for i in range(n)], "x": list(range(n))})


@pytest.mark.parametrize("decode", [True, False])
def test_same_as_plain_map_and_keeps_order(tmp_path, decode):
    ds = data().shuffle(seed=1)  # an indices mapping: order must be the shuffled one
    out = run_sharded(ds, lambda b: {"y": [v * 3 for v in b["x"]]}, str(tmp_path), chunk_size=8, decode=decode)
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
    with pytest.raises(StaleStateError, match=r"another run .*changed: a 1 -> 2\)"):
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
    with pytest.raises(ConfigError, match="returned .* one value per row"):
        run_sharded(data(10), lambda b: {"y": [1]}, str(tmp_path), chunk_size=5)


def count_calls(fn):
    calls = []

    def wrapped(batch):
        calls.append(batch["x"][0])
        return fn(batch)

    return wrapped, calls


def double(batch):
    return {"y": [v * 2 for v in batch["x"]]}


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "delete_parquet", "old_marker", "wrong_range"])
def test_damaged_finished_chunk_is_recomputed_with_a_warning(tmp_path, caplog, damage):
    """Before: a truncated chunk made every rerun die with 'ArrowInvalid: Parquet magic bytes not found'."""
    ds = data(20)
    run_sharded(ds, double, str(tmp_path), chunk_size=5)
    path = done_chunks(str(tmp_path))[2]
    blob = open(path, "rb").read()
    if damage == "truncate":
        open(path, "wb").write(blob[: len(blob) // 2])
    elif damage == "flip_byte":  # same size, one byte changed
        open(path, "wb").write(blob[:40] + bytes([blob[40] ^ 0xFF]) + blob[41:])
    elif damage == "delete_parquet":
        os.remove(path)
    elif damage == "old_marker":  # the row count alone, as older versions wrote it
        open(path[: -len(".parquet")] + ".done", "w").write("5")
    else:
        marker = path[: -len(".parquet")] + ".done"
        info = json.load(open(marker))
        open(marker, "w").write(json.dumps({**info, "lo": 0, "hi": 5}))
    wrapped, calls = count_calls(double)
    with caplog.at_level("WARNING", logger="hf_vitcurate.distributed"):
        out = run_sharded(ds, wrapped, str(tmp_path), chunk_size=5)
    assert calls == [10]  # only the damaged chunk (rows 10..14) was computed again
    assert list(out["y"]) == [v * 2 for v in range(20)]
    assert "chunk 2" in caplog.text and "recomputing" in caplog.text


def test_leftovers_of_a_killed_write_are_removed(tmp_path):
    ds = data(10)
    run_sharded(ds, double, str(tmp_path), chunk_size=5)
    tmp = _chunk_path(str(tmp_path), 0, 1) + ".tmp"
    open(tmp, "wb").write(b"half a chunk")
    os.remove(_chunk_path(str(tmp_path), 0, 1)[: -len(".parquet")] + ".done")  # killed before its marker
    wrapped, calls = count_calls(double)
    assert list(run_sharded(ds, wrapped, str(tmp_path), chunk_size=5)["y"]) == [v * 2 for v in range(10)]
    assert calls == [5] and not os.path.exists(tmp)


def test_merge_checks_that_every_row_appears_once(tmp_path):
    import pyarrow as pa

    ds = data(10)
    run_sharded(ds, double, str(tmp_path), chunk_size=5)
    # A chunk whose marker is sound but whose rows are not its own (rows 0..4 again in chunk 1).
    table = pa.table({ROW: pa.array(range(0, 5), pa.int64()), "y": pa.array([0] * 5, pa.int64())})
    _write_chunk(done_chunks(str(tmp_path))[1], table, 5, 10)
    with pytest.raises(RunError, match=r"5 row\(s\) missing, 5 repeated"):
        run_sharded(ds, double, str(tmp_path), chunk_size=5)


def test_changing_chunk_size_is_another_run_never_a_merge_failure(tmp_path):
    """Before: 'chunks cover 11 rows, dataset has 10' at merge."""
    ds = data(10)
    run_sharded(ds, double, str(tmp_path), chunk_size=3)
    with pytest.raises(StaleStateError, match="chunk_size 3 -> 4"):
        run_sharded(ds, double, str(tmp_path), chunk_size=4)
    assert list(run_sharded(ds, double, str(tmp_path), chunk_size=4, restart=True)["y"]) == [v * 2 for v in range(10)]


def test_a_work_dir_in_use_stops_a_second_run_at_once(tmp_path):
    ds = data(10)
    with locks.hold(tmp_path, what="another run"):
        wrapped, calls = count_calls(double)
        with pytest.raises(LockedError, match=f"in use by process {os.getpid()} .*wait for it or stop it"):
            run_sharded(ds, wrapped, str(tmp_path), chunk_size=5)
        assert calls == []
    assert list(run_sharded(ds, double, str(tmp_path), chunk_size=5)["y"]) == [v * 2 for v in range(10)]
    assert locks.holder(tmp_path) is None  # released after the run


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
