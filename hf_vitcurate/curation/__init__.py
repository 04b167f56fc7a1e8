"""The main job: one recipe curates a pool into every curated config of one Hub repo.

:func:`~hf_vitcurate.curation.recipe.load_recipe` reads a YAML recipe into plain
dataclasses; :func:`~hf_vitcurate.curation.run.curate` runs it. The built-in recipe is
``recipes/shapesworld.yaml`` (``vitcurate curate --print-recipe shapesworld``).
"""

from .recipe import Output, Publish, Recipe, Source, Step, builtin, load_recipe, parse_recipe
from .run import Curation, curate, load_sources

__all__ = ["Curation", "Output", "Publish", "Recipe", "Source", "Step", "builtin", "curate", "load_recipe",
           "load_sources", "parse_recipe"]
