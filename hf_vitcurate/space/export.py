"""A Space repository for the app: ``app.py``, ``requirements.txt`` and ``README.md`` with the Space front matter.

``requirements.txt`` pins this version of the package with the ``space`` extra (or names
``requirement``, a wheel URL or a ``git+https://`` spec, when the package is not on the
index the Space installs from). The README's front matter is what the Hub reads to build
the Space: ``sdk: gradio`` at the installed gradio's version, ``app_file``, the running
Python's ``python_version`` and ``suggested_hardware``.

:func:`push_space` uploads the folder as a Space repo (``repo_type="space"``) with
``huggingface_hub``'s ``upload_folder`` (three files), through the package's ``HfApi``
(:func:`hf_vitcurate.hub.upload.make_api`): the package's dataset push
(:func:`hf_vitcurate.hub.push`) handles dataset repos only.

Example:
    >>> import tempfile, yaml
    >>> folder = write_space(tempfile.mkdtemp() + "/space")
    >>> sorted(os.listdir(folder))
    ['README.md', 'app.py', 'requirements.txt']
    >>> yaml.safe_load(open(folder + "/README.md").read().split("---")[1])["sdk"]
    'gradio'
"""

from __future__ import annotations

import os
import sys

import yaml

from ..errors import ConfigError

HARDWARE = ("cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "a10g-small", "a10g-large", "a100-large")
FILES = ("app.py", "requirements.txt", "README.md")

APP = '''"""hf_vitcurate's Space: curate visual instruction data in the browser (written by `vitcurate space-export`).

Limits are set in the Space's settings as variables: VITCURATE_SPACE_MAX_UPLOAD_MB,
VITCURATE_SPACE_MAX_ROWS, VITCURATE_SPACE_MAX_MODEL_MB, VITCURATE_SPACE_TRUST_REMOTE_CODE.
"""

import os

from hf_vitcurate.space import launch

# The Hub serves the app on 0.0.0.0:7860 and says so in GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.
launch(host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
'''

BODY = """
# {title}

Curate visual instruction tuning data in the browser with `hf_vitcurate`: load a pool (ShapesWorld,
an upload of LLaVA/ShareGPT JSON with a zip of images, or a Hub dataset), validate it, tag it, select
a smaller and better subset, compare before and after, then download it as a Hub-layout dataset or
publish it with a token used for that push only.

Operator limits (Space settings, variables): `VITCURATE_SPACE_MAX_UPLOAD_MB` (default 200),
`VITCURATE_SPACE_MAX_ROWS` (default 20000), `VITCURATE_SPACE_MAX_MODEL_MB` (default 5000, MB of
weight files), `VITCURATE_SPACE_TRUST_REMOTE_CODE` (default off).

Written by `vitcurate space-export` (hf_vitcurate {version}, gradio {gradio}).
"""


def gradio_version() -> str:
    """The installed gradio's version, else the floor the ``space`` extra requires (what a Space would install)."""
    import re
    from importlib.metadata import PackageNotFoundError, requires, version

    try:
        return version("gradio")
    except PackageNotFoundError:
        for req in requires("hf_vitcurate") or []:
            if (m := re.match(r"gradio\s*>=\s*([0-9.]+)", req)):
                return m.group(1)
        raise


def front_matter(*, title: str, hardware: str, gradio_version: str) -> dict:
    """The Space's README front matter (the keys the Hub reads to build it)."""
    return {
        "title": title,
        "emoji": "🧺",
        "colorFrom": "indigo",
        "colorTo": "green",
        "sdk": "gradio",
        "sdk_version": gradio_version,
        "app_file": "app.py",
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "suggested_hardware": hardware,
        "pinned": False,
        "license": "apache-2.0",
        "short_description": "Curate visual instruction tuning data",
    }


def write_space(output: str, *, title: str = "hf_vitcurate", hardware: str = "cpu-basic",
                requirement: str | None = None, overwrite: bool = False) -> str:
    """Write the Space repository into ``output``; returns ``output``.

    ``requirement``: the line that installs the package (default ``hf_vitcurate[space]==<this
    version>``). ``overwrite=True`` replaces the three files of an existing Space folder; a
    folder holding them is otherwise refused.
    """
    from .. import __version__

    if hardware not in HARDWARE:
        raise ConfigError(f"hardware={hardware!r} is not a Space hardware; choose one of {', '.join(HARDWARE)}")
    existing = [f for f in FILES if os.path.exists(os.path.join(output, f))]
    if existing and not overwrite:
        raise ConfigError(f"{output} already holds {', '.join(existing)}; pass overwrite=True to replace them")
    sdk_version = gradio_version()
    os.makedirs(output, exist_ok=True)
    meta = yaml.safe_dump(front_matter(title=title, hardware=hardware, gradio_version=sdk_version),
                          sort_keys=False, allow_unicode=True)
    readme = f"---\n{meta}---\n" + BODY.format(title=title, version=__version__, gradio=sdk_version)
    contents = {
        "app.py": APP,
        "requirements.txt": (requirement or f"hf_vitcurate[space]=={__version__}") + "\n",
        "README.md": readme,
    }
    for name, text in contents.items():
        with open(os.path.join(output, name), "w", encoding="utf-8") as f:
            f.write(text)
    return output


def push_space(folder: str, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Upload the Space folder to the Space repo ``repo_id`` (created if needed); returns the commit id.

    ``token``: for this upload only (default: ``HF_TOKEN`` / login).
    """
    from ..hub.upload import make_api  # the package's one HfApi (user agent, token for this call only)

    api = make_api(token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=folder, allow_patterns=list(FILES),
                             commit_message="Space written by vitcurate space-export")
    return info.oid
