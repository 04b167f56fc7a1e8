"""The dataset card: YAML metadata (``DatasetCardData``) plus a Markdown body from a Jinja2 template.

Templates live in ``hf_vitcurate/cards/`` (one per curated output, all extending
``generic.md``); ``card=`` is a template name or a path to your own template, which may
also ``{% extends "generic.md" %}``. Rendering follows ``DatasetCard.from_template``
(the YAML is passed as ``card_data``, the card data fields as variables) with a loader,
so templates can share the generic layout; the result is parsed by
``huggingface_hub.DatasetCard``, which is what the Hub reads.

``card_data`` (all optional): ``pretty_name``, ``description``, ``license``,
``task_categories``, ``language``, ``tags``, ``size_categories``, ``citation``,
``sources`` (``{name: license}`` or ``{name: {"license", "url", "rows_in"}}``),
``plots`` (``{title: Figure | PNG bytes | PNG path}``), ``tables`` (``{title: [row
dicts]}`` or ``{title: {"columns": [...], "rows": [[...]]}}``, e.g. a DQ matrix); any
other key is passed to the template as ``extra``.

Example:
    >>> md_table(["a", "b"], [[1, "x|y"]])
    '| a | b |\\n|---|---|\\n| 1 | x\\\\|y |'
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from ..errors import ConfigError

CARDS = ("generic", "mllm_selector", "revo_lion", "svit_core", "mminstruct", "individual_select", "curated")
DEFAULT_TASKS = ["visual-question-answering", "image-text-to-text"]
# Hub tags per curated output, so the family of releases can be found together.
CARD_TAGS = {
    "generic": [],
    "mllm_selector": ["mllm-selector", "data-selection"],
    "revo_lion": ["revo-lion", "data-selection"],
    "svit_core": ["svit", "data-selection"],
    "mminstruct": ["mminstruct", "synthetic"],
    "individual_select": ["individual-select", "data-selection"],
    "curated": ["data-selection"],  # plus the tags of the methods it holds (curation.job.publish_curation)
}
KNOWN_KEYS = {
    "pretty_name", "description", "license", "task_categories", "language", "tags",
    "size_categories", "citation", "sources", "plots", "tables", "sections", "report",
}
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]


def cards_dir() -> str:
    """Folder of the packaged templates (``hf_vitcurate/cards``)."""
    return str(resources.files("hf_vitcurate") / "cards")


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows (``1500`` → ``"1K<n<10K"``)."""
    for limit, name in _SIZES:
        if n < limit:
            return name
    return "n>1B"


def md_cell(value: Any) -> str:
    text = "" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (``|`` and newlines in cells escaped)."""
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def table_markdown(table: Any) -> str:
    """A method table given as ``[row dicts]`` or ``{"columns": [...], "rows": [[...]]}`` in Markdown."""
    if isinstance(table, dict) and "columns" in table:
        return md_table(list(table["columns"]), [list(r) for r in table["rows"]])
    rows = list(table)
    headers = list(dict.fromkeys(k for r in rows for k in r))
    return md_table(headers, [[r.get(h) for h in headers] for r in rows])


def _sources(card_data: dict[str, Any], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per source: license, url, rows in (given or from convert steps) and rows out (counted)."""
    spec = card_data.get("sources") or {}
    if isinstance(spec, list):
        unnamed = [s for s in spec if not isinstance(s, dict) or "name" not in s]
        if unnamed:
            raise ConfigError(f"card_data['sources']: a list of sources needs a 'name' in each, got {unnamed[0]!r}")
        spec = {s["name"]: s for s in spec}
    spec = {name: ({"license": v} if isinstance(v, str) else dict(v or {})) for name, v in spec.items()}
    rows_out: dict[str, int] = {}
    for c in manifest["configs"].values():
        for s in c["splits"].values():
            for name, n in s["sources"].items():
                rows_out[name] = rows_out.get(name, 0) + n
    converted: dict[str, int] = {}  # rows a converter produced per source (steps are already unique)
    licenses: dict[str, str] = {}  # what a source's own card declared (load_vit notes it in the convert step)
    for step in manifest["steps"]:
        params = step.get("params") or {}
        src = params.get("source")
        if step.get("kind") == "convert" and isinstance(src, str) and step.get("rows_out") is not None:
            converted[src] = converted.get(src, 0) + step["rows_out"]
            if isinstance(params.get("license"), str):
                licenses[src] = params["license"]
    names = list(spec) + sorted(n for n in rows_out if n not in spec)
    return [
        {
            "name": n,
            "license": spec.get(n, {}).get("license", licenses.get(n)),
            "url": spec.get(n, {}).get("url"),
            "rows_in": spec.get(n, {}).get("rows_in", converted.get(n)),
            "rows_out": rows_out.get(n, 0),
        }
        for n in names
    ]


