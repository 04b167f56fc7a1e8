"""Runnable recipes, one per curated output; installed as ``hf_vitcurate.dataset_scripts``.

From a clone: ``python dataset_scripts/build_svit_core.py --help``; from an installed
package: ``python -m hf_vitcurate.dataset_scripts.build_svit_core --help``.
"""
