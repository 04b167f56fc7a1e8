"""``vitcurate space-export DIR``: write a Space repository for the app, and push it with ``--push``.

``DIR`` gets ``app.py``, ``requirements.txt`` (this version of the package, ``space`` extra)
and ``README.md`` with the Space front matter (see :mod:`hf_vitcurate.space.export`).
``--push --repo-id ORG/NAME`` uploads it as a Space repo; the token comes from ``HF_TOKEN``
or ``hf auth login``.

Example:
    $ vitcurate space-export my_space --hardware cpu-upgrade
    $ vitcurate space-export my_space --overwrite --push --repo-id me/vitcurate
"""

from __future__ import annotations

import argparse
import os

from ..errors import ConfigError
from .common import option, print_summary


def register(sub) -> None:
    from ..space.export import HARDWARE, write_space

    p = sub.add_parser("space-export", help="write a Hugging Face Space repository for the app (--push uploads it)")
    p.add_argument("output", metavar="DIR", help="folder to write the Space into")
    option(p, write_space, "title", "the Space's title")
    option(p, write_space, "hardware", "suggested hardware", choices=list(HARDWARE))
    p.add_argument("--requirement", default=None,
                   help="the requirements.txt line that installs the package (default: hf_vitcurate[space]==<this version>)")
    option(p, write_space, "overwrite", "replace the files of an existing Space folder")
    p.add_argument("--push", action="store_true", help="upload the folder as a Space repo (needs --repo-id and a token)")
    p.add_argument("--repo-id", dest="repo_id", default=None, help="the Space repo, ORG/NAME (with --push)")
    p.add_argument("--private", action=argparse.BooleanOptionalAction, default=True,
                   help="visibility when the Space is created (default: private)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..space.export import FILES, gradio_version, push_space, write_space

    if args.push and not args.repo_id:
        raise ConfigError("--push needs --repo-id ORG/NAME (the Space repo to upload to)")
    folder = write_space(args.output, title=args.title, hardware=args.hardware, requirement=args.requirement,
                         overwrite=args.overwrite)
    commit = push_space(folder, args.repo_id, private=args.private) if args.push else None
    with open(os.path.join(folder, "requirements.txt"), encoding="utf-8") as f:
        requirement = f.read().strip()
    print_summary({"output": folder, "files": list(FILES), "sdk_version": gradio_version(), "requirement": requirement,
                   "hardware": args.hardware, "pushed_to": f"spaces/{args.repo_id}" if commit else None, "commit": commit})
    return 0
