"""What the Space does, as plain functions: load, validate, statistics, stages, selections, export, publish.

The Gradio page (:mod:`.app`) only lays these out; tests call them directly. Each takes a
:class:`Session` (what one browser tab has loaded and made) and returns a new one, so a
failed step leaves the session as it was. Errors are the package's own one-line errors
(:class:`~hf_vitcurate.errors.VitCurateError`); the page shows them as they are.

Example:
    >>> from hf_vitcurate.space.limits import Limits
    >>> s = load_shapesworld(n_images=8, limits=Limits())
    >>> s = run_stage(s, "concepts", limits=Limits())
    >>> s = run_selection(s, "random_subset", n=10)
    >>> len(s.tagged) > len(s.selected) == 10
    True
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

from datasets import Dataset, DatasetDict

from ..errors import ConfigError, MissingColumnError, RunError, first_line
from .counting import known_rows, streamed_rows
from .limits import MB, Limits, unzip_images

# The stages a user can run, in the order the page lists them.
STAGES = ["concepts", "yes_no", "leakage", "taxonomy", "mq", "necessity"]
MODEL_STAGES = ("mq", "necessity")
# Selections and what each needs: a score column, or SVIT's tags.
SELECTIONS = {
    "random_subset": (),
    "core": ("informativeness", "yes_no"),
    "diversity": ("informativeness",),
    "balance": ("yes_no",),
    "top": ("necessity",),
    "bottom": ("necessity",),
    "nbgs": ("necessity",),
}
SVIT_SELECTIONS = ("core", "diversity", "balance")
TINY = "tiny (built on this dataset, cached)"


@dataclass
class Session:
    """One tab's data: the loaded pool, its validation, the tagged rows and the latest selection."""

    name: str = ""
    pool: Dataset | None = None
    kept: Dataset | None = None
    rejected: Dataset | None = None
    tagged: Dataset | None = None
    selected: Dataset | None = None
    manifest: dict[str, Any] | None = None
    steps: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def need(self, what: str = "tagged") -> Dataset:
        """The dataset ``what`` names, or a one-line error saying to load one first."""
        ds = getattr(self, what)
        if ds is None:
            raise ConfigError("no dataset loaded yet: choose one under 'Dataset' and press Load"
                              if what != "selected" else "no selection yet: run a selection first")
        return ds

    @property
    def result(self) -> Dataset:
        """What export and publish write: the selection, or the tagged rows when none was made."""
        return self.selected if self.selected is not None else self.need("tagged")


def _said(caught: list) -> list[str]:
    """The messages of the user warnings a step raised (a ``ResourceWarning`` is not the user's business)."""
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _validated(ds: Dataset, name: str, limits: Limits) -> Session:
    from .. import validate
    from .limits import prune

    prune(limits.work_dir)  # each new dataset clears what sessions left more than a day ago
    limits.check_rows(len(ds))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept, rejected = validate(ds)
    return Session(name=name, pool=ds, kept=kept, rejected=rejected, tagged=kept,
                   messages=_said(caught))


def load_shapesworld(*, n_images: int = 40, seed: int = 0, limits: Limits) -> Session:
    """ShapesWorld, the embedded synthetic pool (``n_images`` scenes), validated."""
    from ..synthetic import pool_and_truth

    if not 1 <= n_images <= 2000:
        raise ConfigError(f"n_images must be between 1 and 2000, got {n_images}")
    pool, _truth = pool_and_truth(int(n_images), seed=int(seed))  # the truth stays out of the Space
    return _validated(pool, f"ShapesWorld ({n_images} images, seed {seed})", limits)


def load_upload(records: str, images: str | None = None, *, format: str = "auto", limits: Limits) -> Session:
    """An uploaded LLaVA/ShareGPT JSON or JSONL file, with a zip of the images it names, validated."""
    from .. import load_vit

    limits.check_upload(records)
    folder = os.path.join(limits.work_dir, "uploads", uuid.uuid4().hex)
    os.makedirs(folder)
    image_root = unzip_images(images, os.path.join(folder, "images"), limits=limits) if images else folder
    ds = load_vit(records, format=format, image_root=image_root, source=_stem(records))
    return _validated(ds, os.path.basename(records), limits)


