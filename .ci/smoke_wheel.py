"""Smoke test of an installed wheel, run by `.ci/run` in a fresh venv outside the repository.

    python .ci/smoke_wheel.py dist/hf_vitcurate-0.1.0-py3-none-any.whl [--demo]

Checks what only an installed package can get wrong: the wheel's file list (no research/,
no tests/), every module imports, the data files the code loads are there, the console
script and the recipes run (the dataset scripts, the built-in curation recipe), a tiny file
validates, and (``--demo``) ``vitcurate demo`` runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import pkgutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Data the package loads at run time (relative to the installed hf_vitcurate folder).
DATA_GLOBS = {
    "cards/*.md": 7,
    "curation/recipes/*.yaml": 1,
    "engine/data/taxonomy.yaml": 1,
    "engine/data/prompts/*.j2": 6,
    "engine/data/mminstruct_seeds/*.json": 26,
    "engine/data/mminstruct_seeds/LICENSE": 1,
    "metrics/mq_metric/mq_metric.py": 1,
}


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"smoke: FAILED: {what}")
    print(f"smoke: ok: {what}")


def run(*cmd: str, cwd: str | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"smoke: FAILED: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def wheel_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    check(tops <= {"hf_vitcurate", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"},
          f"wheel holds only hf_vitcurate and its dist-info (top-level: {sorted(tops)})")
    check(not any("/research/" in n or n.startswith("research/") or "/tests/" in n for n in names),
          "wheel holds no research/ and no tests/")
    check(any(n.startswith("hf_vitcurate/dataset_scripts/build_") for n in names),
          "wheel holds the recipes as hf_vitcurate.dataset_scripts")
    check(any(n.endswith("licenses/LICENSE") for n in names), "wheel carries the LICENSE")


def imports_and_data() -> Path:
    import hf_vitcurate

    root = Path(hf_vitcurate.__file__).parent
    check("site-packages" in str(root), f"hf_vitcurate comes from the installed wheel ({root})")
    check(hf_vitcurate.__version__ == importlib.metadata.version("hf_vitcurate"),
          f"__version__ {hf_vitcurate.__version__} equals the metadata")
    modules = [m.name for m in pkgutil.walk_packages(hf_vitcurate.__path__, "hf_vitcurate.")]
    for name in modules:
        importlib.import_module(name)
    check(len(modules) > 30, f"every module imports ({len(modules)})")
    for pattern, n in DATA_GLOBS.items():
        found = list(root.glob(pattern))
        check(len(found) >= n, f"{pattern}: {len(found)} file(s), expected at least {n}")
    return root


def commands(work: Path, demo: bool) -> None:
    version = run("vitcurate", "--version").strip()
    check(version.endswith(importlib.metadata.version("hf_vitcurate")), f"vitcurate --version: {version}")
    help_text = run(sys.executable, "-m", "hf_vitcurate.dataset_scripts.build_svit_core", "--help")
    check("usage" in help_text, "python -m hf_vitcurate.dataset_scripts.build_svit_core --help")
    rows = [
        {"id": "a", "conversations": [{"from": "human", "value": "What is 2 + 2?"}, {"from": "gpt", "value": "4."}]},
        {"id": "b", "conversations": [{"from": "human", "value": "Name a color."}, {"from": "gpt", "value": "Blue."}]},
        {"id": "c", "conversations": [{"from": "human", "value": "Broken row"}]},
    ]
    tiny = work / "tiny.jsonl"
    tiny.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run("vitcurate", "validate", str(tiny), "--output", str(work / "kept.jsonl"),
        "--rejected", str(work / "rejected.jsonl"), cwd=str(work))
    kept = (work / "kept.jsonl").read_text().splitlines()
    rejected = (work / "rejected.jsonl").read_text().splitlines()
    check((len(kept), len(rejected)) == (2, 1), f"vitcurate validate: 2 kept, 1 rejected (got {len(kept)}, {len(rejected)})")
    if demo:
        run("vitcurate", "-q", "demo", cwd=str(work))
        hub = work / "vitcurate_out" / "hub"
        check((hub / "README.md").is_file() and (hub / "recipe.yaml").is_file(),
              "vitcurate demo wrote one repo with its card and recipe.yaml")
    recipe = run("vitcurate", "curate", "--print-recipe", "shapesworld")
    check(recipe.startswith("#") and "outputs:" in recipe, "vitcurate curate --print-recipe shapesworld")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--demo", action="store_true", help="also run `vitcurate demo` (a few minutes on a CPU)")
    args = ap.parse_args()
    wheel_contents(args.wheel)
    imports_and_data()
    with tempfile.TemporaryDirectory() as tmp:
        commands(Path(tmp), args.demo)
    print("smoke: all checks passed")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    main()
