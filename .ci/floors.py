"""Print pip constraints that pin every dependency of pyproject.toml to its floor.

    python .ci/floors.py > floors.txt && pip install -c floors.txt torch==2.13.0 .

Each ``name>=X`` becomes ``name==X``, so the floor check runs exactly the versions that
``pyproject.toml`` promises. torch is the exception: the check runs on the CPU build at
hand (``--torch``), since every other torch release would be a multi-GB CUDA download.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

FLOOR = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9A-Za-z.\-]*)\s*$")


def floors(pyproject: Path, torch: str) -> list[str]:
    """``name==floor`` for every dependency; raises when one has no plain ``>=`` floor."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = []
    for dep in deps:
        match = FLOOR.match(dep)
        if not match:
            raise SystemExit(f"dependency without a plain '>=' floor: {dep!r}")
        name, version = match.groups()
        pins.append(f"{name}=={torch if name == 'torch' else version}")
    return pins


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pyproject", type=Path, default=Path(__file__).resolve().parents[1] / "pyproject.toml")
    ap.add_argument("--torch", default="2.13.0")
    print("\n".join(floors(ap.parse_args().pyproject, ap.parse_args().torch)))
