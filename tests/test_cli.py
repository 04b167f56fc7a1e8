"""The command line mirrors the API: every subcommand builds, its defaults are the Python ones, errors are one line."""

from __future__ import annotations

import argparse
import inspect
import json

import pytest
from datasets import Dataset

from hf_vitcurate import FEATURES
from hf_vitcurate.cli import COMMANDS, build_parser, main


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(command path, parser)`` of every leaf subcommand."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaves(sub, path + (name,))


def _functions() -> dict[tuple[str, ...], object]:
    """The Python function behind each command whose flags must carry its defaults."""
    from hf_vitcurate import stages
    from hf_vitcurate.demo import run_demo
    from hf_vitcurate.formats import load_vit
    from hf_vitcurate.hub.publishing import publish
    from hf_vitcurate.models.training import train
    from hf_vitcurate.schema import validate
    from hf_vitcurate.stats import stats
    from hf_vitcurate.synthetic.evaluate import evaluate

    score = {name: getattr(stages, name.replace("-", "_")) for name in
             ("necessity", "generate", "mq", "concepts", "yes-no", "leakage", "qa-count", "taxonomy")}
    return {**{("score", k): fn for k, fn in score.items()}, ("train",): train, ("validate",): validate,
            ("convert",): load_vit, ("stats",): stats, ("evaluate",): evaluate, ("demo",): run_demo,
            ("publish",): publish}


# Flags whose CLI default differs from the Python one on purpose (the reason is the value).
CLI_ONLY = {
    (("score", "leakage"), "phrases"): "a file of phrases; none given means the Python default list",
    (("demo",), "output"): "demo's output_dir is --output, as everywhere",
}


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([name.replace("_", "-"), "--help"])
        assert exit_.value.code == 0
        assert "usage" in capsys.readouterr().out


def test_score_has_a_subcommand_for_every_stage():
    stages = {path[1] for path, _ in _leaves(build_parser()) if path[0] == "score"}
    assert stages == {"necessity", "generate", "mq", "concepts", "yes-no", "leakage", "qa-count", "taxonomy"}


def test_flag_defaults_are_the_python_defaults():
    leaves = dict(_leaves(build_parser()))
    checked = 0
    for path, fn in _functions().items():
        params = inspect.signature(fn).parameters
        for action in leaves[path]._actions:
            if (path, action.dest) in CLI_ONLY or action.dest not in params:
                continue
            default = params[action.dest].default
            if default is inspect.Parameter.empty:
                continue  # required in Python: required (or the input) on the command line
            assert action.default == default, f"vitcurate {' '.join(path)} --{action.dest}: {action.default!r} != {default!r}"
            checked += 1
    assert checked > 50


def test_score_flags_cover_the_stage_options():
    """Every keyword option of a score stage is a flag (keep_loaded and fingerprint, a hash already
    computed by the caller, only make sense inside one Python process)."""
    leaves = dict(_leaves(build_parser()))
    python_only = {"keep_loaded", "fingerprint"}
    for path, fn in _functions().items():
        if path[0] != "score":
            continue
        dests = {a.dest for a in leaves[path]._actions}
        params = [p for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY]
        missing = [p.name for p in params if p.name not in dests and p.name not in python_only]
        assert not missing, f"vitcurate {' '.join(path)} lacks {missing}"


def test_train_recipe_flags_default_to_the_recipe():
    from hf_vitcurate.models.training import Recipe

    (train,) = [p for path, p in _leaves(build_parser()) if path == ("train",)]
    args = train.parse_args(["rows", "--model", "m", "--output", "o"])
    assert args.recipe == "llava" and args.restart is False
    for name in ("learning_rate", "batch_size", "epochs", "seed", "progress"):
        assert name in Recipe.__dataclass_fields__ and getattr(args, name) is None  # None: the preset's value