def _license(card_data: dict[str, Any], sources: list[dict[str, Any]]) -> str:
    """The card's license: given, else the sources' single license, ``other`` if they differ, else ``unknown``."""
    if card_data.get("license"):
        return card_data["license"]
    found = sorted({s["license"] for s in sources if s["license"]})
    return found[0] if len(found) == 1 else ("other" if found else "unknown")


def _steps(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    applies: dict[int, list[str]] = {}
    n_splits = 0
    for cname, c in manifest["configs"].items():
        for split, s in c["splits"].items():
            n_splits += 1
            for i in s["steps"]:
                applies.setdefault(i, []).append(f"{cname}/{split}")
    out = []
    for i, step in enumerate(manifest["steps"]):
        where = applies.get(i, [])
        out.append({
            **step,
            "index": i + 1,
            "applies_to": "all" if len(where) == n_splits else ", ".join(where),
            "configs": sorted({w.split("/")[0] for w in where}),  # for a config's own section
            "rejected_total": sum((step.get("rejected") or {}).values()),
            "params_json": json.dumps(step.get("params") or {}, indent=2, sort_keys=True, default=str),
        })
    return out


def load_snippet(repo_id: str, config: str, *, version: str | None, pushed: bool, local_dir: str | None) -> str:
    """The card's "load it" code: the Hub repo (pinned to ``version``) once pushed, else the local folder."""
    cfg = "" if config == "default" else f', "{config}"'
    if pushed or local_dir is None:
        rev = f', revision="{version}"' if version else ""
        return f'from datasets import load_dataset\n\nds = load_dataset("{repo_id}"{cfg}{rev})'
    return f"from datasets import load_dataset\n\nds = load_dataset({json.dumps(local_dir)}{cfg})"


def build_context(manifest: dict[str, Any], *, repo_id: str, version: str | None, card_data: dict[str, Any],
                  written: dict[str, dict[str, Any]], score_plots: list[dict[str, Any]],
                  method_plots: list[dict[str, str]], pushed: bool = True, local_dir: str | None = None) -> dict[str, Any]:
    """Everything a template may use (see ``cards/generic.md``).

    ``pushed=False`` (with ``local_dir``) makes the load snippet read the local folder, since
    ``repo_id`` names no repository yet.
    """
    sources = _sources(card_data, manifest)
    steps = _steps(manifest)
    configs = []
    for name, c in manifest["configs"].items():
        splits = [{"name": s, "rows": v["num_rows"], "shards": len(written[name][s].files)} for s, v in c["splits"].items()]
        configs.append({"name": name, "splits": splits, "rows": sum(s["rows"] for s in splits)})
    rejected_rows = [[s["index"], s["name"], reason, n] for s in steps for reason, n in sorted((s.get("rejected") or {}).items())]
    # Rows handed to publish as `rejected` are usually the same rows a step already counted
    # (validate's second output), so they get their own table instead of adding to the total.
    given_rows = [[reason, n] for reason, n in sorted(manifest["rejected"].items())]
    scores = [p for p in score_plots if p["path"]]
    return {
        "repo_id": repo_id,
        "version": version,
        "pushed": pushed,
        "package_version": manifest["package_version"],
        "identity_sha256": manifest.get("identity_sha256", ""),
        "title": card_data.get("pretty_name") or repo_id.split("/")[-1],
        "description": card_data.get("description", ""),
        "citation": card_data.get("citation", ""),
        "configs": configs,
        "total_rows": sum(c["rows"] for c in configs),
        "sources": sources,
        "steps": steps,
        "rejected_total": sum(r[3] for r in rejected_rows),
        "rejected_given_total": sum(r[1] for r in given_rows),
        "score_plots": scores,
        "score_images": list(dict.fromkeys((p["config"], p["column"], p["path"]) for p in scores)),
        "method_plots": method_plots,
        "method_tables": [{"title": t, "markdown": table_markdown(v)} for t, v in (card_data.get("tables") or {}).items()],
        "extra": {k: v for k, v in card_data.items() if k not in KNOWN_KEYS},
        "sections": [config_section(s, steps) for s in card_data.get("sections") or []],
        "report": card_data.get("report") or "",
        "load_snippet": load_snippet(repo_id, configs[0]["name"], version=version, pushed=pushed, local_dir=local_dir),
        "tables": {
            "configs": md_table(["config", "split", "rows", "parquet shards"],
                                [[c["name"], s["name"], s["rows"], s["shards"]] for c in configs for s in c["splits"]]),
            "sources": md_table(["source", "license", "rows in", "rows out"],
                                [[s["name"], s["license"] or "not given", s["rows_in"] if s["rows_in"] is not None else "—",
                                  s["rows_out"]] for s in sources]),
            "steps": md_table(["#", "step", "kind", "rows in", "rows out", "rejected", "model", "seed", "applies to"],
                              [[s["index"], s["name"], s["kind"], s.get("rows_in"), s.get("rows_out"), s["rejected_total"],
                                s.get("model") or "", "" if s.get("seed") is None else s["seed"], s["applies_to"]]
                               for s in steps]),
            "rejected": md_table(["#", "step", "reason", "rows"], rejected_rows) if rejected_rows else "",
            "rejected_given": md_table(["reason", "rows"], given_rows) if given_rows else "",
            "scores": md_table(["column", "config", "split", "rows", "nulls", "mean", "min", "max"],
                               [[p["column"], p["config"], p["split"], p["n"], p["nulls"], p["mean"], p["min"], p["max"]]
                                for p in score_plots]) if score_plots else "",
        },
    }


def config_section(section: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """One config's section of a multi-config card (``card_data["sections"]`` items, see ``cards/curated.md``).

    A section names its ``config``, a ``title``, optional ``text`` and ``tables``, and
    ``card``: a packaged template whose *method* block (that method's card text) is
    rendered with the steps that apply to this config, headings two levels down.
    """
    if not isinstance(section, dict) or "config" not in section:
        raise ConfigError(f"card_data['sections']: each section needs a 'config', got {section!r}")
    config = section["config"]
    own = [s for s in steps if config in s["configs"]]
    method = method_text(section["card"], steps=own) if section.get("card") else ""
    tables = [{"title": t, "markdown": table_markdown(v)} for t, v in (section.get("tables") or {}).items()]
    return {"config": config, "title": section.get("title") or config, "text": section.get("text", ""),
            "method": method, "tables": tables}


def method_text(card: str, *, steps: list[dict[str, Any]]) -> str:
    """The *method* block of a packaged card template alone, its headings two levels down (under a config's)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(cards_dir()), trim_blocks=True, lstrip_blocks=True)
    template = env.get_template(os.path.basename(template_path(card)))
    if "method" not in template.blocks:
        return ""
    text = "".join(template.blocks["method"](template.new_context({"steps": steps, "configs": []})))
    return "\n".join("##" + line if line.startswith("## ") else line for line in text.strip().splitlines())


def card_metadata(card: str, card_data: dict[str, Any], sources: list[dict[str, Any]], total_rows: int) -> DatasetCardData:
    """The YAML fields the Hub indexes: license, task categories, size, language, tags."""
    name = card if card in CARD_TAGS else "generic"
    tags = list(dict.fromkeys(["hf-vitcurate", "visual-instruction-tuning", *CARD_TAGS[name], *(card_data.get("tags") or [])]))
    return DatasetCardData(
        license=_license(card_data, sources),
        task_categories=card_data.get("task_categories") or DEFAULT_TASKS,
        language=card_data.get("language") or ["en"],
        size_categories=card_data.get("size_categories") or [size_category(total_rows)],
        pretty_name=card_data.get("pretty_name"),
        tags=tags,
    )


def template_path(card: str) -> str:
    """Resolve ``card``: a packaged name (``"mllm_selector"``) or a path to a template file."""
    if card in CARDS:
        return os.path.join(cards_dir(), f"{card}.md")
    if os.path.isfile(card):
        return card
    raise ConfigError(f"card={card!r} is neither one of {CARDS} nor a template file")


def render(card: str, data: DatasetCardData, context: dict[str, Any]) -> DatasetCard:
    """Render the template like ``DatasetCard.from_template`` (YAML as ``card_data``) and parse it."""
    import jinja2

    path = template_path(card)
    # The template's own folder first, then the packaged cards: custom templates can extend generic.md.
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(os.path.dirname(os.path.abspath(path))),
                                  jinja2.FileSystemLoader(cards_dir())])
    env = jinja2.Environment(loader=loader, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    kwargs = data.to_dict().copy()
    kwargs.update(context)  # as in from_template, template variables win over card data fields
    text = env.get_template(os.path.basename(path)).render(card_data=data.to_yaml(), **kwargs)
    return DatasetCard(text)
