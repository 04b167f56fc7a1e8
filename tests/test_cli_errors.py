"""Every CLI error path prints one line: ``vitcurate CMD: error: ...``, exit code 2, no traceback.

Each case runs ``hf_vitcurate.cli.main`` (a few run ``python -m hf_vitcurate.cli`` in a
subprocess) on a mistake a user makes: unscored data, a size larger than the pool, bad
flag values, missing files, an existing version, a locked folder, ... The line names the
flag when the mistake is a flag's value (Python option names are spelled as flags), and
``-v`` shows the traceback as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import Dataset

from hf_vitcurate.cli import main
from hf_vitcurate.hub import publish
from hf_vitcurate.locks import hold

ROOT = Path(__file__).resolve().parents[1]


def _pool(n: int, **extra) -> Dataset:
    """Canonical text rows (no images): load_input reads the saved folder as is."""
    return Dataset.from_dict({
        "id": [f"r{i}" for i in range(n)],
        "images": [[] for _ in range(n)],
        "conversations": [[{"from": "human", "value": f"Is shape {i} red?"},
                           {"from": "gpt", "value": "Yes, it is red, as the annotations say." if i % 2 else "No."}]
                          for i in range(n)],
        "source": ["a" if i % 2 else "b" for i in range(n)],
        "task": ["conversation"] * n,
        **extra,
    })


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli_errors")
    out = {"root": str(root)}
    for name, ds in {
        "three": _pool(3),
        "pool": _pool(12),
        "scored": _pool(12, necessity=[float(i) for i in range(12)], sq=[float(i) for i in range(12)]),
        "nan": _pool(4, necessity=[1.0, float("nan"), 2.0, 3.0]),
    }.items():
        ds.save_to_disk(str(root / name))
        out[name] = str(root / name)
    (root / "empty.txt").write_text("\n")
    (root / "bad.json").write_text("{not json")
    (root / "list.json").write_text("[1, 2]")
    (root / "rows.jsonl").write_text(json.dumps({"id": "x"}) + "\n")
    (root / "runs").mkdir()
    out["published"] = str(root / "published")
    publish(_pool(3), "me/x", local_dir=out["published"], version="v1")
    return out


def run(argv: list[str], capsys) -> tuple[int, str]:
    """``main(["-q", *argv])``: its exit code (usage errors exit through argparse) and stderr."""
    try:
        code = main(["-q", *argv])
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def one_line(code: int, err: str, command: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith(f"vitcurate {command}: error: "), err
    return lines[0]


# (id, argv with {name} for data paths, the command, what the line must say)
CASES = [
    ("unscored-nbgs", ["select", "nbgs", "{pool}", "--n", "2", "--output", "{out}"], "select nbgs",
     ["score column 'necessity' not in the dataset", "`vitcurate score necessity`"]),
    ("unscored-top", ["select", "top", "{pool}", "--n", "2", "--output", "{out}"], "select top",
     ["'necessity'", "vitcurate score necessity"]),
    ("n-over-pool", ["select", "random", "{three}", "--n", "5", "--output", "{out}"], "select random-subset",
     ["--n 5 must be a whole number between 0 and the pool size 3"]),
    ("n-and-fraction", ["select", "top", "{scored}", "--n", "2", "--fraction", "0.5", "--output", "{out}"],
     "select top", ["give exactly one of --n or --fraction"]),
    ("no-size", ["select", "bottom", "{scored}", "--output", "{out}"], "select bottom", ["--n or --fraction"]),
    ("fraction-over-1", ["select", "random-subset", "{pool}", "--fraction", "1.5", "--output", "{out}"],
     "select random-subset", ["--fraction 1.5 must be between 0 and 1"]),
    ("negative-tau", ["select", "nbgs", "{scored}", "--n", "2", "--tau", "-1", "--output", "{out}"], "select nbgs",
     ["--tau"]),
    ("zero-k", ["select", "nbgs", "{scored}", "--n", "2", "--k", "0", "--output", "{out}"], "select nbgs", ["--k"]),
    ("negative-lam", ["select", "s3", "{scored}", "--lam", "-1", "--output", "{out}"], "select s3",
     ["--lam -1.0 must be >= 0"]),
    ("nan-score", ["select", "top", "{nan}", "--n", "2", "--output", "{out}"], "select top",
     ["row id='r1' field='necessity'", "null"]),
    ("missing-group-column", ["select", "s1", "{scored}", "--by", "nope", "--output", "{out}"], "select s1",
     ["group column 'nope'", "--by COLUMN"]),
    ("core-short", ["select", "core", "{pool}", "--n", "11", "--output", "{out}"], "select core",
     ["short by", "--n", "--allow-short"]),
    ("mix-unknown-source", ["select", "mix", "{pool}", "--core", "{three}", "--replace-source", "zzz",
                            "--output", "{out}"], "select mix", ["--replace-source ['zzz']"]),
    ("mix-missing-core", ["select", "mix", "{pool}", "--core", "{root}/nope", "--replace-source", "a",
                          "--output", "{out}"], "select mix", ["--core: no such file or folder: "]),
    ("missing-input-file", ["validate", "{root}/missing.jsonl", "--output", "{out}"], "validate",
     ["no such file or folder: ", "missing.jsonl"]),
    ("missing-input-folder", ["stats", "{root}/no/such/folder"], "stats", ["no such file or folder: "]),
    ("bare-missing-name", ["stats", "scord"], "stats", ["no such file or folder: scord"]),
    ("typo-local-folder", ["select", "top", "runs/scord", "--n", "1", "--output", "{out}"], "select top",
     ["no such file or folder: runs/scord"]),
    ("qa-count-expected", ["score", "qa-count", "{pool}", "--expected", "ref=x", "--output", "{out}"],
     "score qa-count", ["--expected: give one number or TASK=N pairs"]),
    ("qa-count-task-column", ["score", "qa-count", "{pool}", "--expected", "ref=2", "--task-column", "nope",
                              "--output", "{out}"], "score qa-count", ["--task-column"]),
    ("mq-answer-column", ["score", "mq", "{pool}", "--answer-column", "nope", "--output", "{out}"], "score mq",
     ["--answer-column: 'nope' is not a column"]),
    ("leakage-missing-phrases", ["score", "leakage", "{pool}", "--phrases", "{root}/nope.txt", "--output", "{out}"],
     "score leakage", ["--phrases: no such file or folder"]),
    ("leakage-empty-phrases", ["score", "leakage", "{pool}", "--phrases", "{root}/empty.txt", "--output", "{out}"],
     "score leakage", ["--phrases: ", "holds no phrase"]),
    ("concepts-missing-sets", ["score", "concepts", "{pool}", "--concept-sets", "{root}/nope.yaml",
                               "--output", "{out}"], "score concepts", ["--concept-sets: no such file or folder"]),
    ("svit-clean-expected", ["svit", "clean", "{pool}", "--expected-qa", "ref=x", "--output", "{out}"], "svit clean",
     ["--expected-qa"]),
    ("publish-existing-version", ["publish", "{three}", "--repo-id", "me/x", "--local-dir", "{published}",
                                  "--version", "v1"], "publish", ["--version 'v1' already exists"]),
    ("publish-bad-version", ["publish", "{three}", "--repo-id", "me/x", "--local-dir", "{out}", "--version", "v 1!"],
     "publish", ["--version 'v 1!'"]),
    ("publish-bad-card", ["publish", "{three}", "--repo-id", "me/x", "--local-dir", "{out}", "--card", "nope"],
     "publish", ["--card 'nope' is neither one of"]),
    ("publish-missing-card-data", ["publish", "{three}", "--repo-id", "me/x", "--local-dir", "{out}",
                                   "--card-data", "{root}/nope.json"], "publish", ["--card-data: no such file"]),
    ("publish-card-data-not-json", ["publish", "{three}", "--repo-id", "me/x", "--local-dir", "{out}",
                                    "--card-data", "{root}/bad.json"], "publish", ["--card-data: ", "not JSON"]),
    ("publish-card-data-not-object", ["publish", "{three}", "--repo-id", "me/x", "--local-dir", "{out}",
                                      "--card-data", "{root}/list.json"], "publish", ["--card-data: ", "JSON object"]),
    ("publish-missing-rejected", ["publish", "{three}", "--repo-id", "me/x", "--local-dir", "{out}",
                                  "--rejected", "{root}/nope"], "publish", ["--rejected: no such file"]),
    ("publish-not-saved", ["publish", "{root}/runs", "--repo-id", "me/x", "--local-dir", "{out}"], "publish",
     ["INPUT: ", "not a save_to_disk folder"]),
    ("publish-missing-input", ["publish", "{root}/nope", "--repo-id", "me/x", "--local-dir", "{out}"], "publish",
     ["no such file or folder"]),
    ("train-parts", ["train", "{pool}", "--model", "{root}", "--output", "{out}", "--train-parts", "wings"], "train",
     ["--train-parts: ['wings'] not in"]),
    ("train-num-threads", ["train", "{pool}", "--model", "{root}", "--output", "{out}", "--num-threads", "many"],
     "train", ["--num-threads"]),
    ("train-missing-model", ["train", "{pool}", "--model", "{root}/no/ckpt", "--output", "{out}"], "train",
     ["--model: no checkpoint folder"]),
    ("necessity-missing-model", ["score", "necessity", "{pool}", "--model", "./no/ckpt", "--output", "{out}"],
     "score necessity", ["--model: no checkpoint folder"]),
    ("mq-score-counts", ["revolion", "mq-score", "--predictions", "a", "b", "--references", "a"], "revolion mq-score",
     ["give as many --references as --predictions"]),
    ("split-seed", ["revolion", "split", "{pool}", "--seed", "SPLIT9", "--output", "{out}"], "revolion split",
     ["--seed 'SPLIT9'"]),
    ("split-tune-fraction", ["revolion", "split", "{pool}", "--tune-fraction", "1.5", "--output", "{out}"],
     "revolion split", ["--tune-fraction 1.5"]),
    ("dq-unscored", ["revolion", "dq", "{pool}"], "revolion dq", ["'mq__a' not in the dataset", "vitcurate score mq"]),
    ("engine-images-missing", ["engine", "caption", "{root}/nope", "--backend", "local", "--model", "x",
                               "--output", "{out}"], "engine caption", ["IMAGES: no such file or folder"]),
    ("engine-cost-missing-ledger", ["engine", "cost", "{root}/nope.jsonl", "--n-images", "1", "--n-instructions", "1"],
     "engine cost", ["no such file or folder"]),
    ("text-score-column", ["select", "nbgs", "{scored}", "--n", "2", "--score-column", "source", "--output", "{out}"],
     "select nbgs", ["score column 'source' holds string, not numbers"]),
    ("negative-ratio", ["select", "balance", "{pool}", "--n", "2", "--ratio", "-1", "--output", "{out}"],
     "select balance", ["--ratio -1"]),
    ("shard-size", ["publish", "{three}", "--repo-id", "me/x", "--local-dir", "{out}", "--max-shard-size", "lots"],
     "publish", ["--max-shard-size 'lots' is not a size"]),
    ("unknown-fallback", ["score", "taxonomy", "{pool}", "--fallback", "nope", "--output", "{out}"], "score taxonomy",
     ["--fallback 'nope' is not a domain"]),
    ("engine-images-spec", ["engine", "caption", "shapesworld:x", "--backend", "local", "--model", "x",
                            "--output", "{out}"], "engine caption", ["IMAGES: shapesworld[:N[:SEED]] takes whole numbers"]),
    ("engine-questions-missing", ["engine", "questions", "{root}/nope", "--backend", "local", "--model", "x",
                                  "--output", "{out}"], "engine questions", ["no such file or folder: ", "nope"]),
    ("engine-review-missing", ["engine", "review-import", "{pool}", "{root}/nope.csv", "--output", "{out}"],
     "engine review-import", ["no such file or folder: ", "nope.csv"]),
    # argparse's own errors: one line too, naming the flag.
    ("not-an-int", ["select", "top", "{scored}", "--n", "abc", "--output", "{out}"], "select top",
     ["argument --n: invalid int value: 'abc'"]),
    ("not-a-choice", ["select", "nbgs", "{scored}", "--n", "2", "--quotas", "even", "--output", "{out}"],
     "select nbgs", ["argument --quotas: invalid choice"]),
    ("missing-required", ["select", "top", "{scored}", "--n", "2"], "select top",
     ["the following arguments are required: --output"]),
    ("bad-recipe-json", ["select", "mllm-selector", "{pool}", "--n", "2", "--model", "m", "--work-dir", "{out}",
                         "--recipe", "{{nope", "--output", "{out}"], "select mllm-selector", ["argument --recipe: invalid JSON value"]),
]


@pytest.mark.parametrize("argv,command,says", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_is_one_line_naming_the_flag(data, tmp_path, monkeypatch, capsys, argv, command, says):
    monkeypatch.chdir(data["root"])  # runs/ exists there: "runs/scord" is a typo'd local folder, not a Hub id
    argv = [a.format(out=str(tmp_path / "out"), **data) for a in argv]
    line = one_line(*run(argv, capsys), command)
    for text in says:
        assert text in line, line
    assert not os.path.exists(tmp_path / "out" / "data"), "an error left a half-written output"


def test_every_case_has_its_own_path_and_there_are_at_least_25():
    assert len({c[0] for c in CASES}) == len(CASES) >= 25


def test_a_locked_publish_folder_is_one_line(data, tmp_path, capsys):
    local = tmp_path / "repo"
    with hold(local, what="another publish"):
        line = one_line(*run(["publish", data["three"], "--repo-id", "me/x", "--local-dir", str(local),
                              "--version", "v1"], capsys), "publish")
    assert "in use by process" in line and "another publish" in line


def test_verbose_shows_the_traceback_then_the_line(data, tmp_path, capsys):
    assert main(["-v", "select", "random", data["three"], "--n", "5", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConfigError" in err
    assert err.splitlines()[-1].startswith("vitcurate select random-subset: error: --n 5 must be")


def test_a_bug_keeps_its_traceback(data, tmp_path, monkeypatch):
    """Only the package's own errors become one line; anything else is a bug and propagates."""
    from hf_vitcurate.commands import stats as stats_command

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(stats_command, "run", broken)
    with pytest.raises(ZeroDivisionError):
        main(["-q", "stats", data["pool"]])


