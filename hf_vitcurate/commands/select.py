"""``vitcurate select METHOD``: every selection of :mod:`hf_vitcurate.select`, one subcommand each.

Flags are the Python keyword names (``--n``, ``--fraction``, ``--seed``, ``--model``,
``--work-dir``), and every default is read from the function's signature, so the CLI and
Python cannot drift. ``vitcurate svit core|diversity|balance|mix`` and ``vitcurate revolion
select s1|s2|s3`` / ``revolion release`` are these same subcommands under the papers' names
(:func:`add_method`).

Example:
    $ vitcurate select nbgs scored/ --n 5000 --output selected/ --manifest selected.json
    $ vitcurate select random-subset pool/ --fraction 0.1 --seed 1 --output random/
    $ vitcurate select s1 scored/ --fraction 0.5 --output s1/
    $ vitcurate select core tagged/ --n 2000 --output core/
    $ vitcurate select mllm-selector pool/ --fraction 0.2 --model runs/f_pre --work-dir runs/mllm --output sel/
"""

from __future__ import annotations

import argparse

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import select
from ..errors import ConfigError, check_path
from ..select.nbgs import PRESETS
from .common import add_input_args, load_input, option, print_summary, quiet_if_small, save_output

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Method:
    """One selection as a subcommand: its function, its size flags and the options it exposes."""

    fn: Callable
    help: str
    size: str  # "either": --n or --fraction; "n": --n (required when the function has no default); "" none
    options: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # SVIT tag columns added first when missing
    extra: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, Method] = {
    "nbgs": Method(select.nbgs, "MLLM-Selector: necessity-based grouped sampling", "either",
                   ("k", "tau", "seed", "standardize", "score_column", "quotas")),
    "random-subset": Method(select.random_subset, "baseline: a uniform draw", "either", ("seed",), aliases=("random",)),
    "top": Method(select.top, "baseline: the highest scores", "either", ("score_column",)),
    "bottom": Method(select.bottom, "baseline: the lowest scores", "either", ("score_column",)),
    "s1": Method(select.s1, "REVO-LION S1: per dataset the top fraction by SQ", "",
                 ("fraction", "threshold", "by", "column")),
    "s2": Method(select.s2, "REVO-LION S2: per dataset the counts of S1 at random", "", ("fraction", "seed", "by")),
    "s3": Method(select.s3, "REVO-LION S3: per dataset SQ within mean ± lam·std", "", ("lam", "by", "column", "ddof")),
    "release": Method(select.release, "REVO-LION release: S1, then Eval (eval-size per dataset) and Tune", "",
                      ("fraction", "eval_size", "seed", "by", "column", "threshold")),
    "core": Method(select.core, "SVIT-core: diversity then balance, exactly --n rows", "n",
                   ("seed", "ratio", "per_task", "allow_short"), tags=("informativeness", "yes_no")),
    "diversity": Method(select.diversity, "SVIT recipe D: the informative half, equal draw per task", "n",
                        ("seed", "per_task", "allow_short"), tags=("informativeness",)),
    "balance": Method(select.balance, "SVIT recipe B: a random draw with yes:no <= ratio, exact size", "n",
                      ("seed", "ratio", "allow_short"), tags=("yes_no",)),
    "mix": Method(select.mix, "SVIT-mix: replace a source of a mixture by a core selection", "",
                  ("source_column",)),
    "mllm-selector": Method(select.mllm_selector, "MLLM-Selector end to end: seed model, necessity, NBGS", "either",
                            ("model", "work_dir", "n_seed", "k", "tau", "standardize", "seed", "reduction",
                             "batch_size", "recipe", "restart", "quotas", "preset", "sign", "max_length", "dtype", "cache")),
}

HELP = {
    "n": "rows to select", "fraction": "share of the pool to select (of each dataset for REVO-LION)",
    "k": "NBGS group size (None: min(50k, ceil(M/13)))", "tau": "softmax temperature (0: the top of each group)",
    "seed": "random seed", "standardize": "z-score the scores inside each group first",
    "score_column": "the score column to rank by", "threshold": "keep every tie at S1's threshold (the paper's rule)",
    "by": "column naming each row's dataset (None: `dataset` when present, else `source`)",
    "column": "the SQ column", "lam": "lambda: half-width of the band in standard deviations",
    "ddof": "delta degrees of freedom of the standard deviation", "eval_size": "REVO-LION-Eval rows per dataset",
    "ratio": "largest yes:no ratio", "per_task": "halve each task on its own (not the whole pool)",
    "allow_short": "return fewer rows with a warning instead of failing", "source_column": "the column naming sources",
    "model": "f_pre: the checkpoint the seed model is fine-tuned from (folder or Hub id)",
    "work_dir": "folder of the seed model and the resumable necessity chunks", "n_seed": "seed rows n1 (None: 15%% of m)",
    "reduction": "per-row loss reduction", "batch_size": "rows per model forward pass",
    "sign": "nll: higher loss = more necessary; loglik: Eq. 3 as printed (the negated loss)",
    "max_length": "tokens scored per row; rows with no answer token within it are set aside",
    "dtype": "weights dtype when scoring (auto: the checkpoint's)",
    "recipe": "training options of the seed model as JSON (default: the tiny preset for a tiny checkpoint, else LLaVA's)",
    "restart": "discard the resumable state in --work-dir",
    "cache": "reuse f_seed and its necessity scores from the model cache when inputs, options and code are the same "
             "(--no-cache: compute them here; None: on unless HF_VITCURATE_TINY_CACHE=0)",
    "quotas": "NBGS group quotas: proportional to group size, or equal n2/N (the paper's literal reading)",
    "preset": "named settings: paper = the paper's n1 = 100k seed rows and k = 50k (an explicit --n-seed or --k wins)",
}


