"""`vitcurate select METHOD`: one subcommand per selection, flags named and defaulted by the Python signatures."""

from __future__ import annotations

import argparse
import inspect
import json

import pytest
from datasets import Dataset, load_from_disk

from hf_vitcurate.cli import build_parser, main
from hf_vitcurate.commands.select import METHODS

EVERY_SELECTION = {"nbgs", "random-subset", "top", "bottom", "s1", "s2", "s3", "release", "core", "diversity",
                   "balance", "mix", "mllm-selector"}


def subcommands(parser: argparse.ArgumentParser, *path: str) -> dict[str, argparse.ArgumentParser]:
    """The subparsers under ``vitcurate PATH...`` by name (aliases included)."""
    for name in path:
        parser = subcommands(parser)[name]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError(f"no subcommands under {path}")


def check_defaults(parser: argparse.ArgumentParser, fn) -> int:
    """Every flag stored under a parameter of ``fn`` has that parameter's default; returns how many were checked."""
    params = inspect.signature(fn).parameters
    checked = 0
    for action in parser._actions:
        if action.dest in params and action.option_strings:
            default = params[action.dest].default
            if default is inspect.Parameter.empty:
                assert action.required, f"{parser.prog} {action.option_strings}: required in Python, optional here"
            else:
                assert action.default == default, f"{parser.prog} {action.option_strings}: {action.default!r} != {default!r}"
            assert "--" + action.dest.replace("_", "-") in action.option_strings
            checked += 1
    return checked


def test_every_selection_is_a_select_subcommand_with_the_signature_defaults():
    methods = subcommands(build_parser(), "select")
    assert EVERY_SELECTION <= set(methods) and set(METHODS) == EVERY_SELECTION
    assert methods["random"] is methods["random-subset"]  # the old name stays as an alias
    for name in EVERY_SELECTION:
        assert check_defaults(methods[name], METHODS[name].fn) >= 1, name
    # The defaults the issue named: written once, in Python.
    assert methods["s1"].get_default("fraction") == 0.7 and methods["release"].get_default("eval_size") == 600


def test_paper_groups_are_the_same_subcommands():
    parser = build_parser()
    select = subcommands(parser, "select")
    aliases = {("svit",): ("diversity", "balance", "core", "mix"), ("revolion", "select"): ("s1", "s2", "s3"),
               ("revolion",): ("release",)}
    for path, names in aliases.items():
        group = subcommands(parser, *path)
        for name in names:
            ours = {a.dest: (a.option_strings, a.default, a.required) for a in group[name]._actions}
            theirs = {a.dest: (a.option_strings, a.default, a.required) for a in select[name]._actions}
            assert ours == theirs, (path, name)
            check_defaults(group[name], METHODS[name].fn)
    split = subcommands(parser, "revolion")["split"]
    from hf_vitcurate.select import split_protocol

    assert check_defaults(split, split_protocol) == 4


@pytest.fixture()
def scored(tmp_path):
    ds = Dataset.from_dict({"id": [f"r{i:02d}" for i in range(20)], "necessity": [float(i) for i in range(20)],
                            "source": ["A"] * 10 + ["B"] * 10, "sq": [float(i % 7) for i in range(20)]})
    ds.save_to_disk(str(tmp_path / "scored"))
    return str(tmp_path / "scored")