def load_hub(repo_id: str, *, split: str = "train", limits: Limits) -> Session:
    """A Hub dataset repo (``org/name``) in any format ``load_vit`` reads, validated.

    A repo with more than ``limits.max_rows`` rows in ``split`` is refused before its data is
    downloaded: by its Parquet files' footers (a Parquet split), by the rows its card states
    (other formats), or else by streaming the split and counting up to one row past the
    limit (images not decoded). A split whose rows cannot
    be counted either way (several configs, no such split, data that does not stream) is
    refused too, with the reason: loading it would download it whole. ``datasets`` 5 never
    runs a repo's own loading script.
    """
    from .. import load_vit
    from ..errors import looks_local

    repo_id = (repo_id or "").strip()
    if not repo_id or looks_local(repo_id):
        raise ConfigError(f"{repo_id!r} is not a Hub repo id; write it as org/name")
    known = known_rows(repo_id, split, max_bytes=limits.max_upload_mb * MB)
    limits.check_rows(known or streamed_rows(repo_id, split, stop=limits.max_rows + 1))
    ds = load_vit(repo_id, split=split)
    return _validated(ds, repo_id, limits)  # checks the loaded rows too: a card may state fewer than there are


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def rejected_reasons(session: Session) -> list[list[Any]]:
    """``[[reason, rows], ...]``: rejected rows per reason, most first."""
    from collections import Counter

    if session.rejected is None:
        return []
    if not len(session.rejected):
        return [["(none: every row is valid)", 0]]
    return [[r, n] for r, n in Counter(session.rejected["reject_reason"]).most_common()]


def statistics(ds: Dataset, *, chart: str | None = None) -> tuple[dict[str, Any], str]:
    """``(report, markdown)`` of :func:`hf_vitcurate.stats.stats`; draws the first-word chart to ``chart``."""
    from ..stats import plot_first_words, stats, to_markdown

    report = stats(ds)
    if chart:
        plot_first_words(report, chart, groups=["all"])
    return report, to_markdown(report, title="Statistics")


def default_model(session: Session, *, limits: Limits) -> str:
    """The tiny checkpoint trained on this session's rows (built once per content, then reused).

    Its folder is named by the rows' fingerprint, not the dataset's name: two uploads called
    ``pool.json`` never share a model.
    """
    from ..identity import data_fingerprint
    from ..testing import train_tiny

    kept = session.need("kept")
    return train_tiny(kept, work_dir=os.path.join(limits.work_dir, "tiny", data_fingerprint(kept)[:16]))


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80] or "dataset"


def run_stage(session: Session, stage: str, *, model: str | None = None, limits: Limits) -> Session:
    """``session`` with one stage's columns added to its tagged rows (a new selection is needed after).

    ``model``: the checkpoint of ``mq`` and ``necessity`` (a folder or Hub id); ``None`` or
    :data:`TINY` builds the tiny one on this dataset.
    """
    from .. import stages

    ds = session.need("tagged")
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if stage in MODEL_STAGES:
            model = default_model(session, limits=limits) if model in (None, "", TINY) else model
            limits.check_model(model)
            work_dir = os.path.join(limits.work_dir, "runs", uuid.uuid4().hex)
            if stage == "necessity":
                out = stages.necessity(ds, model=model, work_dir=work_dir)
            else:
                answered = stages.generate(ds, model=model, work_dir=work_dir, column="answer")
                out = stages.mq(answered, answer_column="answer", model_name="model")
        else:
            out = getattr(stages, stage)(ds)
    return replace(session, tagged=out, selected=None, manifest=None, steps=session.steps + [stage],
                   messages=_said(caught))