@pytest.mark.parametrize("argv,command,says", [
    (["select", "nbgs", "{pool}", "--n", "2", "--output", "{out}"], "select nbgs", "vitcurate score necessity"),
    (["select", "random", "{three}", "--n", "5", "--output", "{out}"], "select random-subset", "--n 5"),
    (["stats", "{root}/missing.jsonl"], "stats", "no such file or folder"),
])
def test_the_installed_command_prints_one_line(data, tmp_path, argv, command, says):
    """``python -m hf_vitcurate.cli`` as a user runs it: exit status 2, one line on stderr, nothing on stdout."""
    argv = [a.format(out=str(tmp_path / "out"), **data) for a in argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "hf_vitcurate.cli", "-q", *argv], capture_output=True, text=True,
                          env=env, timeout=300)
    line = one_line(proc.returncode, proc.stderr, command)
    assert says in line and proc.stdout == ""


def test_spell_flags_each_form():
    """Each form a Python option name takes in a message, and the plain words it leaves alone."""
    import argparse

    from hf_vitcurate.cli import Parser, spell_flags

    p = Parser(prog="x")
    p.add_argument("--allow-short", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--n", type=int)
    p.add_argument("--by")
    p.add_argument("--field")
    assert spell_flags("Or pass allow_short=True.", p) == "Or pass --allow-short."
    assert spell_flags("with allow_short=False", p) == "with --no-allow-short"
    assert spell_flags("Use a smaller `n`.", p) == "Use a smaller --n."
    assert spell_flags("set allow_short, by n=3", p) == "set --allow-short, by --n 3"
    assert spell_flags("pass by=, or n= (one number)", p) == "pass --by, or --n (one number)"
    assert spell_flags("group by column; n must be > 0", p) == "group by column; --n must be > 0"
    assert spell_flags("row id='r7' field='n'; 'allow_short' in /a/allow_short; n==2", p) == \
        "row id='r7' field='n'; 'allow_short' in /a/allow_short; n==2"


def test_core_shortfall_names_the_flags(data, tmp_path, capsys):
    line = one_line(*run(["select", "core", data["pool"], "--n", "11", "--output", str(tmp_path / "o")], capsys),
                    "select core")
    assert "pass --allow-short to return fewer rows" in line and "allow_short" not in line, line
