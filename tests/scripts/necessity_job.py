"""Necessity on a saved pool, slowed down per chunk so tests can kill it mid-run (run by tests/test_resume.py).

usage: necessity_job.py POOL MODEL WORK_DIR RESULT_JSON [--sleep S]

The stage, the runner, the model and the chunk files are the real ones; ``--sleep`` only
waits before each chunk's scoring so that kill points fall between chunks and inside them.
A package error ends the job as the CLI does: one line on stderr, exit status 2.
"""

import importlib
import json
import sys
import time

from datasets import load_from_disk
from hf_vitcurate.distributed import state
from hf_vitcurate.errors import VitCurateError

if __name__ == "__main__":
    pool, model, work_dir, result = sys.argv[1:5]
    sleep = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    stage = importlib.import_module("hf_vitcurate.stages.necessity")  # the module (the package exports the function)
    real = stage.score_rows

    def slow(*args, **kwargs):
        time.sleep(sleep)
        return real(*args, **kwargs)

    stage.score_rows = slow
    try:
        out = stage.necessity(load_from_disk(pool), model=model, work_dir=work_dir, chunk_size=2, batch_size=2,
                              dtype="float32")
    except VitCurateError as err:  # as the CLI does: one line, exit status 2
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if state().is_main_process:
        with open(result, "w") as f:
            json.dump({"necessity": list(out["necessity"]), "procs": state().num_processes}, f)
