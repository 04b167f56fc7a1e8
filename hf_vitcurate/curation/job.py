"""``run_recipe``: the whole main job, what ``vitcurate curate`` and ``vitcurate demo`` run.

Sources -> :func:`~hf_vitcurate.curation.run.curate` -> the report -> one Hub-layout repo
(one config per output, one card with a section per config and the report, the recipe
as ``recipe.yaml`` beside the card) -> ``summary.json`` and the short closing table.

Example:
    >>> summary = run_recipe("shapesworld", output_dir="vitcurate_out")   # doctest: +SKIP
    >>> print(summary["table"])                                            # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

from .recipe import Recipe
from .run import Curation, as_recipe, curate, load_sources, source_counts
from .summary import report_of, summary_rows, table_markdown, table_text

RECIPE_FILE = "recipe.yaml"
# Each method's card (its text becomes the config's section) and a one-line title; keys are recipe.METHODS.
METHOD_CARDS = {
    "revo_lion": ("revo_lion", "REVO-LION Tune and Eval"),
    "svit_core": ("svit_core", "SVIT-core"),
    "mllm_selector": ("mllm_selector", "MLLM-Selector"),
    "mminstruct_style": (None, "MMInstruct style, a split per instruction type"),
    "recommended": (None, "the recommended combination"),
    "random_subset": (None, "a uniform random draw (the baseline)"),
}


def run_recipe(
    recipe: Recipe | dict | str | os.PathLike,
    *,
    output_dir: str = "vitcurate_out",
    work_dir: str | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``recipe`` into ``output_dir`` (the repo in ``publish.local_dir``, ``summary.json``); return the summary.

    ``work_dir`` (default ``output_dir/work``): models, answers and scores, in folders keyed
    by their inputs, so one ``work_dir`` can serve many runs and output folders.
    """
    recipe = as_recipe(recipe)
    say = say or (lambda _msg: None)
    t0 = time.perf_counter()
    os.makedirs(output_dir, exist_ok=True)
    pool, truth = load_sources(recipe)
    counts = source_counts(pool)
    say(f"sources: {len(pool)} rows from {len(counts)} sources ({', '.join(counts)})")
    work_dir = work_dir or os.path.join(output_dir, "work")
    curation = curate(pool, recipe, work_dir=work_dir, say=say)
    t = time.perf_counter()
    report = report_of(curation, truth=truth, seeds=recipe.report_seeds,
                       methods={name: o.method for name, o in recipe.outputs.items()})
    rows = summary_rows(report)
    curation.timings["report"] = round(time.perf_counter() - t, 1)
    say(f"report: {len(rows)} configs against {recipe.report_seeds} random draws each ({curation.timings['report']:.1f} s)")
    t = time.perf_counter()
    hub_dir = publish_curation(curation, recipe, report=report, rows=rows, output_dir=output_dir, rows_in=counts,
                               plot_path=os.path.join(work_dir, "report.png"))
    curation.timings["publish"] = round(time.perf_counter() - t, 1)
    say(f"publish: {len(curation)} configs to {hub_dir} ({curation.timings['publish']:.1f} s)")
    summary = {
        "rows_in": curation.rows_in,
        "kept": len(curation.pool),
        "rejected": len(curation.rejected),
        "configs": {c: {"rows": r["rows"], "splits": {s: len(d) for s, d in curation[c][0].items()},
                        **{k: v for k, v in r.items() if k not in ("config", "rows")},
                        "accounting": curation.accounting[c]} for c, r in zip(curation, rows)},
        "table": table_text(rows),
        "verdicts": [e["verdict"] for e in report["configs"].values() if e.get("verdict")],
        "published_to": hub_dir,
        "load_with": f"datasets.load_dataset({hub_dir!r}, {next(iter(curation))!r})",
        "rerun_with": f"vitcurate curate {os.path.join(hub_dir, RECIPE_FILE)}",
        "model": curation.model,
        "timings": curation.timings,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    with open(os.path.join(output_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump({**summary, "report": report}, f, indent=2, default=str)
    return summary


def publish_curation(curation: Curation, recipe: Recipe, *, report: dict[str, Any], rows: list[dict[str, Any]],
                     output_dir: str, rows_in: dict[str, int] | None = None, plot_path: str | None = None) -> str:
    """Every config in one Hub-layout repo, ``recipe.yaml`` beside the card; returns the repo folder.

    ``rows_in``: rows per ``source`` value of the pool before validation, for the card's sources table.
    """
    from ..hub import publish
    from ..report import report_plot, report_table

    target = recipe.publish
    hub_dir = target.local_dir if os.path.isabs(target.local_dir) else os.path.join(output_dir, target.local_dir)
    os.makedirs(hub_dir, exist_ok=True)
    # Written first, so that a push uploads it with the data (publish keeps files it does not manage).
    with open(os.path.join(hub_dir, RECIPE_FILE), "w", encoding="utf-8") as f:
        f.write(recipe.text)
    plot_path = plot_path or os.path.join(output_dir, "report.png")
    os.makedirs(os.path.dirname(os.path.abspath(plot_path)), exist_ok=True)
    plot = report_plot(report, plot_path)
    card_data = {
        "pretty_name": "ShapesWorld, curated" if all(s.kind == "shapesworld" for s in recipe.sources) else None,
        "sources": source_licenses(recipe, rows_in or {}),
        "report": f"{table_markdown(rows)}\n\n```\n{report_table(report)}\n```",
        "plots": {"How each config compares": plot, **{
            f"{c}: DQ heat map": m["dq_heatmap"] for c, (_, m) in curation.outputs.items()
            if m.get("dq_heatmap") and os.path.isfile(m["dq_heatmap"])}},
        "sections": [section(name, recipe, curation) for name in curation],
        "tags": method_tags(recipe),
    }
    card_data = {k: v for k, v in card_data.items() if v}
    return publish({c: dd for c, (dd, _) in curation.outputs.items()}, target.repo_id, local_dir=hub_dir,
                   card="curated", card_data=card_data, version=target.version, push=target.push,
                   rejected=curation.rejected)


def method_tags(recipe: Recipe) -> list[str]:
    """The Hub tags of the methods a recipe's configs use (a random draw alone adds none)."""
    from ..hub.card import CARD_TAGS

    cards = [METHOD_CARDS[o.method][0] for o in recipe.outputs.values()]
    tags = [t for c in cards if c for t in CARD_TAGS[c]]
    if any(o.method == "mminstruct_style" for o in recipe.outputs.values()):
        tags.append("mminstruct")
    return list(dict.fromkeys(tags))


def source_licenses(recipe: Recipe, rows_in: dict[str, int]) -> dict[str, dict[str, Any]]:
    """``{source: {"license", "rows_in"}}`` for the card: a file source's license from the recipe, ShapesWorld's apache-2.0."""
    named = {s.name: s.license for s in recipe.sources if s.kind == "files"}
    synthetic = "apache-2.0" if any(s.kind == "shapesworld" for s in recipe.sources) else None  # generated here
    out = {}
    for name, n in rows_in.items():
        lic = named[name] if name in named else synthetic
        out[name] = {"rows_in": n, **({"license": lic} if lic else {})}
    return out


def section(name: str, recipe: Recipe, curation: Curation) -> dict[str, Any]:
    """The card section of one config: its method's card text, the recipe's settings, where its rows went."""
    output = recipe.outputs[name]
    card, title = METHOD_CARDS[output.method]
    acc = curation.accounting[name]
    budget = f"n = {output.n}" if output.n else (f"fraction = {output.fraction}" if output.fraction else "no budget")
    text = (f"Method `{output.method}`, {budget}, seed {output.seed}; options `{json.dumps(output.options)}`. "
            f"{acc['kept']} of {acc['rows_in']} rows kept.")
    if output.method == "mminstruct_style":
        text += (" Every row carries its MMInstruct `domain` and `instruction_type` (keyword tagger, "
                 "`hf_vitcurate.stages.taxonomy`); each instruction type is a split.")
    if output.method == "recommended":
        text += " The steps, in order: " + ", ".join(s.name for s in output.steps) + "."
    tables: dict[str, Any] = {}
    removed = [{"step": k, "rows removed": v} for k, v in acc["removed"].items()]
    if removed:
        tables["Where the rows went"] = removed
    dq = curation[name][1].get("dq")
    if output.method == "revo_lion" and dq:
        # Row T: the model tuned on T; its MQ on each other dataset, and DQ_T.
        tables["DQ matrix (tuned on → evaluated on)"] = {
            "columns": ["tuned on", *dq["names"], "DQ"],
            "rows": [[n, *(round(v, 4) for v in row), round(d, 4)] for n, row, d in zip(dq["names"], dq["matrix"], dq["dq"])]}
    return {"config": name, "title": title, "card": card, "text": text, "tables": tables}