def json_value(text: str):
    """A flag's JSON value (argparse names the type in its error: "invalid JSON value")."""
    return json.loads(text)


json_value.__name__ = "JSON"
TYPES = {"n": int, "fraction": float, "k": int, "n_seed": int, "by": str, "recipe": json_value}
CHOICES = {"sign": ("nll", "loglik"), "quotas": ("proportional", "equal"), "preset": tuple(PRESETS)}


def register(sub) -> None:
    p = sub.add_parser("select", help="select rows: " + ", ".join(METHODS))
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)
    for name in METHODS:
        add_method(methods, name)


def add_method(subparsers, name: str, *, as_name: str | None = None):
    """Add the subcommand of selection ``name`` (a key of :data:`METHODS`) to ``subparsers``.

    ``as_name`` gives it another name (``svit core``, ``revolion select s1``); the flags,
    defaults and behaviour are the same.
    """
    method = METHODS[name]
    aliases = list(method.aliases) if as_name is None else []
    p = subparsers.add_parser(as_name or name, aliases=aliases, help=method.help, description=method.help)
    add_input_args(p)
    if method.size:
        _size_args(p, method)
    if name == "mix":
        p.add_argument("--core", required=True, help="the core selection (folder or file) put in the mixture")
        p.add_argument("--replace-source", required=True, nargs="+", help="source(s) of the mixture to replace")
    for opt in method.options:
        _option(p, method.fn, opt)
    if method.tags:
        tag_args(p)
    p.add_argument("--output", required=True, help="where to write the selection (a folder, or .jsonl/.parquet)")
    p.add_argument("--manifest", default=None, help="where to write the manifest JSON (ids, parameters, seed)")
    p.set_defaults(func=run, selection=name)
    return p


def _option(p, fn: Callable, name: str) -> None:
    """``--name`` with the default of ``fn``'s signature; a parameter without a default is a required flag."""
    import inspect

    kwargs = {"type": TYPES[name]} if name in TYPES else {"choices": CHOICES[name]} if name in CHOICES else {}
    if name == "cache":  # None (the environment decides) or --cache/--no-cache
        kwargs = {"action": argparse.BooleanOptionalAction}
    if inspect.signature(fn).parameters[name].default is inspect.Parameter.empty:
        p.add_argument("--" + name.replace("_", "-"), dest=name, required=True, help=HELP.get(name, ""), **kwargs)
    else:
        option(p, fn, name, HELP.get(name, ""), **kwargs)


def _size_args(p, method: Method) -> None:
    _option(p, method.fn, "n")
    if method.size == "either":
        _option(p, method.fn, "fraction")


def tag_args(p) -> None:
    """``--concept-sets`` and ``--measure``: how SVIT tags rows (defaults from :func:`hf_vitcurate.stages.concepts`)."""
    from ..stages import concepts

    option(p, concepts, "concept_sets", "concept sets, YAML or JSON (None: SVIT Table 4)", type=str)
    option(p, concepts, "measure", "what informativeness counts", choices=["keywords", "concepts", "occurrences"])


def add_tags(ds, args, need: tuple[str, ...] = ("informativeness", "yes_no")):
    """Add the SVIT tag columns a recipe needs when they are missing (and say so)."""
    from ..stages import concepts, yes_no

    if "informativeness" in need and "informativeness" not in ds.column_names:
        log.info("tagging concepts (no informativeness column yet)")
        ds = concepts(ds, concept_sets=args.concept_sets, measure=args.measure)
    if "yes_no" in need and "yes_no" not in ds.column_names:
        log.info("tagging yes_no (no yes_no column yet)")
        ds = yes_no(ds)
    return ds


def strip_ids(manifest: Any) -> Any:
    """The manifest without id lists (they go to ``--manifest``), nested manifests included."""
    if isinstance(manifest, dict):
        return {k: strip_ids(v) for k, v in manifest.items() if k != "ids"}
    return manifest


def write_manifest(manifest: dict, path: str | None) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, default=str)


def run(args) -> int:
    method = METHODS[args.selection]
    ds = load_input(args)
    quiet_if_small(len(ds))
    if method.tags:
        ds = add_tags(ds, args, method.tags)
    names = list(method.options) + (["n", "fraction"] if method.size == "either" else ["n"] if method.size else [])
    kwargs = {name: getattr(args, name) for name in names}
    if method.size == "either" and (args.n is None) == (args.fraction is None):
        raise ConfigError("give exactly one of --n or --fraction")
    if args.selection == "mix":
        check_path(args.core, flag="--core")
        kwargs.update(core=load_input(args.core), replace_source=args.replace_source)
    # The selection's errors name its Python options; the CLI spells them as flags (cli.spell_flags).
    result, manifest = method.fn(ds, **kwargs)
    from datasets import DatasetDict

    if args.selection == "mllm-selector":
        from ..distributed import state

        if not state().is_main_process:  # the other ranks helped score; one writes
            return 0
    save_output(result, args.output)  # a DatasetDict too (REVO-LION's release): empty splits stay readable
    rows_out = {split: len(part) for split, part in result.items()} if isinstance(result, DatasetDict) else len(result)
    write_manifest(manifest, args.manifest)
    print_summary({"output": args.output, "manifest": args.manifest, "rows_in": len(ds), "rows_out": rows_out,
                   **strip_ids(manifest)})
    return 0
