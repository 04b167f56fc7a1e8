"""Publishes in a loop, run by tests in subprocesses (two at once into one local folder).

usage: publish_job.py DATA LOCAL_DIR PREFIX COUNT READY GO [UPLOAD_S]
Loads the save_to_disk folder DATA, writes READY, waits until GO exists (so two jobs
start together), then publishes DATA as versions PREFIX0 .. PREFIX{COUNT-1} into
LOCAL_DIR, one after the other. Prints one JSON line: per version {"ok": true} or
{"ok": false, "error": class name, "message": ...}.

With UPLOAD_S, each publish also pushes (push=True). The Hub is unreachable in tests, so
the HfApi calls that would go over the network are stood in for, and the commit takes
UPLOAD_S seconds, as an upload does: the time a publish spends between writing the
working tree and saving its version.
"""

import json
import os
import sys
import time

from datasets import load_from_disk
from datasets.utils.logging import disable_progress_bar

from hf_vitcurate.hub import publish


class _Info:
    oid = "c0ffee" * 6 + "abcd"
    tags: list = []


def stand_in_for_the_hub(upload_s: float) -> None:
    from huggingface_hub import HfApi

    HfApi.create_repo = lambda self, *a, **k: None
    HfApi.list_repo_refs = lambda self, *a, **k: _Info()
    HfApi.list_repo_tree = lambda self, *a, **k: []
    HfApi.create_commit = lambda self, *a, **k: time.sleep(upload_s) or _Info()
    HfApi.create_tag = lambda self, *a, **k: None


if __name__ == "__main__":
    data, local_dir, prefix, count, ready, go = sys.argv[1:7]
    upload_s = float(sys.argv[7]) if len(sys.argv) > 7 else None
    if upload_s is not None:
        stand_in_for_the_hub(upload_s)
    disable_progress_bar()
    ds = load_from_disk(data)
    open(ready, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.001)
    results = {}
    for i in range(int(count)):
        try:
            publish(ds, "me/race", local_dir=local_dir, version=f"{prefix}{i}", push=upload_s is not None)
            results[f"{prefix}{i}"] = {"ok": True}
        except Exception as err:  # noqa: BLE001 - the test wants to see every failure, expected or not
            results[f"{prefix}{i}"] = {"ok": False, "error": type(err).__name__, "message": str(err)}
    print(json.dumps(results))
