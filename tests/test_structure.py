"""The package's shape: no import cycles, small modules and functions, one vocabulary in Python and CLI.

These read the source (``ast``) and the public API; they fail when a rule of
docs/vocabulary.md or the layout rules (no module over ~450 lines, no function over ~80
without a reason in its docstring) is broken.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hf_vitcurate"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
# A function may be longer when its docstring says why, in a sentence that starts so.
LONG_REASON = "Long because"

# Names docs/vocabulary.md replaced: none of them may be a public parameter or a CLI flag.
RETIRED = {"n_select", "budget", "p", "model_path", "base_model", "checkpoint", "out_dir"}
PUBLIC_PACKAGES = [
    "hf_vitcurate", "hf_vitcurate.select", "hf_vitcurate.stages", "hf_vitcurate.models",
    "hf_vitcurate.testing", "hf_vitcurate.synthetic", "hf_vitcurate.engine", "hf_vitcurate.hub",
    "hf_vitcurate.metrics", "hf_vitcurate.formats",
]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every hf_vitcurate module ``path`` imports, at module level or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hf_vitcurate"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("hf_vitcurate"):
                target = node.module
            else:
                continue
            for alias in node.names:  # `from . import provenance` imports a module
                sub = f"{target}.{alias.name}"
                found.add(sub if (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists()
                          or (PACKAGE.parent / Path(*sub.split(".")) / "__init__.py").exists() else target)
    return found


def _unit(module: str) -> str:
    """The first-level part of the package a module belongs to (``hf_vitcurate.models.chat`` -> ``models``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycle_between_parts_of_the_package():
    graph: dict[str, set[str]] = {}
    for path in _modules():
        src = _unit(_module_name(path))
        for target in _imports(path):
            dst = _unit(target)
            if dst != src and dst != "__init__":  # the root only re-exports lazily
                graph.setdefault(src, set()).add(dst)
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif len(stack) < 12:
                visit(nxt, stack + [nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, f"import cycles between parts of the package: {sorted(set(cycles))[:5]}"


def test_models_do_not_import_synthetic_or_testing():
    for path in (PACKAGE / "models").glob("*.py"):
        bad = {t for t in _imports(path) if _unit(t) in ("synthetic", "testing")}
        assert not bad, f"{path.name} imports {bad}"


def test_modules_are_small():
    big = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_long_functions_say_why():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and LONG_REASON not in (ast.get_docstring(node) or ""):
                    long.append(f"{path.relative_to(PACKAGE)}:{node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines without '{LONG_REASON} ...' in the docstring: {long}"


def _public_callables():
    for pkg in PUBLIC_PACKAGES:
        module = importlib.import_module(pkg)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{pkg}.{name}", name, obj


def test_no_public_name_shadows_the_standard_library():
    stdlib = set(sys.stdlib_module_names)
    shadowing = [full for full, name, _ in _public_callables() if name in stdlib]
    assert not shadowing, f"public names that shadow the standard library: {shadowing}"


def test_public_parameters_use_the_vocabulary():
    wrong = []
    for full, _, obj in _public_callables():
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        wrong += [f"{full}({p})" for p in params if p in RETIRED]
    assert not wrong, f"retired names (docs/vocabulary.md) in public signatures: {wrong}"


@pytest.mark.parametrize("pkg", ["hf_vitcurate.select", "hf_vitcurate.stages"])
def test_stages_and_selections_take_data_first_then_keywords(pkg):
    module = importlib.import_module(pkg)
    wrong = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not inspect.isfunction(obj):
            continue
        params = list(inspect.signature(obj).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) > 1:
            wrong.append(f"{name}({', '.join(p.name for p in positional)}, ...)")
    assert not wrong, f"options must be keyword-only after the data: {wrong}"


def _subparsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases share one parser
                    seen.add(id(sub))
                    yield from _subparsers(sub, path + (name,))


def test_cli_flags_use_the_vocabulary():
    from hf_vitcurate.cli import build_parser

    wrong = []
    for path, parser in _subparsers(build_parser()):
        for action in parser._actions:
            flags = [s for s in action.option_strings if s.startswith("--")]
            for flag in flags:
                if flag[2:].replace("-", "_") in RETIRED:
                    wrong.append(f"vitcurate {' '.join(path)} {flag}")
                if flag[2:].replace("-", "_") != action.dest and not flag.startswith("--no-") and action.dest != "help":
                    wrong.append(f"vitcurate {' '.join(path)} {flag} is stored as {action.dest!r}")
    assert not wrong, f"CLI flags off the vocabulary: {wrong}"


def test_every_command_ends_with_a_summary():
    """Every leaf command's module prints its closing summary through commands.common.print_summary."""
    commands = PACKAGE / "commands"
    silent = [p.name for p in commands.glob("*.py")
              if p.name not in ("__init__.py", "common.py") and "print_summary(" not in p.read_text()]
    assert not silent, f"commands without a closing summary: {silent}"
