"""Packaging: pyproject.toml's metadata, floors and package data agree with the code.

These tests read pyproject.toml from the repository and look at the *installed* package,
so run from a wheel install (as `.ci/run` does in its floor venv) they check the wheel.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata as md
import importlib.resources
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest

import hf_vitcurate

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
FLOOR = re.compile(r"^([A-Za-z0-9_.\-]+)>=([0-9][0-9A-Za-z.\-]*)$")


def norm(name: str) -> str:
    """PEP 503 normalised distribution name (``huggingface_hub`` -> ``huggingface-hub``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:3])


def declared() -> dict[str, str]:
    """Dependency name (normalised) -> floor."""
    out = {}
    for dep in PROJECT["dependencies"]:
        m = FLOOR.match(dep.replace(" ", ""))
        assert m, f"{dep!r}: every dependency states a floor as 'name>=X'"
        out[norm(m.group(1))] = m.group(2)
    return out


def test_license_is_an_spdx_expression_with_its_file():
    assert PROJECT["license"] == "Apache-2.0"  # SPDX expression (PEP 639), not a table
    assert not any(c.startswith("License ::") for c in PROJECT.get("classifiers", []))  # PEP 639: not both
    for name in PROJECT["license-files"]:
        assert "Apache License" in (REPO / name).read_text()[:200], name
    assert "LICENSE" in PROJECT["license-files"]
    # setuptools reads `license = "..."` and `license-files` from 77 on.
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77
               for r in PYPROJECT["build-system"]["requires"])


def test_every_dependency_has_a_floor_and_the_known_ones_hold():
    floors = declared()
    assert set(floors) >= {"datasets", "transformers", "torch", "accelerate", "huggingface-hub", "tokenizers", "pyarrow"}
    # datasets.List needs 4.0, datasets.Json 4.7, arrow_writer.get_parquet_column_options 5.1,
    # saving an empty dataset with image columns 5.2.
    assert version_tuple(floors["datasets"]) >= (5, 2)
    # huggingface_hub 1.x needs transformers 5.0; CLIPVisionModel.embeddings (testing.tiny) 5.6;
    # processors taking return_text_replacement_offsets (models.chat) 5.15.
    assert version_tuple(floors["transformers"]) >= (5, 15)


def test_installed_versions_meet_the_floors():
    for name, floor in declared().items():
        installed = md.version(name)
        assert version_tuple(installed) >= version_tuple(floor), f"{name} {installed} is below the floor {floor}"


def test_ci_floor_constraints_pin_every_dependency():
    spec = importlib.util.spec_from_file_location("ci_floors", REPO / ".ci" / "floors.py")
    floors_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(floors_py)
    pins = dict(p.split("==") for p in floors_py.floors(REPO / "pyproject.toml", torch="2.13.0"))
    expected = {**declared(), "torch": "2.13.0"}
    assert {norm(k): v for k, v in pins.items()} == expected


def test_every_third_party_import_is_a_declared_dependency():
    """The package (recipes included) imports only the standard library and what pyproject declares.

    The HTTP engine is why there is no `engine` extra: it uses urllib/http.client only.
    """
    allowed = set(declared())
    dists = md.packages_distributions()
    files = list((REPO / "hf_vitcurate").rglob("*.py")) + list((REPO / "dataset_scripts").rglob("*.py"))
    missing = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for top in {m.split(".")[0] for m in mods}:
                if top in sys.stdlib_module_names or top in ("hf_vitcurate", "__future__"):
                    continue
                if not {norm(d) for d in dists.get(top, [top])} & allowed:
                    missing.setdefault(top, []).append(str(path.relative_to(REPO)))
    assert not missing, f"imported but not in pyproject's dependencies: {missing}"
    engine = REPO / "hf_vitcurate" / "engine" / "http_backend.py"
    if engine.exists():
        tops = {a.name.split(".")[0] for n in ast.walk(ast.parse(engine.read_text())) if isinstance(n, ast.Import) for a in n.names}
        assert tops <= set(sys.stdlib_module_names), tops


def test_extras():
    extras = PROJECT["optional-dependencies"]
    assert any(d.startswith("pytest") for d in extras["dev"]) and "pycocoevalcap" in extras["dev"]
    assert PROJECT["scripts"]["vitcurate"] == "hf_vitcurate.cli:main"


def test_version_matches_the_metadata():
    assert PROJECT["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hf_vitcurate.__version__"}
    assert md.version("hf_vitcurate") == hf_vitcurate.__version__


def test_every_package_is_listed():
    """Packages are listed (dataset_scripts is mapped in): a new subpackage must be added there."""
    listed = set(SETUPTOOLS["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "hf_vitcurate").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert SETUPTOOLS["package-dir"] == {"hf_vitcurate.dataset_scripts": "dataset_scripts"}
    assert (REPO / "dataset_scripts" / "__init__.py").exists()
    assert not any(p.startswith(("research", "tests")) for p in listed)


def data_files() -> list[str]:
    """Every file under hf_vitcurate/ that is not Python source, relative to hf_vitcurate/."""
    root = REPO / "hf_vitcurate"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
                  and not p.name.endswith(".egg-info"))


def test_every_data_file_is_declared_as_package_data():
    globs = [(pkg.split(".")[1:] if "." in pkg else [], g)
             for pkg, patterns in SETUPTOOLS["package-data"].items() for g in patterns]
    undeclared = [f for f in data_files()
                  if not any(fnmatch.fnmatch(f, "/".join([*prefix, g])) for prefix, g in globs)]
    assert not undeclared, f"add to [tool.setuptools.package-data]: {undeclared}"


def test_the_installed_package_has_the_data_the_code_loads():
    installed = importlib.resources.files("hf_vitcurate")
    files = data_files()
    assert sum(f.startswith("cards/") for f in files) >= 6
    assert sum(f.startswith("engine/data/prompts/") for f in files) >= 6
    assert sum(f.startswith("engine/data/mminstruct_seeds/") and f.endswith(".json") for f in files) == 26
    for f in files:
        assert installed.joinpath(f).is_file(), f"{f} is missing from the installed package"
    from hf_vitcurate.metrics import mq_metric_path

    assert Path(mq_metric_path(), "mq_metric.py").is_file()


@pytest.mark.parametrize("module", ["hf_vitcurate.dataset_scripts.build_svit_core"])
def test_recipes_are_importable_from_the_package(module):
    assert importlib.util.find_spec(module) is not None
