"""The checkpoints a Space is asked to load: where a recipe names them, and what the Hub says of them.

:meth:`hf_vitcurate.space.Limits.check_model` and ``check_recipe`` use these before a job
starts: :func:`recipe_checkpoints` finds every checkpoint a recipe names (and
:func:`check_no_server_files` refuses its other options that name a file of the server),
:func:`hub_config` fetches a Hub model's ``config.json`` alone, and :func:`weight_bytes` sizes
its weights from the Hub's file listing (:func:`hub_weight_bytes`) or a folder's files.

Example:
    >>> weight_bytes({"model-00001-of-00002.safetensors": 4, "model-00002-of-00002.safetensors": 4, "config.json": 1})
    8
"""

from __future__ import annotations

import os

from ..errors import ConfigError, NotFoundError, RunError, first_line

# Weight files in the order ``from_pretrained`` prefers them: it loads one kind, at the top level.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")

# Option keys that name a checkpoint to load (the package's word is ``model``; a recipe's
# ``model`` section says ``checkpoint``; the rest are the names other libraries use).
MODEL_KEYS = ("model", "checkpoint", "model_name_or_path", "pretrained_model_name_or_path", "base_model", "f_pre",
              "seed_model")


def recipe_checkpoints(recipe) -> list[tuple[str, str]]:
    """``[(key path, checkpoint), ...]``: every checkpoint a parsed recipe names, ``tiny`` (built here) left out.

    It looks wherever a recipe holds options that reach a function: the ``model`` section, each
    stage's options, each output's options (nested ones too, e.g. ``train``) and its steps'.
    ``sources`` are not looked at: the Space never loads a recipe's sources.

    >>> from hf_vitcurate.curation.recipe import parse_recipe
    >>> recipe_checkpoints(parse_recipe({"model": {"checkpoint": "org/base"}, "outputs": {
    ...     "pick": {"method": "mllm_selector", "n": 5, "options": {"train": {"model": "org/other"}}}}}))
    [('model.checkpoint', 'org/base'), ('outputs.pick.options.train.model', 'org/other')]
    """
    found: list[tuple[str, str]] = []
    for where, key, item in _recipe_options(recipe):
        if key in MODEL_KEYS:
            if not isinstance(item, str | os.PathLike) or not os.fspath(item).strip():
                raise ConfigError(f"{where}: expected a checkpoint (a folder or Hub id), got {item!r}")
            if os.fspath(item) != "tiny":
                found.append((where, os.fspath(item)))
    return found


def check_no_server_files(recipe) -> None:
    """Refuse a recipe option that names a file or folder of the server (a stage's ``concept_sets``,
    ``taxonomy``, ...): a visitor's recipe must not make the Space read its files.

    Checkpoints are checked by :meth:`Limits.check_model` instead. ``ConfigError`` naming the key path.

    >>> from hf_vitcurate.curation.recipe import parse_recipe
    >>> check_no_server_files(parse_recipe({"stages": [{"taxonomy": {"taxonomy": "/etc/passwd"}}],
    ...                                     "outputs": {"all": {"method": "random_subset", "fraction": 1.0}}}))
    Traceback (most recent call last):
    ...
    hf_vitcurate.errors.ConfigError: stages[0].taxonomy.taxonomy: names a file of the server (/etc/passwd); this Space reads no files named in a recipe
    """
    for where, key, item in _recipe_options(recipe):
        if key in MODEL_KEYS or where == "model.checkpoint" or not isinstance(item, str | os.PathLike):
            continue
        text = os.fspath(item)
        if os.path.isabs(os.path.expanduser(text)) or ".." in text.replace("\\", "/").split("/") or os.path.exists(text):
            raise ConfigError(f"{where}: names a file of the server ({text}); this Space reads no files named in a recipe")


