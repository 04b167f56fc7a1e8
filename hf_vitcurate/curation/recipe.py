"""A curation recipe: YAML in, plain dataclasses out, every mistake one line naming its key path.

A recipe names the ``sources`` (ShapesWorld, or files and Hub ids read by ``load_vit``),
the tagging ``stages`` run once on the validated pool, the ``model`` the model-based
outputs start from, the ``outputs`` (one Hub config each: method, options, budget, seed),
where to ``publish`` and the ``report``'s random seeds. The built-in recipe,
``recipes/shapesworld.yaml``, documents every key.

Example:
    >>> r = load_recipe("shapesworld")
    >>> sorted(r.outputs)[:2], r.report_seeds
    (['mllm_selector', 'mminstruct_style'], 5)
    >>> parse_recipe({"outputs": {"x": {"method": "svit_core", "fraction": "half"}}})
    Traceback (most recent call last):
    ...
    hf_vitcurate.errors.ConfigError: outputs.x.fraction: expected a number, got 'half'
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ..errors import ConfigError, NotFoundError

# Dataset -> Dataset tagging stages a recipe may run on the pool (functions of hf_vitcurate.stages).
STAGES = ("concepts", "yes_no", "leakage", "qa_count", "taxonomy")
# One name per method, the config name the built-in recipe publishes it under (report.PATHOLOGIES uses them too).
METHODS = ("revo_lion", "svit_core", "mminstruct_style", "mllm_selector", "recommended", "random_subset")
# Earlier names, still read (with a FutureWarning naming the new one) so that published recipe.yaml files rerun.
FORMER_METHODS = {"release": "revo_lion", "core": "svit_core", "taxonomy": "mminstruct_style", "combination": "recommended"}
STEPS = ("cleanup", "near_duplicates", "quality", "diversity", "balance")
# Methods that need a budget (n or fraction); revo_lion's fraction is S1's P, mminstruct_style keeps every row by default.
BUDGETED = ("svit_core", "mllm_selector", "recommended", "random_subset")
# Methods that train or run a model (they need `model`).
MODEL_METHODS = ("revo_lion", "mllm_selector")
SOURCE_KINDS = ("shapesworld", "files")
TOP_KEYS = ("sources", "stages", "model", "outputs", "publish", "report")


@dataclass
class Source:
    """One source of rows: ShapesWorld (``n_images``, ``seed``, ``options``) or a file/Hub id (``path``, ...)."""

    name: str
    kind: str = "shapesworld"
    n_images: int = 160
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    format: str = "auto"
    image_root: str | None = None
    license: str | None = None


@dataclass
class Step:
    """One step of a ``recommended`` output: a name of :data:`STEPS` and its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Output:
    """One curated config: ``method`` with ``options``, a budget (``n`` or ``fraction``), a ``seed``."""

    name: str
    method: str
    n: int | None = None
    fraction: float | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    def budget(self, rows: int) -> int | None:
        """Rows to keep out of ``rows`` (``None``: no budget)."""
        if self.n is not None:
            return min(self.n, rows)
        if self.fraction is not None:
            return max(1, int(round(self.fraction * rows)))
        return None


@dataclass
class Publish:
    """Where the one repo goes: ``repo_id``, ``local_dir`` (relative: under the output folder), ``push``, ``version``."""

    repo_id: str = "local/curated"
    local_dir: str = "hub"
    push: bool = False
    version: str | None = None


@dataclass
class Recipe:
    """A parsed recipe; ``text`` is the YAML published beside the card."""

    sources: list[Source]
    stages: list[Step]
    outputs: dict[str, Output]
    publish: Publish = field(default_factory=Publish)
    model: dict[str, Any] = field(default_factory=lambda: {"checkpoint": "tiny"})  # as parse_recipe; train_tiny's defaults
    report_seeds: int = 5
    text: str = ""

    def needs_model(self) -> bool:
        return any(o.method in MODEL_METHODS for o in self.outputs.values())