def _rows(n: int = 3) -> dict:
    return {
        "id": ["a", "b", "a"][:n],
        "images": [[], [], []][:n],
        "conversations": ([[{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]] * 2 + [[]])[:n],
        "source": ["s"] * n,
        "task": ["t"] * n,
    }


def test_validate_command_writes_kept_and_rejected(tmp_path, capsys):
    Dataset.from_dict(_rows(), features=FEATURES).save_to_disk(str(tmp_path / "in"))
    code = main(["validate", str(tmp_path / "in"), "--output", str(tmp_path / "kept.jsonl"),
                 "--rejected", str(tmp_path / "rej.jsonl")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"output": str(tmp_path / "kept.jsonl"), "rejected_output": str(tmp_path / "rej.jsonl"),
                       "rows_in": 3, "kept": 2, "rejected": 1, "reasons": {"duplicate_id": 1}}
    assert len((tmp_path / "rej.jsonl").read_text().splitlines()) == 1


def test_quiet_prints_only_the_summary(tmp_path, capsys):
    Dataset.from_dict(_rows(), features=FEATURES).save_to_disk(str(tmp_path / "in"))
    assert main(["-q", "validate", str(tmp_path / "in"), "--output", str(tmp_path / "kept")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["output"] == str(tmp_path / "kept")  # stdout is the summary, nothing else
    assert "%|" not in captured.err and "it/s" not in captured.err  # no progress bars


def test_strict_validation_error_is_one_line(tmp_path, capsys):
    rows = {"id": ["x"], "images": [[]], "conversations": [[{"from": "human", "value": "Hi"}]], "source": ["s"], "task": ["t"]}
    Dataset.from_dict(rows, features=FEATURES).save_to_disk(str(tmp_path / "in"))
    assert main(["validate", str(tmp_path / "in"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "row id='x'" in err and "last_not_gpt" in err and "Traceback" not in err


def _text_rows(tmp_path) -> str:
    conv = [[{"from": "human", "value": "Is it red?"}, {"from": "gpt", "value": "Yes, per the captions."}],
            [{"from": "human", "value": "How many?"}, {"from": "gpt", "value": "Two big cubes."},
             {"from": "human", "value": "Color?"}, {"from": "gpt", "value": "Red."}]]
    rows = {"id": ["a", "b"], "images": [[], []], "conversations": conv, "source": ["s", "s"], "task": ["conv", "ref"]}
    Dataset.from_dict(rows, features=FEATURES).save_to_disk(str(tmp_path / "in"))
    return str(tmp_path / "in")


def test_score_commands_add_columns_and_split_flagged_rows(tmp_path, capsys):
    src = _text_rows(tmp_path)
    for stage, column, extra in [("concepts", "informativeness", []), ("yes-no", "yes_no", []),
                                 ("taxonomy", "domain", ["--no-use-task"]), ("leakage", "leakage", [])]:
        out = str(tmp_path / f"{stage}.parquet")
        assert main(["score", stage, src, "--output", out, *extra]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["output"] == out and summary["rows"] == 2
        assert column in Dataset.from_parquet(out).column_names
    assert main(["score", "leakage", src, "--output", str(tmp_path / "kept"), "--rejected", str(tmp_path / "rej.jsonl")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows_in"], summary["rows"], summary["rejected"]) == (2, 1, 1)
    assert json.loads((tmp_path / "rej.jsonl").read_text())["reject_reason"] == "leakage"
    assert main(["score", "qa-count", src, "--expected", "ref=3", "--output", str(tmp_path / "q"),
                 "--rejected", str(tmp_path / "short.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["rejected"] == 1
    assert json.loads((tmp_path / "short.jsonl").read_text())["reject_detail"] == "2 QA pairs, expected 3"


def test_score_errors_name_the_flag(tmp_path, capsys):
    src = _text_rows(tmp_path)
    assert main(["score", "mq", src, "--output", str(tmp_path / "o"), "--answer-column", "nope"]) == 2
    assert "--answer-column" in capsys.readouterr().err
    assert main(["score", "qa-count", src, "--output", str(tmp_path / "o"), "--expected", "ref=x"]) == 2
    assert "--expected" in capsys.readouterr().err


def test_model_and_recipe_errors_name_the_flag(tmp_path, capsys):
    src = _text_rows(tmp_path)
    for argv in (["score", "necessity", src, "--output", "o"], ["score", "generate", src, "--output", "o"],
                 ["train", src, "--output", "o"], ["evaluate"]):
        assert main([*argv, "--model", str(tmp_path / "missing" / "ckpt")]) == 2
        assert "--model: no checkpoint folder" in capsys.readouterr().err
    assert main(["train", src, "--model", str(tmp_path), "--output", "o", "--train-parts", "vision,wings"]) == 2
    assert "--train-parts" in capsys.readouterr().err


def test_select_commands(tmp_path, capsys):
    ds = Dataset.from_dict({"id": [f"r{i}" for i in range(20)], "necessity": [float(i) for i in range(20)]})
    ds.save_to_disk(str(tmp_path / "scored"))
    assert main(["select", "nbgs", str(tmp_path / "scored"), "--n", "5", "--k", "10", "--tau", "0",
                 "--output", str(tmp_path / "sel"), "--manifest", str(tmp_path / "m.json")]) == 0
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["n_selected"] == 5 and sorted(manifest["ids"]) == ["r17", "r18", "r19", "r8", "r9"]
    capsys.readouterr()
    assert main(["select", "top", str(tmp_path / "scored"), "--n", "3", "--output", str(tmp_path / "top")]) == 0
    assert json.loads(capsys.readouterr().out)["n_selected"] == 3
