"""Resume after SIGKILL under `accelerate launch` (2 CPU processes): the same column as a clean run,
only unfinished chunks recomputed, a truncated chunk recomputed, a locked work dir refused;
a rerun with another model never reuses old chunks."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from PIL import Image as PILImage

from hf_vitcurate.distributed import done_chunks
from hf_vitcurate.errors import StaleStateError

from colour_rows import colour_rows

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "tests" / "scripts" / "necessity_job.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def square(colour: str) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (32, 32), colour).save(buf, format="PNG")
    return buf.getvalue()


def pool(n: int = 40) -> Dataset:
    colours = [["red", "blue", "green", "yellow"][i % 4] for i in range(n)]
    return colour_rows([square(c) for c in colours], [f"It is {c}." * (1 + i % 3) for i, c in enumerate(colours)])


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from hf_vitcurate.testing import tiny_checkpoint

    return tiny_checkpoint(pool(), output_dir=str(tmp_path_factory.mktemp("tiny")), image_size=32, patch_size=8,
                           vision_layers=1, text_layers=1)


def markers(work_dir: Path) -> dict[int, int]:
    """Finished chunks: index -> mtime_ns of the done marker (a recomputed chunk gets a new one)."""
    return {c: os.stat(p[: -len(".parquet")] + ".done").st_mtime_ns for c, p in done_chunks(str(work_dir)).items()}


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_groups(pids: list[int]) -> None:
    """SIGKILL the process group of each pid (torch's launcher starts every worker in its own session)."""
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def launch(args: list[str], port: int, log: Path) -> subprocess.Popen:
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--dynamo_backend", "no", "--main_process_port", str(port), *args]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True)


def wait_for(work_dir: Path, proc: subprocess.Popen, target: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while len(done_chunks(str(work_dir))) < target and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)


def wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return  # a zombie holds no lock
        except OSError:
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(ckpt, tmp_path, free_port):
    from hf_vitcurate.models.loading import using_threads
    from hf_vitcurate.stages import necessity

    data = pool(60)
    data.save_to_disk(str(tmp_path / "pool"))
    with using_threads(1):  # the launched processes use one thread each (OMP_NUM_THREADS=1): same arithmetic
        clean = necessity(data, model=ckpt, chunk_size=2, batch_size=2, dtype="float32")["necessity"]
    work, result = tmp_path / "work", tmp_path / "result.json"
    job = [str(JOB), str(tmp_path / "pool"), ckpt, str(work), str(result), "--sleep"]
    rng = random.Random(int(os.environ.get("RESUME_TEST_SEED", "19")))
    n_chunks, kills, leftovers = 30, [], []
    try:
        for round_ in range(int(os.environ.get("RESUME_TEST_KILLS", "5"))):
            before = markers(work)
            # 1-3 more (up to 2 more land while the kill is on its way): 30 chunks leave work for every round.
            target = len(before) + rng.randint(1, 3)
            # Round 2 kills the launcher alone: its workers (own sessions) live on, holding the work dir's lock.
            orphans = round_ == 2
            log = tmp_path / f"run{round_}.log"
            # (Slow chunks then: the orphans must outlive the second launch's start. They are killed while
            # computing: in a collective, the launcher's death would end them at once.)
            proc = launch([*job, "10" if orphans else "0.3"], free_port + round_ + 1, log)
            wait_for(work, proc, len(before) + 1 if orphans else target)
            time.sleep(rng.uniform(0, 0.3))  # between chunks or inside one
            leftovers = descendants(proc.pid)
            kill_groups([proc.pid] if orphans else [proc.pid, *leftovers])
            proc.wait()
            assert proc.returncode == -signal.SIGKILL and not result.exists(), log.read_text()[-3000:]
            if orphans:  # a second launch on the locked work dir (the CLI) stops at once with one line
                second = subprocess.run([sys.executable, "-m", "hf_vitcurate.cli", "score", "necessity",
                                         str(tmp_path / "pool"), "--model", ckpt, "--output", str(tmp_path / "second"),
                                         "--work-dir", str(work), "--chunk-size", "2", "--batch-size", "2",
                                         "--dtype", "float32"], env=ENV, capture_output=True, text=True, timeout=300)
                lines = [line for line in second.stderr.splitlines() if line.strip()]
                assert second.returncode != 0 and len(lines) == 1, second.stderr[-3000:]
                assert "is in use by process " in lines[0] and lines[0].endswith("wait for it or stop it")
                assert any(f"process {pid} " in lines[0] for pid in leftovers)  # names the orphaned rank 0
                assert not (tmp_path / "second").exists()
                deadline = time.time() + 120  # the orphans were still computing: let one chunk finish
                while len(markers(work)) <= len(before) and time.time() < deadline:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0, 1))
                kill_groups(leftovers)
                for pid in leftovers:
                    wait_gone(pid)
            after = markers(work)
            assert len(after) > len(before), log.read_text()[-3000:]  # killed mid-run, after some progress
            assert all(after[c] == t for c, t in before.items()), "a finished chunk was computed again"
            kills.append({"done_before": len(before), "done_after": len(after), "computed": len(after) - len(before),
                          "launcher_only": orphans})
        assert len(markers(work)) < n_chunks
        # A finished chunk truncated on disk is recomputed (it was 'Parquet magic bytes not found' at every rerun).
        before = markers(work)
        victim = sorted(before)[0]
        path = done_chunks(str(work))[victim]
        blob = open(path, "rb").read()
        open(path, "wb").write(blob[: len(blob) // 2])
        final = subprocess.run(["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
                                str(free_port + 9), *job, "0"], env=ENV, capture_output=True, text=True, timeout=180)
        assert final.returncode == 0, final.stderr[-3000:]
        assert f"chunk {victim} in {work}: its file has" in final.stderr and "recomputing it" in final.stderr
    finally:
        kill_groups(leftovers)
    after = markers(work)
    recomputed = sorted(c for c in after if before.get(c) != after[c])
    assert recomputed == sorted({victim} | (set(range(n_chunks)) - set(before)))
    resumed = json.loads(result.read_text())
    assert resumed["procs"] == 2
    diff = np.abs(np.array(resumed["necessity"]) - np.array(clean, dtype=float))
    assert diff.max() == 0.0
    (tmp_path / "kills.json").write_text(json.dumps({"kills": kills, "final_recomputed": len(recomputed)}))
    print(json.dumps({"kills": kills, "final_recomputed": len(recomputed)}))


@pytest.mark.slow
def test_another_model_or_chunk_size_never_reuses_chunks(ckpt, tmp_path):
    """The run key holds the model's content, not its path: a checkpoint rewritten in place is another run."""
    from hf_vitcurate.stages import generate, necessity

    data = pool(4)
    model = tmp_path / "model"
    shutil.copytree(ckpt, model)
    work = tmp_path / "w"
    first = necessity(data, model=str(model), work_dir=str(work), chunk_size=2, dtype="float32")
    config = json.loads((model / "config.json").read_text())
    config["text_config"]["rms_norm_eps"] = config["text_config"].get("rms_norm_eps", 1e-6) * 10
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(StaleStateError, match="changed: .*model"):
        necessity(data, model=str(model), work_dir=str(work), chunk_size=2, dtype="float32")
    with pytest.raises(StaleStateError, match="chunk_size 2 -> 3"):
        necessity(data, model=str(model), work_dir=str(work), chunk_size=3, dtype="float32")
    again = necessity(data, model=str(model), work_dir=str(work), chunk_size=2, dtype="float32", restart=True)
    assert list(again["necessity"]) != list(first["necessity"])
    gen = tmp_path / "g"
    generate(data, model=str(model), work_dir=str(gen), max_new_tokens=2, chunk_size=2)
    shutil.copytree(ckpt, model, dirs_exist_ok=True)  # back to the first weights and config, same path
    with pytest.raises(StaleStateError, match="model"):
        generate(data, model=str(model), work_dir=str(gen), max_new_tokens=2, chunk_size=2)