def builtin(name: str) -> str:
    """The YAML text of a packaged recipe (``"shapesworld"``)."""
    path = resources.files(__package__) / "recipes" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.name[:-5] for p in (resources.files(__package__) / "recipes").iterdir() if p.name.endswith(".yaml"))
        raise NotFoundError(f"no built-in recipe {name!r}; known: {known}")
    return path.read_text(encoding="utf-8")


def load_recipe(path_or_name: str | os.PathLike) -> Recipe:
    """Read a recipe file, or a built-in one by name (``"shapesworld"``), and validate it."""
    path = os.fspath(path_or_name)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    elif os.sep not in path and not path.endswith((".yaml", ".yml")):
        try:
            text = builtin(path)
        except NotFoundError as err:  # a bare name may be a file the user mistyped, too
            raise NotFoundError(f"no recipe file {path!r} and {err}") from None
    else:
        raise NotFoundError(f"no such recipe file: {path}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from err
    return parse_recipe(data, text=text)


def parse_recipe(data: Any, *, text: str | None = None) -> Recipe:
    """A :class:`Recipe` from the YAML's mapping (missing sections take the built-in defaults)."""
    data = _mapping(data if data is not None else {}, "recipe")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown recipe key; expected one of {list(TOP_KEYS)}")
    sources = [_source(name, spec) for name, spec in _mapping(data.get("sources", {"shapesworld": {}}), "sources").items()]
    if not sources:
        raise ConfigError("sources: empty; name at least one source (see --print-recipe shapesworld)")
    stages = [_step(s, f"stages[{i}]", STAGES) for i, s in enumerate(_list(data.get("stages", []), "stages"))]
    outputs = {str(k): _output(str(k), v) for k, v in _mapping(data.get("outputs", {}), "outputs").items()}
    if not outputs:
        raise ConfigError("outputs: empty; name at least one output config (see --print-recipe shapesworld)")
    publish = _publish(_mapping(data.get("publish") or {}, "publish"))
    model = dict(_mapping(data.get("model") or {"checkpoint": "tiny"}, "model"))
    model.setdefault("checkpoint", "tiny")
    report = _mapping(data.get("report") or {}, "report")
    seeds = _int(report.get("seeds", 5), "report.seeds")
    if seeds < 1:
        raise ConfigError(f"report.seeds: expected at least 1, got {seeds}")
    recipe = Recipe(sources=sources, stages=stages, outputs=outputs, publish=publish, model=model, report_seeds=seeds,
                    text=text if text is not None else yaml.safe_dump(data, sort_keys=False))
    _check_quality(recipe)
    return recipe


def _source(name: Any, spec: Any) -> Source:
    where = f"sources.{name}"
    spec = dict(_mapping(spec or {}, where))
    kind = spec.pop("kind", "files" if "path" in spec else "shapesworld")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}.kind: expected one of {list(SOURCE_KINDS)}, got {kind!r}")
    allowed = {"shapesworld": ("n_images", "seed", "options"), "files": ("path", "format", "image_root", "license")}[kind]
    _known(spec, allowed, where)
    if kind == "files" and not isinstance(spec.get("path"), str):
        raise ConfigError(f"{where}.path: a file, folder or Hub id is required for a files source")
    out = Source(name=str(name), kind=kind, **{k: v for k, v in spec.items() if k not in ("n_images", "seed", "options")})
    if kind == "shapesworld":
        out.n_images = _int(spec.get("n_images", 160), f"{where}.n_images")
        out.seed = _int(spec.get("seed", 0), f"{where}.seed")
        out.options = dict(_mapping(spec.get("options") or {}, f"{where}.options"))
        if out.n_images < 1:
            raise ConfigError(f"{where}.n_images: expected at least 1, got {out.n_images}")
    return out


# Options every method is given by the recipe itself: in an output's options they would clash.
SET_BY_RECIPE = {"model": "model.checkpoint", "work_dir": "the run's work folder", "seed": "outputs.<name>.seed",
                 "n": "outputs.<name>.n", "fraction": "outputs.<name>.fraction", "recipe": "options.train"}


