"""A tiny sharded job, run by tests under `accelerate launch` or plain python.

usage: sharded_job.py WORK_DIR RESULT_JSON [--sleep S]    (WORK_DIR "none": no work_dir, a shared temporary one)
"""

import json
import sys
import time

from datasets import Dataset

from hf_vitcurate.distributed import run_sharded


def compute(batch, sleep=0.0):
    time.sleep(sleep)
    return {"square": [x * x for x in batch["x"]], "label": [f"{i}!" for i in batch["id"]]}


if __name__ == "__main__":
    work_dir, result = sys.argv[1], sys.argv[2]
    sleep = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    ds = Dataset.from_dict({"id": [f"r{i}" for i in range(103)], "x": list(range(103))})
    out = run_sharded(ds, lambda b: compute(b, sleep), None if work_dir == "none" else work_dir, chunk_size=10,
                      params={"job": "test"})
    from hf_vitcurate.distributed import state

    if state().is_main_process:
        with open(result, "w") as f:
            json.dump({"square": list(out["square"]), "label": list(out["label"]), "procs": state().num_processes}, f)
