"""Publishes in a loop, run by tests in subprocesses (two at once into one local folder).

usage: publish_job.py DATA LOCAL_DIR PREFIX COUNT READY GO [HUB_URL]
Loads the save_to_disk folder DATA, writes READY, waits until GO exists (so two jobs
start together), then publishes DATA as versions PREFIX0 .. PREFIX{COUNT-1} into
LOCAL_DIR, one after the other. Prints one JSON line: per version {"ok": true} or
{"ok": false, "error": class name, "message": ...}.

With HUB_URL, each publish also pushes (push=True) to the Hub API server of
tests/hub_server.py that the test runs at that address (the token comes from HF_TOKEN);
the server holds each commit as long as the test asks, as an upload takes time: the time
a publish spends between writing the working tree and saving its version.
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for hub_server

import pytest
from datasets import load_from_disk
from datasets.utils.logging import disable_progress_bar

from hf_vitcurate.hub import publish
from hub_server import point_clients_at

if __name__ == "__main__":
    data, local_dir, prefix, count, ready, go = sys.argv[1:7]
    hub_url = sys.argv[7] if len(sys.argv) > 7 else None
    if hub_url is not None:
        point_clients_at(hub_url, pytest.MonkeyPatch(), tempfile.mkdtemp(prefix="publish_job_cache_"))
    disable_progress_bar()
    ds = load_from_disk(data)
    open(ready, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.001)
    results = {}
    for i in range(int(count)):
        try:
            publish(ds, "me/race", local_dir=local_dir, version=f"{prefix}{i}", push=hub_url is not None)
            results[f"{prefix}{i}"] = {"ok": True}
        except Exception as err:  # noqa: BLE001 - the test wants to see every failure, expected or not
            results[f"{prefix}{i}"] = {"ok": False, "error": type(err).__name__, "message": str(err)}
    print(json.dumps(results))
