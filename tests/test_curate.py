"""The main job: a recipe curates a pool into every config of one Hub-layout repo (hf_vitcurate.curate)."""

from __future__ import annotations

import json

import pytest
import yaml
from datasets import load_dataset

from hf_vitcurate.cli import main
from hf_vitcurate.columns import list_column
from hf_vitcurate.curation import builtin, curate, load_recipe, load_sources, parse_recipe
from hf_vitcurate.errors import ConfigError

# Model-free configs only: seconds on a CPU.
FAST = {
    "sources": {"shapesworld": {"n_images": 30, "seed": 3}},
    "stages": ["concepts", "yes_no", "leakage", "taxonomy"],
    "outputs": {
        "svit_core": {"method": "svit_core", "fraction": 0.25, "options": {"allow_short": True}},
        "mminstruct_style": {"method": "mminstruct_style"},
        "recommended": {"method": "recommended", "fraction": 0.5, "seed": 1,
                        "steps": ["cleanup", {"near_duplicates": {"threshold": 0.8}},
                                  {"diversity": {"per_task": True, "allow_short": True}},
                                  {"balance": {"ratio": 8, "allow_short": True}}]},
    },
    "publish": {"repo_id": "me/shapes-curated"},
    "report": {"seeds": 3},
}


@pytest.mark.parametrize("change, message", [
    ({"outputs": {"svit_core": {"method": "svit_core", "fraction": "x"}}},
     "outputs.svit_core.fraction: expected a number, got 'x'"),
    ({"outputs": {"a": {"method": "best"}}}, "outputs.a.method: expected one of"),
    ({"outputs": {"a": {"method": "svit_core"}}}, "outputs.a: method svit_core needs a budget, n or fraction"),
    ({"outputs": {"a": {"method": "svit_core", "n": 5, "fraction": 0.5}}}, "outputs.a: give n or fraction, not both"),
    ({"outputs": {"a": {"method": "svit_core", "n": 5, "sed": 1}}}, "outputs.a.sed: unknown key"),
    ({"stages": ["concepts", "sharpen"]}, "stages[1]: unknown step 'sharpen'"),
    ({"sources": {"mine": {"kind": "files"}}}, "sources.mine.path: a file, folder or Hub id is required"),
    ({"sources": {"w": {"n_images": 2.5}}}, "sources.w.n_images: expected an integer, got 2.5"),
    ({"outputs": {"r": {"method": "recommended", "n": 9, "steps": ["quality"]}}},
     "outputs.r.steps[0].quality: column sq needs a revo_lion output"),
    ({"report": {"seeds": 0}}, "report.seeds: expected at least 1, got 0"),
    ({"publish": {"push": "yes"}}, "publish.push: expected true or false, got 'yes'"),
    ({"outptus": {}}, "outptus: unknown recipe key"),
    # the starting model, budget and seed come from the recipe: in options they clashed with a TypeError
    ({"outputs": {"m": {"method": "mllm_selector", "n": 5, "options": {"model": "other/model"}}}},
     "outputs.m.options.model: set by the recipe (model.checkpoint)"),
    ({"outputs": {"r": {"method": "revo_lion", "fraction": 0.5, "options": {"seed": 3}}}},
     "outputs.r.options.seed: set by the recipe (outputs.<name>.seed)"),
])
def test_recipe_errors_are_one_line_naming_the_key_path(change, message):
    with pytest.raises(ConfigError) as err:
        parse_recipe({**FAST, **change})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_cli_recipe_error_is_one_line(tmp_path, capsys):
    bad = tmp_path / "recipe.yaml"
    bad.write_text(yaml.safe_dump({**FAST, "outputs": {"svit_core": {"method": "svit_core", "fraction": "x"}}}))
    assert main(["curate", str(bad), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "vitcurate curate: error: outputs.svit_core.fraction: expected a number, got 'x'"]
    (tmp_path / "broken.yaml").write_text("outputs: [a: b\n")
    assert main(["curate", str(tmp_path / "broken.yaml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["curate", "recipe"]) == 2  # a bare name: neither a file nor a built-in recipe
    assert "no recipe file 'recipe' and no built-in recipe 'recipe'; known: ['shapesworld']" in capsys.readouterr().err


def test_builtin_recipe_prints_and_parses(capsys):
    assert main(["curate", "--print-recipe", "shapesworld"]) == 0
    printed = capsys.readouterr().out
    assert printed == builtin("shapesworld") and printed.startswith("#")
    recipe = load_recipe("shapesworld")
    assert list(recipe.outputs) == ["revo_lion", "svit_core", "mminstruct_style", "mllm_selector", "recommended"]
    assert recipe.needs_model() and recipe.report_seeds >= 5


def test_curate_accounts_for_every_row_and_is_deterministic():
    recipe = parse_recipe(FAST)
    pool, truth = load_sources(recipe)
    assert truth and "_truth" not in pool.column_names
    # One row broken on purpose: validation rejects it, and it is counted.
    broken = pool.map(lambda row, i: {"conversations": row["conversations"][:1] if i == 0 else row["conversations"]},
                      with_indices=True)
    first = curate(broken, recipe, work_dir="unused")
    assert first.rows_in == len(broken) == len(first.pool) + len(first.rejected) and len(first.rejected) == 1
    for name, acc in first.accounting.items():
        assert acc["rows_in"] == acc["kept"] + sum(acc["removed"].values()), name
        assert acc["kept"] == sum(len(d) for d in first[name][0].values())
    assert first.accounting["recommended"]["removed"]["cleanup"] > 0  # ShapesWorld leaks
    assert set(first["mminstruct_style"][0]) <= {"caption", "judgement", "long_vqa", "multiple_choice", "short_vqa"}
    again = curate(broken, recipe, work_dir="unused")
    for name in first:
        assert {s: list_column(d, "id") for s, d in first[name][0].items()} == \
               {s: list_column(d, "id") for s, d in again[name][0].items()}, name


@pytest.mark.slow
def test_curate_command_publishes_one_repo_every_config_loads(tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(FAST, sort_keys=False))
    out = tmp_path / "out"
    assert main(["curate", str(path), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "[vitcurate curate] stage concepts" in printed and "vs random" in printed  # progress lines, the table
    closing = json.loads(printed[printed.index("\n{"):])
    summary = json.loads((out / "summary.json").read_text())
    assert closing["configs"] == {c: v["rows"] for c, v in summary["configs"].items()}
    assert summary["rows_in"] == summary["kept"] + summary["rejected"]
    hub = out / "hub"
    for config, entry in summary["configs"].items():
        back = load_dataset(str(hub), config)
        assert {s: len(d) for s, d in back.items()} == entry["splits"], config
        assert "_truth" not in next(iter(back.values())).column_names
        assert entry["accounting"]["rows_in"] == entry["accounting"]["kept"] + sum(entry["accounting"]["removed"].values())
    # The recipe beside the card, named in it; a section per config; the report.
    assert yaml.safe_load((hub / "recipe.yaml").read_text()) == FAST
    card = (hub / "README.md").read_text()
    assert "vitcurate curate recipe.yaml" in card and "## How each config compares" in card
    for config in FAST["outputs"]:
        assert f"### `{config}`" in card
    assert "#### Method: SVIT-core" in card and "| cleanup |" in card
    assert {"degraded", "pool", "random_mean", "random_std", "z", "yes_no"} <= set(summary["configs"]["svit_core"])
    # The rerun from the published recipe gives the same rows.
    assert main(["-q", "curate", str(hub / "recipe.yaml"), "--output", str(tmp_path / "again")]) == 0
    rerun = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert {c: v["splits"] for c, v in rerun["configs"].items()} == {c: v["splits"] for c, v in summary["configs"].items()}


@pytest.mark.slow
def test_every_method_on_a_tiny_pool(tmp_path):
    """revo_lion, mllm_selector and the SQ quality step too, at the smallest sizes that run them."""
    from hf_vitcurate.curation.job import run_recipe

    recipe = {**FAST,
              "sources": {"shapesworld": {"n_images": 12, "seed": 1}},
              "model": {"checkpoint": "tiny", "vision_steps": 0, "max_steps": 2, "cache": False},
              "outputs": {
                  "revo_lion": {"method": "revo_lion", "fraction": 0.7,
                                "options": {"eval_size": 3, "max_new_tokens": 3,
                                            "groups": {"a": ["llava_conv", "llava_detail", "llava_complex", "captions", "text_only"],
                                                       "b": ["svit_referring", "svit_judgement", "mm_multiple_choice",
                                                             "mm_short_vqa"]},
                                            "train": {"max_steps": 2, "batch_size": 8}}},
                  "mllm_selector": {"method": "mllm_selector", "fraction": 0.3,
                                    "options": {"n_seed": 8, "train": {"max_steps": 2, "batch_size": 8}}},
                  "recommended": {"method": "recommended", "fraction": 0.5,
                                  "steps": ["cleanup", {"quality": {"fraction": 0.8}}]},
                  "by_necessity": {"method": "recommended", "fraction": 0.5,
                                   "steps": [{"quality": {"column": "necessity", "fraction": 0.8}}]},
              }}
    summary = run_recipe(recipe, output_dir=str(tmp_path))
    configs = summary["configs"]
    assert set(configs["revo_lion"]["splits"]) == {"tune", "eval"}
    assert configs["recommended"]["accounting"]["removed"]["quality"] > 0
    assert configs["by_necessity"]["accounting"]["removed"]["quality"] > 0  # the seed model's necessity, reused
    for name, entry in configs.items():
        acc = entry["accounting"]
        assert acc["rows_in"] == acc["kept"] + sum(acc["removed"].values()), name
        load_dataset(summary["published_to"], name)
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "#### Method: REVO-LION" in card and "#### Method: MLLM-Selector" in card


def test_a_file_source_without_truth(tmp_path):
    """A pool read by load_vit: no ground truth, so the table shows rows and yes:no only; the license reaches the card."""
    from hf_vitcurate.curation.job import run_recipe

    rows = [{"id": f"r{i}", "conversations": [{"from": "human", "value": f"Is {i} even?"},
                                              {"from": "gpt", "value": "Yes." if i % 2 == 0 else "No, it is odd."}]}
            for i in range(40)]
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = {"sources": {"numbers": {"path": str(tmp_path / "pool.jsonl"), "license": "cc-by-4.0"}},
              "stages": ["yes_no"],
              "outputs": {"sample": {"method": "random_subset", "n": 10, "seed": 4}},
              "report": {"seeds": 2}}
    summary = run_recipe(recipe, output_dir=str(tmp_path / "out"))
    assert summary["configs"]["sample"]["rows"] == 10 and "degraded" not in summary["configs"]["sample"]
    assert summary["table"].splitlines()[0].split() == ["config", "rows", "yes:no"]
    card = (tmp_path / "out" / "hub" / "README.md").read_text()
    assert "| numbers | cc-by-4.0 | 40 | 10 |" in card
    tags = yaml.safe_load(card.split("---")[1])["tags"]
    assert "data-selection" in tags and "revo-lion" not in tags  # a random draw alone: no method's tags


def test_work_dir_is_shared_by_runs_into_other_output_folders(tmp_path):
    """State lives in folders keyed by inputs: a second output folder with the same work_dir redoes nothing stale."""
    from hf_vitcurate.curation.job import run_recipe

    small = {**FAST, "outputs": {"svit_core": FAST["outputs"]["svit_core"]}}
    one = run_recipe(small, output_dir=str(tmp_path / "a"), work_dir=str(tmp_path / "work"))
    two = run_recipe(small, output_dir=str(tmp_path / "b"), work_dir=str(tmp_path / "work"))
    assert one["configs"]["svit_core"]["splits"] == two["configs"]["svit_core"]["splits"]
    assert (tmp_path / "work" / "report.png").is_file() and not (tmp_path / "a" / "work").exists()
    # A config named freely is measured by its method (svit_core, on yes:no).
    run_recipe({**FAST, "outputs": {"small": FAST["outputs"]["svit_core"]}}, output_dir=str(tmp_path / "c"),
               work_dir=str(tmp_path / "work"))
    report = json.loads((tmp_path / "c" / "summary.json").read_text())["report"]
    assert report["configs"]["small"]["targets"] == ["yes_no"]


def test_two_sources_become_one_pool_on_their_shared_columns(tmp_path):
    rows = [{"id": f"r{i}", "conversations": [{"from": "human", "value": f"Is {i} even?"},
                                              {"from": "gpt", "value": "Yes." if i % 2 == 0 else "No."}]} for i in range(5)]
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = {"sources": {"shapesworld": {"n_images": 4}, "numbers": {"path": str(tmp_path / "pool.jsonl")}},
              "outputs": {"sample": {"method": "random_subset", "n": 3}}}
    pool, truth = load_sources(recipe)
    assert list_column(pool, "source").count("numbers") == 5 and len(pool) > 5
    assert "_truth" not in pool.column_names and set(truth) < set(list_column(pool, "id"))


def test_a_config_section_lists_only_its_own_steps():
    from hf_vitcurate.hub.card import config_section

    def step(name, configs):
        return {"kind": "select", "name": name, "rows_in": 10, "rows_out": 5, "seed": 0, "params": {}, "configs": configs}

    steps = [step("mine", ["svit_core"]), step("other", ["svit_core_b"]), step("shared", ["svit_core", "svit_core_b"])]
    text = config_section({"config": "svit_core", "card": "svit_core"}, steps)["method"]
    assert "#### Method: SVIT-core" in text
    assert "`mine`" in text and "`shared`" in text and "`other`" not in text


def test_former_method_names_still_read_with_a_warning_naming_the_new_one():
    """Recipes published before the one-name rule (release, core, taxonomy, combination) still rerun."""
    former = {"a": {"method": "core", "n": 5}, "b": {"method": "taxonomy"}, "c": {"method": "release"},
              "d": {"method": "combination", "n": 5, "steps": ["cleanup"]}}
    with pytest.warns(FutureWarning) as caught:
        recipe = parse_recipe({"outputs": former})
    said = [str(w.message) for w in caught]
    assert len(said) == 4 and "outputs.a.method: 'core' is now 'svit_core'; write that instead" in said
    assert [o.method for o in recipe.outputs.values()] == ["svit_core", "mminstruct_style", "revo_lion", "recommended"]
