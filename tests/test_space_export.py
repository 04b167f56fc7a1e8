"""``vitcurate space-export``: a Space repository whose front matter the Hub reads and whose requirements pin this version."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from hf_vitcurate import __version__
from hf_vitcurate.cli import main
from hf_vitcurate.space.export import gradio_version, write_space


def _front_matter(path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_space_export_writes_the_front_matter_and_pins_the_package(tmp_path, capsys):
    out = tmp_path / "space"
    assert main(["space-export", str(out), "--hardware", "cpu-upgrade"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(out) and summary["pushed_to"] is None
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "app.py", "requirements.txt"]
    meta = _front_matter(out / "README.md")
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio_version() == summary["sdk_version"]
    assert meta["app_file"] == "app.py" and meta["suggested_hardware"] == "cpu-upgrade"
    assert meta["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert (out / "requirements.txt").read_text().splitlines() == [f"hf_vitcurate[space]=={__version__}"]
    compile((out / "app.py").read_text(), "app.py", "exec")  # the app file is Python


def test_space_export_refuses_to_overwrite_unless_asked(tmp_path, capsys):
    out = tmp_path / "space"
    write_space(str(out))
    assert main(["space-export", str(out)]) == 2
    assert "already holds app.py" in capsys.readouterr().err
    assert main(["space-export", str(out), "--overwrite", "--requirement", "hf_vitcurate[space] @ git+https://x/y"]) == 0
    assert (out / "requirements.txt").read_text().strip() == "hf_vitcurate[space] @ git+https://x/y"
    assert main(["space-export", str(tmp_path / "other"), "--push"]) == 2
    assert "--push needs --repo-id" in capsys.readouterr().err


def test_space_export_push_uploads_a_space_repo(tmp_path, monkeypatch, capsys):
    from hub_server import HubServer, point_clients_at

    secret = "hf_SPACE_EXPORT_secret_0123456789"
    with HubServer(token=secret) as hub:
        point_clients_at(hub.url, monkeypatch, str(tmp_path / "hf-cache"))
        monkeypatch.setenv("HF_TOKEN", secret)
        assert main(["space-export", str(tmp_path / "space"), "--push", "--repo-id", "me/vitcurate-space"]) == 0
        files = hub.files("me/vitcurate-space", repo_type="space")
    assert {"README.md", "app.py", "requirements.txt"} <= set(files)  # and the .gitattributes a new repo has
    assert _front_matter(tmp_path / "space" / "README.md")["sdk"] == "gradio"
    out = capsys.readouterr()
    assert json.loads(out.out)["pushed_to"] == "spaces/me/vitcurate-space" and secret not in out.out + out.err


@pytest.mark.parametrize("flag", ["--hardware", "--title"])
def test_space_export_help_names_its_defaults(flag, capsys):
    with pytest.raises(SystemExit):
        main(["space-export", "--help"])
    assert flag in capsys.readouterr().out
