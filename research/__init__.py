"""Tiny-model research on ShapesWorld: scripts and studies outside the package (see README.md).

Run the scripts from the repository root as modules (``python -m research.bench_models gap``),
so ``import research`` finds this folder; they import the installed ``hf_vitcurate``.
"""