def test_n_or_fraction_and_the_summary(scored, tmp_path, capsys):
    assert main(["select", "random", scored, "--fraction", "0.25", "--seed", "3", "--output", str(tmp_path / "r")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(tmp_path / "r") and summary["rows_in"] == 20 and summary["rows_out"] == 5
    assert summary["method"] == "random_subset" and "ids" not in summary
    assert len(load_from_disk(str(tmp_path / "r"))) == 5
    assert main(["select", "bottom", scored, "--n", "2", "--output", str(tmp_path / "b"),
                 "--manifest", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["ids"] == ["r00", "r01"]
    capsys.readouterr()
    assert main(["select", "release", scored, "--fraction", "0.5", "--eval-size", "2", "--output", str(tmp_path / "rel")]) == 0
    assert json.loads(capsys.readouterr().out)["rows_out"] == {"tune": 6, "eval": 4}


@pytest.mark.parametrize("argv,message", [
    (["nbgs", "--n", "3", "--fraction", "0.1"], "give exactly one of --n or --fraction"),
    (["top"], "give exactly one of --n or --fraction"),
    (["top", "--n", "21"], "--n 21 must be"),
    (["random-subset", "--fraction", "1.5"], "--fraction 1.5 must be between 0 and 1"),
    (["s3", "--lam", "-1"], "--lam -1.0 must be >= 0"),
    (["top", "--n", "2", "--score-column", "nope"], "score column 'nope' not in the dataset"),
])
def test_errors_are_one_line_naming_the_flag(scored, tmp_path, capsys, argv, message):
    assert main(["-q", "select", argv[0], scored, *argv[1:], "--output", str(tmp_path / "x")]) == 2
    text = capsys.readouterr().err
    assert text.startswith(f"vitcurate select {argv[0]}: error: ") and message in text and text.count("\n") == 1


def test_svit_recipes_and_mix_through_select(tmp_path, capsys):
    pool = Dataset.from_dict({"id": [str(i) for i in range(40)], "task": ["a", "b"] * 20, "source": ["svit"] * 40,
                              "informativeness": list(range(40)), "yes_no": ["yes"] * 10 + ["no"] * 10 + ["none"] * 20})
    pool.save_to_disk(str(tmp_path / "pool"))
    assert main(["select", "core", str(tmp_path / "pool"), "--n", "10", "--ratio", "2", "--output", str(tmp_path / "core")]) == 0
    assert json.loads(capsys.readouterr().out)["rows_out"] == 10
    mixture = Dataset.from_dict({"id": ["m1", "m2", "m3"], "task": ["a", "b", "a"], "source": ["llava", "vqa", "llava"]})
    mixture.save_to_disk(str(tmp_path / "mixture"))
    assert main(["select", "mix", str(tmp_path / "mixture"), "--core", str(tmp_path / "core"),
                 "--replace-source", "llava", "--output", str(tmp_path / "mixed")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_out"] == 11 and summary["counts"]["removed"] == 2
    assert main(["svit", "diversity", str(tmp_path / "pool"), "--n", "39", "--output", str(tmp_path / "x")]) == 2
    assert "--allow-short" in capsys.readouterr().err


def test_s1_and_release_threshold_flags(tmp_path, capsys):
    # A: 0.9 then three ties at 0.5 then 0.1; P = 0.5 cuts inside the ties.
    ds = Dataset.from_dict({"id": ["a1", "a2", "a3", "a4", "a5"], "source": ["A"] * 5, "sq": [0.9, 0.5, 0.5, 0.5, 0.1]})
    ds.save_to_disk(str(tmp_path / "ties"))
    pool = str(tmp_path / "ties")
    for flag, kept in (("--threshold", 4), ("--no-threshold", 3)):
        assert main(["select", "s1", pool, "--fraction", "0.5", flag, "--output", str(tmp_path / ("s1" + flag))]) == 0
        assert json.loads(capsys.readouterr().out)["rows_out"] == kept
        assert main(["revolion", "release", pool, "--fraction", "0.5", "--eval-size", "1", flag,
                     "--output", str(tmp_path / ("rel" + flag))]) == 0
        assert json.loads(capsys.readouterr().out)["rows_out"] == {"tune": kept - 1, "eval": 1}


def test_nbgs_quotas_flag(scored, tmp_path, capsys):
    # 20 rows, k = 8: groups of 8, 8, 4. Proportional quotas of 10: 4, 4, 2; equal: 4, 3, 3.
    for flag, quotas in ((None, [4, 4, 2]), ("equal", [4, 3, 3]), ("proportional", [4, 4, 2])):
        extra = ["--quotas", flag] if flag else []
        assert main(["select", "nbgs", scored, "--n", "10", "--k", "8", "--tau", "0", *extra,
                     "--output", str(tmp_path / f"q{flag}")]) == 0
        assert json.loads(capsys.readouterr().out)["quotas"] == quotas
    with pytest.raises(SystemExit):  # not a choice: argparse's one-line usage error
        main(["select", "nbgs", scored, "--n", "3", "--quotas", "even", "--output", str(tmp_path / "x")])


def test_mllm_selector_quotas_and_paper_preset_flags(monkeypatch, tmp_path, capsys):
    from test_nbgs import fake_mllm_steps

    calls = []
    fake_mllm_steps(monkeypatch, calls)
    Dataset.from_dict({"id": [f"r{i:02d}" for i in range(27)]}).save_to_disk(str(tmp_path / "pool"))
    base = ["select", "mllm-selector", str(tmp_path / "pool"), "--n", "12", "--model", "f_pre",
            "--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "sel")]
    assert main([*base, "--n-seed", "2", "--k", "10", "--tau", "0", "--quotas", "equal"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["nbgs"]["quotas"] == [4, 3, 3] and summary["rows_out"] == 12
    assert main([*base, "--preset", "paper"]) == 2
    assert "--n-seed 100000 exceeds the budget m=12" in capsys.readouterr().err
    assert main([*base, "--n-seed", "2", "--preset", "paper"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["k"] == 50_000
    with pytest.raises(SystemExit):
        main([*base, "--preset", "tiny"])


@pytest.mark.parametrize("command", [["select", "mllm-selector", "in", "--model", "m", "--work-dir", "w", "--n", "5"],
                                     ["revolion", "cross", "--work-dir", "w"]])
def test_the_model_cache_is_a_flag_of_the_commands_that_fine_tune(command):
    """`cache=` of mllm_selector / tune_cross_evaluate is --cache/--no-cache; unset, the environment decides."""
    parser = build_parser()
    tail = ["--output", "o"]
    assert parser.parse_args(command + tail).cache is None
    assert parser.parse_args(command + tail + ["--no-cache"]).cache is False
    assert parser.parse_args(command + tail + ["--cache"]).cache is True
