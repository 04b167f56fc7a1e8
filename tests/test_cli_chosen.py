"""cli.chosen: the innermost (sub)command parser of a command line, from args (no argparse privates)."""

from __future__ import annotations

import inspect

import pytest

from hf_vitcurate import cli


@pytest.mark.parametrize("argv, prog", [
    (["stats", "pool.jsonl"], "vitcurate stats"),
    (["score", "necessity", "pool/", "--model", "m", "--output", "o"], "vitcurate score necessity"),
    (["select", "nbgs", "pool/", "--n", "5", "--output", "o/"], "vitcurate select nbgs"),
    (["engine", "collect", "repo/", "--seeds", "s/", "--per-domain", "2", "--output", "o/"], "vitcurate engine collect"),
    (["demo"], "vitcurate demo"),
])
def test_chosen_is_the_innermost_parser(argv, prog):
    parser = cli.build_parser()
    command = cli.chosen(parser, parser.parse_args(argv))
    assert command.prog == prog
    assert any(a.option_strings for a in command._actions)  # a real parser: its flags spell its errors


def test_chosen_reads_no_argparse_privates():
    source = inspect.getsource(cli.chosen)
    assert "_actions" not in source and "_SubParsersAction" not in source


def test_an_error_names_the_innermost_command(capsys, tmp_path):
    assert cli.main(["engine", "collect", str(tmp_path / "nope"), "--seeds", str(tmp_path), "--per-domain", "2",
                     "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("vitcurate engine collect: error: ")