def run_selection(session: Session, method: str, *, n: int | None = None, fraction: float | None = None,
                  seed: int = 0) -> Session:
    """``session`` with ``selected`` and ``manifest`` from one selection over the tagged rows.

    ``n`` rows or a ``fraction`` of them (one of the two). SVIT's recipes return fewer rows
    with a warning when the pool is short, rather than stop.
    """
    from .. import select

    ds = session.need("tagged")
    if method not in SELECTIONS:
        raise ConfigError(f"unknown selection {method!r}; choose one of {', '.join(SELECTIONS)}")
    missing = [c for c in SELECTIONS[method] if c not in ds.column_names]
    if missing:
        from ..errors import ADDED_BY  # what adds each column: "stages.concepts" -> the page's stage "concepts"

        stage = ADDED_BY[missing[0]][0].split(".")[-1]
        raise MissingColumnError(f"{method} needs the column {missing[0]!r}: run the stage '{stage}' first")
    if (n is None) == (fraction is None):
        raise ConfigError("give the size as rows (n) or as a fraction, one of the two")
    if method in SVIT_SELECTIONS:  # SVIT's recipes take rows only
        n = n if n is not None else max(1, round(fraction * len(ds)))
        size: dict[str, Any] = {"n": int(n), "allow_short": True}
    else:
        size = {"n": int(n)} if n is not None else {"fraction": float(fraction)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if method not in ("top", "bottom"):  # top and bottom are deterministic: no seed
            size["seed"] = int(seed)
        picked, manifest = getattr(select, method)(ds, **size)
    return replace(session, selected=picked, manifest=dict(manifest), steps=session.steps + [method],
                   messages=_said(caught))


# The recipe the page offers first: model-free, seconds on ShapesWorld (the built-in one trains tiny models).
DEFAULT_RECIPE = """stages: [concepts, yes_no, leakage]
outputs:
  svit_core: {method: svit_core, fraction: 0.25, options: {allow_short: true}}
  random: {method: random_subset, fraction: 0.25}
"""


def run_recipe(session: Session, recipe: str, *, limits: Limits) -> tuple[Session, dict[str, Any]]:
    """Run a curate recipe (YAML text, or a built-in name such as ``shapesworld``) on the loaded pool.

    Returns ``(session, rows)``: the session's tagged rows are the recipe's tagged pool, its
    selection the first output config's ``train`` split (or first split); ``rows`` maps every
    config to its rows per split. The recipe's ``sources`` and ``publish`` are not used here:
    the pool is what the page loaded, and download/publish are the page's own steps.
    """
    import re

    import yaml

    from .. import curate
    from ..curation.recipe import builtin, parse_recipe

    text = (recipe or "").strip()
    if not text:
        raise ConfigError("write a recipe (YAML) or the name of a built-in one (shapesworld)")
    if re.fullmatch(r"[\w-]+", text):  # a built-in recipe's name; never a file on the server
        text = builtin(text)
    try:
        spec = parse_recipe(yaml.safe_load(text), text=text)
    except yaml.YAMLError as err:
        raise ConfigError(f"the recipe is not valid YAML ({' '.join(str(err).split())})") from None
    limits.check_recipe(spec)  # every checkpoint it names (model.checkpoint, an output's options.model, ...)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = curate(session.need("pool"), spec, work_dir=os.path.join(limits.work_dir, "recipes", uuid.uuid4().hex))
    if not len(result):
        raise RunError("the recipe produced no output config")
    first_dd, manifest = result[next(iter(result))]
    picked = first_dd["train"] if "train" in first_dd else next(iter(first_dd.values()))
    rows = {name: {split: len(d) for split, d in result[name][0].items()} for name in result}
    # The first config's manifest, and every config's rows and accounting (rows in, kept, removed by step).
    configs = {name: {"rows": rows[name], **result.accounting.get(name, {})} for name in result}
    return replace(session, tagged=result.pool, selected=picked, manifest={**dict(manifest), "configs": configs},
                   steps=session.steps + ["recipe"], messages=_said(caught)), rows


def _check_repo_id(repo_id: str | None) -> None:
    """A one-line error for a repo id the Hub would refuse (before anything is written or sent)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    repo_id = repo_id or ""
    try:
        validate_repo_id(repo_id)
        reason = "" if repo_id.count("/") == 1 else "no owner"  # the URL returned names the owner
    except HFValidationError as err:
        reason = " ".join(str(err).split())
    if reason:
        raise ConfigError(f"{repo_id!r} is not a Hub repo id ({reason}); write it as org/name")


def export(session: Session, *, repo_id: str = "local/curated", limits: Limits) -> str:
    """Write the result in the Hub layout (Parquet shards, card, ``curation.json``) and zip it; returns the zip's path."""
    from ..hub import publish

    folder = os.path.join(limits.work_dir, "exports", uuid.uuid4().hex)
    local_dir = os.path.join(folder, _slug(repo_id.split("/")[-1]))
    publish(DatasetDict({"train": session.result}), repo_id, local_dir=local_dir, rejected=session.rejected)
    return shutil.make_archive(local_dir, "zip", root_dir=local_dir)


def _without_token(err: BaseException, *, token: str, repo_id: str) -> Exception | None:
    """A one-line error standing for ``err`` that holds no token and no chained error; ``None``: raise ``err`` as is.

    Replaced: every error of the package (its message is the user's business, its chain is
    not), every error with a Hub HTTP error in its chain, and every error that quotes the
    token anywhere in its chain (messages and notes).
    """
    from huggingface_hub.errors import HfHubHTTPError

    from ..errors import VitCurateError

    chain, todo = [], [err]
    while todo:  # err, its __cause__ and __context__, theirs, ...
        e = todo.pop()
        if e is not None and all(e is not seen for seen in chain):
            chain.append(e)
            todo += [e.__cause__, e.__context__]

    def line(e: BaseException) -> str:
        return first_line(e).replace(token, "***")

    http = next((e for e in chain if isinstance(e, HfHubHTTPError)), None)
    if isinstance(err, VitCurateError):
        try:
            return type(err)(line(err))
        except TypeError:  # a class whose constructor takes more than the message
            return RunError(line(err))
    if http is not None:  # a wrong token, no write access, a Hub outage: one line
        status = getattr(getattr(http, "response", None), "status_code", None)
        said = f"HTTP {status}: {line(http).rstrip(':')}" if status else line(http)
        return RunError(f"the Hub refused the push ({said}); check that the token may write to {repo_id}")
    if any(token in str(e) or token in repr(getattr(e, "__notes__", "")) for e in chain):
        return RunError(f"{type(err).__name__}: {line(err)}")
    return None


def publish_to_hub(session: Session, repo_id: str, *, token: str, version: str | None = None,
                   private: bool = True, limits: Limits) -> str:
    """Publish the result to the Hub repo ``repo_id`` with ``token``, used for this call only; returns the repo URL.

    The token is passed to ``publish`` and dropped: never stored, logged, written or returned.
    An error that quotes it has it replaced by ``***``, and is raised without the errors it
    came from (a Hub HTTP error holds its request, Authorization header included).
    """
    from ..hub import publish

    if not token:
        raise ConfigError("enter a Hub token with write access to publish (it is used once and not kept)")
    _check_repo_id(repo_id)
    local_dir = os.path.join(limits.work_dir, "publish", uuid.uuid4().hex)
    failure: Exception | None = None
    try:
        publish(DatasetDict({"train": session.result}), repo_id, local_dir=local_dir, push=True, token=token,
                version=version or None, private=private, rejected=session.rejected)
    except Exception as err:
        failure = _without_token(err, token=token, repo_id=repo_id)
        if failure is None:
            raise  # neither a Hub error nor the token anywhere in it: a bug, its traceback goes to the log
    if failure is not None:
        # Raised here, outside the except block, so it has no __context__ either: the Hub's HTTP
        # error holds its request (the Authorization header) and may quote the token.
        raise failure
    from huggingface_hub import constants

    return f"{constants.ENDPOINT}/datasets/{repo_id}"  # the Hub the push went to (HF_ENDPOINT)
