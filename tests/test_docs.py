"""The README is a tour and the docs describe what exists: size, the two commands, no outside references, real CLI lines."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "cards" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TWO_COMMANDS = [
    "pip install torch==2.13.0 -e . && vitcurate demo",
    "pip install torch==2.13.0 -e '.[dev]' && python -m pytest -q",
]
# What a user cannot open: the project's design notes and the papers live outside the repository.
OUTSIDE = re.compile(r"SPEC\s*§|SPEC\.md|DESIGN\.md|papers/0\d\d|\.\./shared|shared/data")


def test_readme_is_a_tour_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) <= 12 * 1024, f"README.md is {len(text.encode())} bytes; keep it a tour (<= 12 KB)"
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert [b.strip() for b in blocks[:2]] == TWO_COMMANDS
    assert TWO_COMMANDS[1].split("&& ")[1] in (REPO / ".ci" / "run").read_text()


def test_nothing_refers_to_files_outside_the_repository():
    files = DOCS + [p for p in (REPO / "hf_vitcurate").rglob("*") if p.suffix in (".py", ".md", ".j2", ".yaml")]
    files += list((REPO / "dataset_scripts").glob("*.py")) + list((REPO / "benchmarks").glob("*"))
    hits = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in files if p.is_file()
            for m in [OUTSIDE.search(p.read_text(errors="replace"))] if m]
    assert not hits, f"references to files outside the repository: {hits}"


def test_relative_links_resolve():
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if not re.match(r"[a-z]+://", target) and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(REPO)} -> {target}")
    assert not broken, f"broken links: {broken}"


def _command_lines() -> list[tuple[str, str]]:
    lines = []
    for doc in DOCS:
        text = re.sub(r"\\\n\s*", " ", doc.read_text()).replace("\\|", "|")
        for m in re.finditer(r"(?:^|`|\s)((?:accelerate launch [^\n`]*?-m hf_vitcurate\.cli|vitcurate) [^`\n]*)", text, re.M):
            lines.append((doc.name, re.sub(r"^accelerate launch .*?-m hf_vitcurate\.cli", "vitcurate", m.group(1))))
    return lines


def _children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_documented_command_line_names_real_commands_and_flags():
    from hf_vitcurate.cli import build_parser

    root = build_parser()
    lines = _command_lines()
    assert len(lines) > 20, "the README and docs show the CLI"
    wrong = []
    for doc, line in lines:
        parser, words = root, line.split()[1:]
        used = 0
        while used < len(words) and words[used] in _children(parser):
            parser = _children(parser)[words[used]]
            used += 1
        for alternative in (w for w in words[used:used + 1] if "|" in w and not w.startswith("-")):
            wrong += [f"{doc}: {line}: no command {c!r}" for c in alternative.split("|")
                      if c and c != "..." and c not in _children(parser)]
        known = {s for a in parser._actions for s in a.option_strings} | {"-h", "--help", "-q", "-v"}
        wrong += [f"{doc}: {line}: no flag {flag}" for flag in re.findall(r"(?<![\w-])(--[\w-]+)", line)
                  if flag not in known and used]
        if not used and words and not words[0].startswith("-") and words[0] not in ("COMMAND", "..."):
            wrong.append(f"{doc}: {line}: no command {words[0]!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", ["methods.md", "formats.md", "scaling.md", "publishing.md", "results.md", "vocabulary.md"])
def test_docs_pages_exist_and_are_linked_from_the_readme(name):
    assert (REPO / "docs" / name).is_file()
    assert f"docs/{name}" in (REPO / "README.md").read_text()