def _output(name: str, spec: Any) -> Output:
    where = f"outputs.{name}"
    spec = _mapping(spec or {}, where)
    _known(spec, ("method", "n", "fraction", "seed", "options", "steps"), where)
    method = spec.get("method")
    if method in FORMER_METHODS:
        warnings.warn(f"{where}.method: {method!r} is now {FORMER_METHODS[method]!r}; write that instead",
                      FutureWarning, stacklevel=2)
        method = FORMER_METHODS[method]
    if method not in METHODS:
        raise ConfigError(f"{where}.method: expected one of {list(METHODS)}, got {method!r}")
    out = Output(name=name, method=method, seed=_int(spec.get("seed", 0), f"{where}.seed"),
                 options=dict(_mapping(spec.get("options") or {}, f"{where}.options")))
    for key in sorted(set(out.options) & set(SET_BY_RECIPE)):
        raise ConfigError(f"{where}.options.{key}: set by the recipe ({SET_BY_RECIPE[key]}), not in an output's options")
    if spec.get("n") is not None and spec.get("fraction") is not None:
        raise ConfigError(f"{where}: give n or fraction, not both")
    if spec.get("n") is not None:
        out.n = _int(spec["n"], f"{where}.n")
        if out.n < 1:
            raise ConfigError(f"{where}.n: expected at least 1, got {out.n}")
    if spec.get("fraction") is not None:
        out.fraction = _number(spec["fraction"], f"{where}.fraction")
        if not 0 < out.fraction <= 1:
            raise ConfigError(f"{where}.fraction: expected a number in (0, 1], got {out.fraction}")
    if method in BUDGETED and out.n is None and out.fraction is None:
        raise ConfigError(f"{where}: method {method} needs a budget, n or fraction")
    steps = _list(spec.get("steps") or [], f"{where}.steps")
    if method == "recommended" and not steps:
        raise ConfigError(f"{where}.steps: method recommended needs steps, some of {list(STEPS)}")
    if steps and method != "recommended":
        raise ConfigError(f"{where}.steps: only method recommended has steps (method is {method})")
    out.steps = [_step(s, f"{where}.steps[{i}]", STEPS) for i, s in enumerate(steps)]
    return out


def _publish(spec: dict) -> Publish:
    _known(spec, ("repo_id", "local_dir", "push", "version"), "publish")
    out = Publish()
    for key in ("repo_id", "local_dir"):
        if key in spec:
            if not isinstance(spec[key], str) or not spec[key]:
                raise ConfigError(f"publish.{key}: expected a non-empty string, got {spec[key]!r}")
            setattr(out, key, spec[key])
    if not isinstance(spec.get("push", False), bool):
        raise ConfigError(f"publish.push: expected true or false, got {spec['push']!r}")
    out.push = spec.get("push", False)
    if spec.get("version") is not None:
        out.version = str(spec["version"])
    return out


def _check_quality(recipe: Recipe) -> None:
    """A ``quality`` step on ``sq`` reads REVO-LION's scores: the recipe must have a ``revo_lion`` output."""
    has_sq = any(o.method == "revo_lion" for o in recipe.outputs.values())
    for o in recipe.outputs.values():
        for i, s in enumerate(o.steps):
            if s.name == "quality" and s.options.get("column", "sq") == "sq" and not has_sq:
                raise ConfigError(f"outputs.{o.name}.steps[{i}].quality: column sq needs a revo_lion output "
                                  "in the recipe; add one or set column to a score the pool has")


def _step(item: Any, where: str, allowed: tuple[str, ...]) -> Step:
    if isinstance(item, str):
        name, options = item, {}
    elif isinstance(item, dict) and len(item) == 1:
        name, options = next(iter(item.items()))
        options = dict(_mapping(options or {}, f"{where}.{name}"))
    else:
        raise ConfigError(f"{where}: expected a name or {{name: options}}, got {item!r}")
    if name not in allowed:
        raise ConfigError(f"{where}: unknown step {name!r}; expected one of {list(allowed)}")
    return Step(name=name, options=options)


def _known(spec: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; expected one of {list(allowed)}")


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    return value


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    return value
