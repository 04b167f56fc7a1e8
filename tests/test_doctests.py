"""Every docstring example in the package runs and shows what it says (they drift otherwise)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import hf_vitcurate

MODULES = sorted(m.name for m in pkgutil.walk_packages(hf_vitcurate.__path__, "hf_vitcurate.")
                 if ".dataset_scripts" not in m.name)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
