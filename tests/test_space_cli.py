"""``vitcurate space``: the app starts, serves its page, prints its JSON summary with the limits, and stops."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # importing gradio alone takes seconds


def test_vitcurate_space_serves_the_page_and_prints_its_summary(tmp_path):
    pytest.importorskip("gradio")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VITCURATE_SPACE_MAX_ROWS": "999", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "hf_vitcurate.cli", "space", "--port", str(port), "--max-upload-mb", "3",
           "--max-model-mb", "500", "--work-dir", str(tmp_path / "work")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        lines = []
        for line in proc.stdout:  # the summary comes once the server is up
            lines.append(line)
            if line.rstrip() == "}":
                break
        summary = json.loads("".join(lines[next(i for i, l in enumerate(lines) if l.startswith("{")):]))
        assert summary["url"].startswith(f"http://127.0.0.1:{port}")
        assert (summary["max_rows"], summary["max_upload_mb"], summary["trust_remote_code"]) == (999, 3, False)
        assert summary["max_model_mb"] == 500
        with urllib.request.urlopen(summary["url"], timeout=30) as page:
            assert page.status == 200 and "<html" in page.read().decode()
        with urllib.request.urlopen(summary["url"].rstrip("/") + "/config", timeout=30) as config:
            assert json.load(config)["title"] == "hf_vitcurate"  # this app's page, not any server's
    finally:
        proc.terminate()
        proc.wait(timeout=30)
