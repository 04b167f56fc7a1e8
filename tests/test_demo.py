"""`vitcurate demo` is `vitcurate curate` with the built-in ShapesWorld recipe: the published configs load back."""

from __future__ import annotations

import json

import pytest
import yaml
from datasets import load_dataset

from hf_vitcurate.cli import main
from hf_vitcurate.curation import builtin
from hf_vitcurate.demo import demo_recipe
from hf_vitcurate.errors import ConfigError


def test_demo_recipe_is_the_builtin_one_with_overrides():
    plain = demo_recipe()
    assert plain.text == builtin("shapesworld")  # the commented file, published as is
    changed = demo_recipe(n_images=40, fraction=0.3, seed=2, repo_id="me/x")
    assert changed.sources[0].n_images == 40 and changed.sources[0].seed == 2
    assert changed.outputs["svit_core"].fraction == changed.outputs["mllm_selector"].fraction == 0.3
    assert changed.outputs["revo_lion"].fraction == plain.outputs["revo_lion"].fraction  # S1's P, not a budget
    assert changed.publish.repo_id == "me/x" and yaml.safe_load(changed.text)["publish"]["repo_id"] == "me/x"
    free = demo_recipe(outputs=["svit_core", "recommended"])
    assert list(free.outputs) == ["svit_core", "recommended"] and not free.needs_model()
    with pytest.raises(ConfigError, match="outputs: no config 'best'"):
        demo_recipe(outputs=["best"])
    with pytest.raises(ConfigError, match=r"^fraction: expected a number in \(0, 1\], got 2$"):
        demo_recipe(fraction=2)


def test_builtin_recipe_draws_the_demo_pathologies():
    """The built-in recipe's ShapesWorld options are synthetic.DEMO_PATHOLOGIES, key for key (the benchmarks use those)."""
    from hf_vitcurate.synthetic import DEMO_PATHOLOGIES

    (world,) = [s for s in demo_recipe().sources if s.kind == "shapesworld"]
    assert world.options == DEMO_PATHOLOGIES


def test_one_progress_printer_for_demo_and_curate(capsys, monkeypatch):
    """demo and curate print their stage lines with progress.say, silent under -q."""
    import hf_vitcurate.commands.curate as curate_command
    import hf_vitcurate.demo as demo_module
    from hf_vitcurate.progress import say

    assert not hasattr(demo_module, "_say") and not hasattr(curate_command, "say")  # no second printer
    say("vitcurate demo")("validate: 3 rows")
    assert capsys.readouterr().out == "[vitcurate demo] validate: 3 rows\n"
    monkeypatch.setenv("HF_VITCURATE_QUIET", "1")
    say("vitcurate curate")("validate: 3 rows")
    assert capsys.readouterr().out == ""


@pytest.mark.slow
def test_demo_model_free_configs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--output", str(out), "--n-images", "24", "--fraction", "0.3",
            "--outputs", "svit_core", "mminstruct_style", "recommended"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "[vitcurate demo] validate:" in printed and "[vitcurate demo] output recommended:" in printed
    assert "vs random" in printed  # the short table before the JSON summary
    closing = json.loads(printed[printed.index("\n{"):])
    summary = json.loads((out / "summary.json").read_text())
    assert closing["output"] == str(out) and closing["rows_in"] == summary["rows_in"]
    assert summary["rows_in"] == summary["kept"] + summary["rejected"]
    for config, entry in summary["configs"].items():
        back = load_dataset(summary["published_to"], config)
        assert sum(len(d) for d in back.values()) == entry["rows"], config
        assert "_truth" not in next(iter(back.values())).column_names
    card = (out / "hub" / "README.md").read_text()
    assert "vitcurate curate recipe.yaml" in card and (out / "hub" / "recipe.yaml").is_file()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    """The whole built-in recipe on a small pool: every config, the model-based ones too."""
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out), "--n-images", "30"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["configs"]) == {"revo_lion", "svit_core", "mminstruct_style", "mllm_selector", "recommended"}
    assert set(summary["configs"]["revo_lion"]["splits"]) == {"tune", "eval"}
    for config in summary["configs"]:
        assert f"[vitcurate demo] output {config}:" in printed
        load_dataset(str(out / "hub"), config)
    back = load_dataset(str(out / "hub"), "mllm_selector", split="train")
    assert {"necessity", "informativeness", "yes_no"} <= set(back.column_names)
    card = (out / "hub" / "README.md").read_text()
    assert "#### Method: MLLM-Selector" in card and "#### Method: REVO-LION" in card
    assert "| near_duplicates |" in card  # the recommended combination's steps, counted
