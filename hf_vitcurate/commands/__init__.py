"""Subcommands of ``vitcurate``; each module has ``register(subparsers)`` (see ``cli.py``)."""
