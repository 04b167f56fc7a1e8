"""Every recipe in dataset_scripts/ runs end to end on a small ShapesWorld and writes a Hub-layout release.

The scripts are what a user runs to build a curated dataset; each is run here in-process
(``main(argv)``) at a size that takes seconds to a minute, without ``--push`` (the Hub upload
is the one step that needs the network; hub.publish's upload path is tested in test_hub.py).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from datasets import load_from_disk

SCRIPTS = Path(__file__).resolve().parents[1] / "dataset_scripts"


def run_script(name: str, argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def card(hub: Path) -> str:
    text = (hub / "README.md").read_text()
    assert text.startswith("---\n"), "the card starts with its YAML metadata"
    return text


def test_release_options_are_shared():
    import argparse

    from hf_vitcurate.commands.common import add_release_args

    p = argparse.ArgumentParser()
    add_release_args(p, "org/name", "out/x")
    assert vars(p.parse_args([])) == {"out": "out/x", "repo_id": "org/name", "version": None, "push": False}
    args = p.parse_args(["--out", "o", "--repo-id", "a/b", "--version", "v1", "--push"])
    assert (args.out, args.repo_id, args.version, args.push) == ("o", "a/b", "v1", True)
    for name in ("build_svit_core", "build_mllm_selector", "build_revo_lion", "build_individual_select"):
        assert "add_release_args(p, " in (SCRIPTS / f"{name}.py").read_text(), name


def test_build_svit_core(tmp_path):
    out = tmp_path / "svit"
    assert run_script("build_svit_core", ["--images", "200", "--n", "240", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    core = load_from_disk(str(out / "data"))["train"]
    assert len(core) == 240
    rejected = sum(manifest["rejected"].values())
    assert rejected > 0, "ShapesWorld's leaking answers are cleaned up"
    assert len(load_from_disk(str(out / "rejected"))) == rejected
    assert "_truth" not in core.column_names
    assert "SVIT" in card(out / "hub")
    assert (out / "question_types.png").stat().st_size > 0


@pytest.mark.slow
def test_build_mllm_selector(tmp_path):
    out = tmp_path / "mllm"
    assert run_script("build_mllm_selector", ["--images", "24", "--fraction", "0.3", "--out", str(out)]) == 0
    report = json.loads((out / "manifest.json").read_text())["report"]
    assert report["rows_in"] == report["kept"] + report["rejected"]
    selection = load_from_disk(str(out / "data"))["train"]
    assert len(selection) == report["selected"] == report["budget"]
    assert "necessity" in selection.column_names
    assert "MLLM-Selector" in card(out / "hub")


@pytest.mark.slow
def test_build_mminstruct_style(tmp_path):
    out = tmp_path / "mm"
    assert run_script("build_mminstruct_style", ["--out", str(out), "--images", "3", "--teach-steps", "0",
                                                 "--max-new-tokens", "24", "--types", "judgement", "short_vqa"]) == 0
    assert (out / "review.csv").exists()
    assert card(out / "hub")


@pytest.mark.slow
def test_build_revo_lion(tmp_path):
    out = tmp_path / "revo"
    assert run_script("build_revo_lion", ["--images", "16", "--datasets", "captions", "mm_short_vqa",
                                          "--epochs", "1", "--eval-size", "4", "--out", str(out)]) == 0
    summary = json.loads((out / "manifest.json").read_text())
    assert sorted(summary["trained"]) == ["captions", "mm_short_vqa"]
    parts = load_from_disk(str(out / "data"))
    assert summary["tune_rows"] == len(parts["tune"]) and len(parts["eval"]) == summary["eval_rows"]
    assert "sq" in load_from_disk(str(out / "scored")).column_names
    assert "REVO-LION" in card(out / "hub")


@pytest.mark.slow
def test_build_individual_select(tmp_path):
    out = tmp_path / "individual"
    categories = json.dumps({"mminstruct": ["mm_short_vqa"]})
    assert run_script("build_individual_select", ["--images", "16", "--categories", categories, "--benchmark-images", "4",
                                                  "--max-new-tokens", "8", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert [t["candidate"] for t in result["trials"]] == ["mm_short_vqa"]
    assert result["composition"][0] == "captions"
    assert "Individual Select" in card(out / "hub")
