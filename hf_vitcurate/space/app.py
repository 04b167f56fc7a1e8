"""The Gradio page of the Space: the steps of a curation, top to bottom, over :mod:`.actions`.

1. choose a dataset (ShapesWorld, an upload of LLaVA/ShareGPT JSON(L) with a zip of images, or
   a Hub repo id); 2. validation and statistics; 3. stages; 4. a selection or a whole recipe;
5. before/after; 6. download the curated dataset or publish it with a token used once.

Every button runs in the queue, one job at a time (``default_concurrency_limit=1``), shows
progress, and can be stopped with *Cancel*. An error is one line on the page (the package's
own message), never a stack trace; the traceback of an unexpected one goes to the server log.

Example:
    >>> demo = build_app(Limits(max_rows=5000))        # doctest: +SKIP
    >>> demo.launch(server_name="127.0.0.1")            # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import uuid

from ..errors import ConfigError, MissingExtraError, VitCurateError, require
from . import actions, views
from .actions import SELECTIONS, STAGES, TINY, Session
from .limits import Limits

try:  # through `require`, the package's one way to an optional module (the `space` extra)
    gr = require("gradio", "space")
except MissingExtraError:  # build_app says which extra to install; the module still imports (docs, smoke tests)
    gr = None
# Every handler shows the progress bars of the package and of `datasets` (tqdm) on the page.
PROGRESS = gr.Progress(track_tqdm=True) if gr else None
logger = logging.getLogger(__name__)

INTRO = """# hf_vitcurate: curate visual instruction data
Load a pool of image-text conversations, check it, tag it, pick a smaller and better subset, and take it home
as a Hugging Face dataset. Work through the steps from top to bottom; each button shows its progress, and
**Cancel** stops the running job."""
RECIPE_HELP = ("Recipe (YAML, or the name of a built-in one: shapesworld, which trains tiny models for minutes). "
               "It runs on the loaded pool; its first output becomes the selection.")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def say(err: BaseException, *, hide: str | None = None) -> str:
    """The one line the page shows for ``err``: the package's own message, or the error's type and message.

    ``hide``: a server folder (where uploads land) left out; the user knows the file by its name.
    """
    if isinstance(err, VitCurateError):
        text = str(err)
    else:  # not the user's doing: the line here, the traceback in the server log
        logger.exception("space: unexpected error")
        text = f"{type(err).__name__}: {err}"
    return _one_line(text.replace(hide, "") if hide else text)


def _warn(session: Session) -> None:
    for message in session.messages:
        gr.Warning(_one_line(message))


class Page:
    """The handlers of one app. Each returns what its outputs show, then the message line (empty when it worked).

    On an error the outputs keep what they showed (``gr.skip()``), the message line and a
    toast say what went wrong in one line.
    """

    def __init__(self, limits: Limits):
        self.limits = limits

    def _guard(self, n_outputs: int, work, *, hide: str | None = None, after_error: tuple = ()) -> tuple:
        try:
            return (*work(), "")
        except Exception as err:
            message = say(err, hide=hide)
            gr.Warning(message, duration=None, title="Error")
            kept = tuple(gr.skip() for _ in range(n_outputs - len(after_error)))
            return (*kept, *after_error, f"**Error:** {message}")

    def _stats(self, ds) -> tuple[dict | None, str, str | None]:
        if ds is None:
            return None, "", None
        path = os.path.join(self.limits.work_dir, "charts", f"{uuid.uuid4().hex}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        report, markdown = actions.statistics(ds, chart=path)
        return report, markdown, path

    def show(self, session: Session) -> tuple:
        """The session and every view of it, in the order of :data:`VIEWS`."""
        _warn(session)
        before, before_md, before_chart = self._stats(session.tagged)
        after, after_md, after_chart = self._stats(session.selected)
        table = views.before_after(session) if session.tagged is not None else []
        return (session, views.counts(session), views.steps(session), actions.rejected_reasons(session),
                views.per_group(before), before_md, before_chart, table, views.compare(before, after),
                session.manifest or {}, after_md, after_chart)

    def load_shapes(self, n_images, seed, progress=PROGRESS):
        return self._guard(len(VIEWS), lambda: self.show(
            actions.load_shapesworld(n_images=int(n_images or 0), seed=int(seed or 0), limits=self.limits)))

    def load_upload(self, records, images, fmt, progress=PROGRESS):
        def work():
            if not records:
                raise ConfigError("upload a LLaVA or ShareGPT .json/.jsonl file first")
            return self.show(actions.load_upload(records, images or None, format=fmt, limits=self.limits))

        return self._guard(len(VIEWS), work, hide=os.path.dirname(records) + os.sep if records else None)

    def load_hub(self, repo_id, split, progress=PROGRESS):
        return self._guard(len(VIEWS), lambda: self.show(
            actions.load_hub(repo_id, split=split or "train", limits=self.limits)))

    def stage(self, session, stage, model, progress=PROGRESS):
        return self._guard(len(VIEWS), lambda: self.show(
            actions.run_stage(session, stage, model=model, limits=self.limits)))

    def select(self, session, method, unit, size, seed, progress=PROGRESS):
        size = float(size or 0)
        kwargs = {"n": int(size)} if unit == "rows" else {"fraction": size}
        return self._guard(len(VIEWS), lambda: self.show(
            actions.run_selection(session, method, seed=int(seed or 0), **kwargs)))

    def recipe(self, session, text, progress=PROGRESS):
        return self._guard(len(VIEWS), lambda: self.show(actions.run_recipe(session, text, limits=self.limits)[0]))

    def export(self, session, repo_id, progress=PROGRESS):
        return self._guard(1, lambda: (actions.export(session, repo_id=repo_id or "local/curated", limits=self.limits),))

    def publish(self, session, repo_id, token, version, private, progress=PROGRESS):
        """Publish with ``token``; the token box is emptied whatever happens (outputs: result, token box)."""
        def work():
            url = actions.publish_to_hub(session, repo_id, token=token, version=version, private=private,
                                         limits=self.limits)
            return f"Published to [{repo_id}]({url}).", ""

        return self._guard(2, work, after_error=("",))


# What every data step updates, in order (``Page.show``'s tuple).
VIEWS = ["state", "counts", "steps", "rejected", "groups", "stats_before", "chart_before", "table", "figures",
         "manifest", "stats_after", "chart_after"]


def build_app(limits: Limits | None = None):
    """The Gradio ``Blocks`` of the Space, queued one job at a time. Long because it lays out the whole page."""
    require("gradio", "space")  # MissingExtraError naming the extra when gradio is not installed
    limits = limits or Limits.from_env()
    page = Page(limits)
    with gr.Blocks(title="hf_vitcurate", analytics_enabled=False) as demo:
        state = gr.State(Session())
        gr.Markdown(INTRO)
        counts = gr.Markdown(views.counts(Session()), elem_id="counts")
        steps = gr.Markdown("", elem_id="steps")
        message = gr.Markdown("", elem_id="message")
        cancel = gr.Button("Cancel the running job", variant="stop", size="sm", elem_id="cancel")

        gr.Markdown("## 1. Choose a dataset")
        with gr.Tabs():
            with gr.Tab("ShapesWorld (synthetic)", elem_id="tab-shapes"):
                gr.Markdown("A synthetic pool of nine VIT sources drawn from one ground truth, some rows degraded on purpose.")
                with gr.Row():
                    n_images = gr.Number(40, label="Images", precision=0, minimum=1, maximum=2000, elem_id="n-images")
                    seed = gr.Number(0, label="Seed", precision=0)
                load_shapes = gr.Button("Load ShapesWorld", variant="primary", elem_id="load-shapes")
            with gr.Tab("Upload LLaVA / ShareGPT", elem_id="tab-upload"):
                gr.Markdown(f"A `.json` or `.jsonl` file and a `.zip` of the images it names (paths relative to the "
                            f"zip's root). Files up to {limits.max_upload_mb:g} MB, at most {limits.max_rows} rows.")
                with gr.Row():
                    records = gr.File(label="Conversations (.json, .jsonl)", file_types=[".json", ".jsonl"],
                                      type="filepath", elem_id="upload-records")
                    images = gr.File(label="Images (.zip)", file_types=[".zip"], type="filepath", elem_id="upload-images")
                fmt = gr.Dropdown(["auto", "llava", "sharegpt"], value="auto", label="Format")
                load_upload = gr.Button("Load the upload", variant="primary", elem_id="load-upload")
            with gr.Tab("Hub dataset", elem_id="tab-hub"):
                with gr.Row():
                    repo = gr.Textbox(label="Hub repo id", placeholder="org/name")
                    split = gr.Textbox("train", label="Split")
                load_hub = gr.Button("Load from the Hub", variant="primary", elem_id="load-hub")

        gr.Markdown("## 2. Validation and statistics")
        with gr.Row():
            rejected = gr.Dataframe(headers=["reject reason", "rows"], value=[], label="Rejected rows by reason",
                                    interactive=False, elem_id="rejected", scale=1)
            groups = gr.Dataframe(headers=["task", "rows", "QA pairs", "words per question", "words per answer"],
                                  value=[], label="Kept rows per task", interactive=False, elem_id="groups", scale=2)
            chart_before = gr.Image(label="Questions by first word", type="filepath", interactive=False, scale=1)
        with gr.Accordion("Full statistics report", open=False):
            stats_before = gr.Markdown(elem_id="stats-before")

        gr.Markdown("## 3. Run stages (each adds columns)")
        with gr.Row():
            stage = gr.Dropdown(STAGES, value="concepts", label="Stage", elem_id="stage")
            model = gr.Textbox(TINY, label="Checkpoint for mq and necessity (folder or Hub id)")
        run_stage = gr.Button("Run the stage", variant="primary", elem_id="run-stage")

        gr.Markdown("## 4. Select a subset, or run a whole recipe")
        with gr.Row():
            method = gr.Dropdown(list(SELECTIONS), value="random_subset", label="Selection", elem_id="method")
            unit = gr.Radio(["rows", "fraction"], value="fraction", label="Size as")
            size = gr.Number(0.25, label="Size", elem_id="size")
            sel_seed = gr.Number(0, label="Seed", precision=0)
        run_select = gr.Button("Select", variant="primary", elem_id="run-select")
        with gr.Accordion("Run a curate recipe instead", open=False):
            recipe = gr.Code(actions.DEFAULT_RECIPE, language="yaml", label=RECIPE_HELP, lines=6, elem_id="recipe")
            run_recipe = gr.Button("Run the recipe", elem_id="run-recipe")

        gr.Markdown("## 5. Before and after")
        with gr.Row():
            table = gr.Dataframe(headers=["task", "rows before", "rows after", "kept"], value=[], interactive=False,
                                 label="Rows per task, before and after the selection", elem_id="before-after", scale=2)
            figures = gr.Dataframe(headers=["figure", "before", "after"], value=[], label="Statistics before and after",
                                   interactive=False, elem_id="figures", scale=2)
            chart_after = gr.Image(label="Selection: questions by first word", type="filepath", interactive=False, scale=1)
        with gr.Accordion("Selection report: manifest and full statistics", open=False):
            manifest = gr.JSON(label="Selection manifest", elem_id="manifest")
            stats_after = gr.Markdown(elem_id="stats-after")

        gr.Markdown("## 6. Download or publish")
        repo_out = gr.Textbox("me/curated", label="Repo id (in the card's load snippet, and where to publish)")
        with gr.Row():
            build = gr.Button("Build the dataset (zip of the Hub layout)", elem_id="build-zip")
            download = gr.File(label="Curated dataset", interactive=False, elem_id="download")
        with gr.Row():
            token = gr.Textbox(label="Hub token (used once for this push, never kept)", type="password", elem_id="token")
            version = gr.Textbox(label="Version tag (optional)", placeholder="v1")
            private = gr.Checkbox(True, label="Private repo")
        publish = gr.Button("Publish to the Hub", elem_id="publish")
        published = gr.Markdown(elem_id="published")

        views_out = [state, counts, steps, rejected, groups, stats_before, chart_before, table, figures, manifest,
                     stats_after, chart_after, message]  # VIEWS, then the message line
        events = [
            load_shapes.click(page.load_shapes, [n_images, seed], views_out),
            load_upload.click(page.load_upload, [records, images, fmt], views_out),
            load_hub.click(page.load_hub, [repo, split], views_out),
            run_stage.click(page.stage, [state, stage, model], views_out),
            run_select.click(page.select, [state, method, unit, size, sel_seed], views_out),
            run_recipe.click(page.recipe, [state, recipe], views_out),
            build.click(page.export, [state, repo_out], [download, message]),
            publish.click(page.publish, [state, repo_out, token, version, private], [published, token, message]),
        ]
        cancel.click(None, None, None, cancels=events)
    return demo.queue(default_concurrency_limit=1)


def launch(limits: Limits | None = None, *, host: str = "127.0.0.1", port: int | None = None, block: bool = True):
    """Build and start the app; returns ``(demo, url)`` (with ``block=False`` the server runs in a thread)."""
    limits = limits or Limits.from_env()
    demo = build_app(limits)
    _app, url, _share = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                                    max_file_size=int(limits.max_upload_mb * 1024 * 1024),
                                    allowed_paths=[limits.work_dir], show_error=False,
                                    # Gradio's run history saves every call's inputs (the publish token too)
                                    # in the browser or a Hub bucket: off, so the token is never kept.
                                    run_history=False, footer_links=["api", "gradio", "settings"])
    if block:
        demo.block_thread()
    return demo, url
