"""MMInstruct tags for rows of any source: ``domain`` and ``instruction_type`` (MMInstruct, arXiv:2407.15838; docs/methods.md).

Instruction type, by rules on each QA pair (first that applies):

1. the answer starts with yes/no → ``judgement``;
2. the question lists lettered options (``A.``..``D.``, one a line or inline) → ``multiple_choice``;
3. the answer has at most ``short_words`` (5) words and no sentence break → ``short_vqa``;
4. the question asks to describe the whole image and the answer has at least
   ``caption_words`` (60) words → ``caption`` (MMInstruct's captions average 200 words,
   LLaVA's detailed descriptions about 100); otherwise ``long_vqa``.

A multi-turn row takes its pairs' type when they agree, else ``long_vqa``. With
``use_task=True`` a ``task`` that already names a type (``judgement``, ``caption``, ...) is kept.

Domain, by a keyword model (the taxonomy's ``keywords`` per domain, in
``engine/data/taxonomy.yaml``): the human turns, with image placeholders, option lines and
indicator suffixes removed, are matched case-insensitively on word boundaries (optional
plural ``s``); each distinct phrase found scores its number of words for every domain
listing it; the highest score wins; a tie goes to a specific domain over a broad one
(``generic: true`` in the YAML: scene, localization, attribute, description, the two
reasoning domains), then to the domain whose phrase comes first in the question. No phrase found → ``fallback`` (``image_description``) and ``domain_score``
0. Rows of 3 or more QA pairs with long answers (mean ≥ 15 words) are
``multi_round_long_vqa``. Accuracy on rows with known domains is measured in
benchmarks/RESULTS.md ("MMInstruct"): the published seed questions and ShapesWorld rows.

Columns added: ``domain``, ``instruction_type``, ``domain_score`` (int32). Existing
non-empty ``domain``/``instruction_type`` values are kept unless ``replace_columns=True``.

Example:
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"id": ["a", "b"], "task": ["vqa", "vqa"], "conversations": [
    ...     [{"from": "human", "value": "<image>\\nIs the cup on the left of the plate?"}, {"from": "gpt", "value": "Yes"}],
    ...     [{"from": "human", "value": "Which brand made this car?\\nA. Ford\\nB. Fiat\\nC. Kia\\nD. BMW"}, {"from": "gpt", "value": "B"}]]})
    >>> out = taxonomy(ds)
    >>> list(out["domain"][:]), list(out["instruction_type"][:])
    (['spatial_relationship', 'brand_recognition'], ['judgement', 'multiple_choice'])
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import Dataset, Value

from .. import provenance
from ..columns import list_column
from ..errors import ConfigError
from ..schema import IMAGE_TOKEN
from ._arrow import map_arrow

_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
_OPTION_LINE = re.compile(r"^\s*\(?[A-D][.)]\s+\S", re.MULTILINE)
_INLINE_OPTIONS = re.compile(r"(?:^|\s)\(?A[.)]\s+\S.*?\s\(?B[.)]\s+\S", re.DOTALL)
_SENTENCE_BREAK = re.compile(r"[.!?;]\s+\S")
_DESCRIBE_IMAGE = re.compile(
    r"\b(describe|description of|caption|narrate|portray|depict|explain)\b.{0,40}\b(image|picture|photo|photograph|scene|visual)\b"
    r"|\b(image|picture|photo)\b.{0,20}\bin detail\b",
    re.IGNORECASE | re.DOTALL,
)


class KeywordModel:
    """Domain from keywords (see module doc); built once from a taxonomy.

    Example:
        >>> KeywordModel().predict("What is the brand of the shoes in this picture?")
        ('brand_recognition', 1)
    """

    def __init__(self, taxonomy=None, fallback: str = "image_description"):
        from ..formats.mminstruct_taxonomy import MULTI_ROUND, as_taxonomy, load_end_prompts
        from ..formats.mminstruct import TYPE_SUFFIX

        tax = as_taxonomy(taxonomy)
        try:
            self.fallback = tax.key(fallback)
        except KeyError:
            raise ConfigError(f"fallback={fallback!r} is not a domain of the taxonomy; known: {sorted(tax.domains)}") from None
        self.multi_round = MULTI_ROUND
        self.generic = {d.name for d in tax.domains.values() if d.generic}
        self.domains_of: dict[str, list[str]] = defaultdict(list)
        self.group_of: dict[str, str] = {}  # phrase -> the group it scores for (itself, or its synonym group)
        for d in tax.domains.values():
            for entry in d.keywords:
                group = entry if isinstance(entry, tuple) else (entry,)
                gid = "|".join(" ".join(w.split()) for w in group)
                for phrase in group:
                    norm = " ".join(phrase.lower().split())
                    self.group_of.setdefault(norm, gid)
                    if d.name not in self.domains_of[norm]:
                        self.domains_of[norm].append(d.name)
        phrases = sorted(self.domains_of, key=lambda p: (-len(p), p))  # longest first: "left side" before "left"
        body = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in phrases)
        self.pattern = re.compile(rf"\b(?:{body})s?\b", re.IGNORECASE) if phrases else None
        # Suffix sentences carry words of their own ("word", "option"): never keywords.
        suffixes = [s for s in TYPE_SUFFIX.values() if s] + [s for v in load_end_prompts().values() for s in v]
        self.suffixes = sorted(set(suffixes), key=len, reverse=True)

    def clean(self, text: str) -> str:
        """Question text without placeholders, option lines and indicator suffixes."""
        text = text.replace(IMAGE_TOKEN, " ")
        for s in self.suffixes:
            text = text.replace(s, " ")
        return _OPTION_LINE.sub(" ", text) if _OPTION_LINE.search(text) else text

    def scores(self, text: str) -> dict[str, tuple[int, int]]:
        """``{domain: (score, first position)}`` of one (cleaned) question."""
        found: dict[str, tuple[int, int]] = {}
        if self.pattern is None:
            return found
        seen: set[str] = set()
        for m in self.pattern.finditer(text):
            phrase = " ".join(m.group(0).lower().split())
            if phrase not in self.domains_of and phrase.endswith("s"):
                phrase = phrase[:-1]
            if phrase not in self.domains_of or self.group_of[phrase] in seen:
                continue
            seen.add(self.group_of[phrase])
            for d in self.domains_of[phrase]:
                score, pos = found.get(d, (0, m.start()))
                found[d] = (score + len(phrase.split()), min(pos, m.start()))
        return found

    def predict(self, question: str) -> tuple[str, int]:
        """``(domain, score)``; score 0 means nothing matched and the fallback was used."""
        found = self.scores(self.clean(question))
        if not found:
            return self.fallback, 0
        best = max(found.items(), key=lambda kv: (kv[1][0], kv[0] not in self.generic, -kv[1][1]))
        return best[0], best[1][0]


def type_of_pair(question: str, answer: str, short_words: int = 5, caption_words: int = 60) -> str:
    """Instruction type of one QA pair by the rules of the module doc.

    Example:
        >>> type_of_pair("What color is it?", "Red"), type_of_pair("Is it red?", "No, it is blue.")
        ('short_vqa', 'judgement')
    """
    answer = (answer or "").strip()
    question = (question or "").replace(IMAGE_TOKEN, " ")
    if _YES_NO.match(answer):
        return "judgement"
    if len(_OPTION_LINE.findall(question)) >= 2 or _INLINE_OPTIONS.search(question):
        return "multiple_choice"
    words = answer.split()
    if len(words) <= short_words and not _SENTENCE_BREAK.search(answer):
        return "short_vqa"
    if len(words) >= caption_words and _DESCRIBE_IMAGE.search(question):
        return "caption"
    return "long_vqa"


def taxonomy(
    ds: Dataset,
    *,
    taxonomy=None,
    use_task: bool = True,
    fallback: str = "image_description",
    replace_columns: bool = False,
    short_words: int = 5,
    caption_words: int = 60,
    map_batch_size: int = 10_000,
) -> Dataset:
    """Add ``domain``, ``instruction_type`` and ``domain_score`` to rows of any source (see module doc)."""
    from ..formats.mminstruct_taxonomy import INSTRUCTION_TYPES, MULTI_ROUND

    model = KeywordModel(taxonomy, fallback=fallback)
    known_types = set(INSTRUCTION_TYPES)
    has_task = "task" in ds.column_names
    keep_dom = "domain" in ds.column_names and not replace_columns
    keep_type = "instruction_type" in ds.column_names and not replace_columns

    def tag(table: pa.Table) -> dict[str, pa.Array]:
        convs = table.column("conversations").to_pylist()
        tasks = table.column("task").to_pylist() if has_task else [None] * len(convs)
        old_dom = table.column("domain").to_pylist() if keep_dom else [None] * len(convs)
        old_type = table.column("instruction_type").to_pylist() if keep_type else [None] * len(convs)
        doms, types, scores = [], [], []
        for conv, task, od, ot in zip(convs, tasks, old_dom, old_type):
            conv = conv or []
            qs = [t["value"] or "" for t in conv if t["from"] == "human"]
            ans = [t["value"] or "" for t in conv if t["from"] == "gpt"]
            pairs = list(zip(qs, ans))
            if ot:
                kind = ot
            elif use_task and task in known_types:
                kind = task
            else:
                kinds = {type_of_pair(q, a, short_words, caption_words) for q, a in pairs}
                kind = kinds.pop() if len(kinds) == 1 else "long_vqa"
            if od:
                dom, score = od, -1
            elif len(pairs) >= 3 and np.mean([len(a.split()) for a in ans]) >= 15:
                dom, score = MULTI_ROUND, -1
            else:
                dom, score = model.predict("\n".join(qs))
            doms.append(dom)
            types.append(kind)
            scores.append(score)
        return {"domain": pa.array(doms, pa.string()), "instruction_type": pa.array(types, pa.string()),
                "domain_score": pa.array(scores, pa.int32())}

    params = {"use_task": use_task, "fallback": model.fallback, "replace_columns": replace_columns, "short_words": short_words,
              "caption_words": caption_words, "keywords": {p: d for p, d in sorted(model.domains_of.items())}}
    out = map_arrow(ds, tag, {"domain": Value("string"), "instruction_type": Value("string"), "domain_score": Value("int32")},
                    batch_size=map_batch_size, desc="taxonomy", fingerprint_params=params)
    scores = np.asarray(list_column(out, "domain_score") if len(out) else [], dtype=np.int64)
    summary = {**{k: v for k, v in params.items() if k != "keywords"}, "fallback_rows": int((scores == 0).sum()),
               "keywords": len(params["keywords"])}
    return provenance.record(out, "taxonomy", kind="stage", rows_in=len(ds), params=summary, parent=ds)


def tagging_accuracy(ds: Dataset, *, truth_domain: str = "_domain", truth_type: str | None = "_instruction_type") -> dict[str, Any]:
    """Accuracy of ``domain`` (and ``instruction_type``) against truth columns, per domain and the top confusions.

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"domain": ["ocr", "ocr"], "_domain": ["ocr", "landmark"]})
        >>> tagging_accuracy(ds, truth_type=None)["domain_accuracy"]
        0.5
    """
    pred = np.asarray(list_column(ds, "domain"), dtype=object)
    true = np.asarray(list_column(ds, truth_domain), dtype=object)
    out: dict[str, Any] = {"rows": len(ds), "domain_accuracy": float((pred == true).mean()) if len(ds) else 0.0}
    out["per_domain"] = {d: round(float((pred[true == d] == d).mean()), 4) for d in sorted(set(true.tolist()))}
    out["confusions"] = [{"true": t, "predicted": p, "rows": n} for (t, p), n in
                         Counter(zip(true[pred != true].tolist(), pred[pred != true].tolist())).most_common(10)]
    if truth_type:
        pt = np.asarray(list_column(ds, "instruction_type"), dtype=object)
        tt = np.asarray(list_column(ds, truth_type), dtype=object)
        out["type_accuracy"] = float((pt == tt).mean()) if len(ds) else 0.0
        out["per_type"] = {t: round(float((pt[tt == t] == t).mean()), 4) for t in sorted(set(tt.tolist()))}
    return out


__all__ = ["KeywordModel", "tagging_accuracy", "taxonomy", "type_of_pair"]
