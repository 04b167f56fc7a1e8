"""A Gradio Space for the package: load, validate, tag, select, download or publish, in a browser.

- :mod:`.actions`: what the page does, as plain functions over a :class:`~.actions.Session`
  (tests call them directly);
- :mod:`.views`: what the page shows of a session (the counts line, before/after);
- :mod:`.limits`: the operator's limits (upload size, rows, remote code) and safe unzipping;
- :mod:`.counting`: a Hub dataset's rows, counted before it is downloaded;
- :mod:`.app`: the Gradio layout (:func:`~.app.build_app`, :func:`~.app.launch`);
- :mod:`.export`: a Space repository folder (``app.py``, ``requirements.txt``, ``README.md``).

Needs the ``space`` extra (``pip install 'hf_vitcurate[space]'``) for the page; the actions
need only the package. ``vitcurate space`` runs it locally, ``vitcurate space-export DIR``
writes a Space repository.

Example:
    >>> from hf_vitcurate.space import Limits, actions
    >>> session = actions.load_shapesworld(n_images=4, limits=Limits())
    >>> len(session.kept) == len(session.pool) - len(session.rejected)
    True
"""

from __future__ import annotations

from .limits import Limits

__all__ = ["Limits", "build_app", "launch"]


def __getattr__(name: str):
    # The page imports gradio (the `space` extra): only when asked for.
    if name in ("build_app", "launch"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