def _recipe_options(recipe) -> list[tuple[str, str, object]]:
    """``[(key path, key, value), ...]`` for every leaf of the options a recipe passes to functions."""
    leaves: list[tuple[str, str, object]] = []

    def walk(value, where: str, key: str) -> None:
        if isinstance(value, dict):
            for k, item in value.items():
                walk(item, f"{where}.{k}", str(k))
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]", key)
        else:
            leaves.append((where, key, value))

    walk(recipe.model, "model", "model")
    for i, step in enumerate(recipe.stages):
        walk(step.options, f"stages[{i}].{step.name}", step.name)
    for name, output in recipe.outputs.items():
        walk(output.options, f"outputs.{name}.options", "options")
        for i, step in enumerate(output.steps):
            walk(step.options, f"outputs.{name}.steps[{i}].{step.name}", step.name)
    return leaves


def hub_config(model: str) -> str:
    """The local path of the Hub model ``model``'s ``config.json``, fetched alone; one-line errors naming the model.

    Online it asks the Hub (the Hub cache keeps the file for loading); offline
    (``HF_HUB_OFFLINE``) it reads the cache.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, HFValidationError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError)

    try:
        return hf_hub_download(model, "config.json")
    except HFValidationError:
        raise NotFoundError(f"no checkpoint folder or Hub model {model}; give a folder or a Hub id (org/name)") from None
    except GatedRepoError:  # before its base class, RepositoryNotFoundError
        raise ConfigError(f"the Hub model {model} is gated; accept its terms on the Hub and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise NotFoundError(f"no checkpoint folder or Hub model {model} (a private model needs HF_TOKEN)") from None
    except LocalEntryNotFoundError:  # before its base class, EntryNotFoundError; the Hub's 5xx end here too, after retries
        raise NotFoundError(f"the Hub model {model} could not be checked: the Hub is offline, unreachable or failing, "
                            "and its config.json is not in the local cache; try again later") from None
    except EntryNotFoundError:
        raise NotFoundError(f"the Hub model {model} has no config.json; it is not a transformers checkpoint") from None
    except HfHubHTTPError as err:
        line = first_line(err)
        raise RunError(f"the Hub refused config.json of the model {model} ({line}); check HF_TOKEN, or try again later") from None


def weight_bytes(sizes: dict[str, int]) -> int:
    """Bytes a checkpoint's weights take, from ``{path in the checkpoint: size}``.

    What ``from_pretrained`` reads: the files at the top level (a training run's
    ``checkpoint-*/optimizer.pt`` or a repo's ``original/`` weights are not loaded), of the first
    kind in :data:`WEIGHT_SUFFIXES` present (a repo with both ``.safetensors`` and ``.bin`` loads
    the former only).

    >>> weight_bytes({"model.safetensors": 5, "pytorch_model.bin": 5, "ckpt-1/optimizer.pt": 9, "README.md": 1})
    5
    """
    top = {path: size for path, size in sizes.items() if "/" not in path}
    for suffix in WEIGHT_SUFFIXES:
        found = [size for path, size in top.items() if path.endswith(suffix)]
        if found:
            return sum(found)
    return 0


def folder_weight_bytes(folder: str) -> int:
    """:func:`weight_bytes` of the checkpoint folder ``folder``."""
    return weight_bytes({entry.name: entry.stat().st_size for entry in os.scandir(folder) if entry.is_file()})


def hub_weight_bytes(model: str, snapshot: str) -> int:
    """Bytes of the Hub model ``model``'s weight files, from the Hub's file listing (no download).

    Offline (``HF_HUB_OFFLINE``), the weight files already in the local cache (``snapshot``,
    the folder of its cached ``config.json``): loading cannot fetch more. One-line error naming
    the model where the Hub does not answer.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        return folder_weight_bytes(snapshot)
    try:
        info = HfApi().model_info(model, files_metadata=True)
    except (HfHubHTTPError, OSError) as err:  # OSError: the connection failed
        line = first_line(err)
        raise RunError(f"the Hub did not list the files of the model {model} ({line}); try again later") from None
    return weight_bytes({f.rfilename: f.size or 0 for f in info.siblings or []})
