"""The main job: one recipe curates a pool into every curated config of one Hub repo.

:func:`~hf_vitcurate.curation.recipe.load_recipe` reads a YAML recipe into plain
dataclasses; :func:`~hf_vitcurate.curation.run.curate` runs it. The built-in recipe is
``recipes/shapesworld.yaml`` (``vitcurate curate --print-recipe shapesworld``).
"""
