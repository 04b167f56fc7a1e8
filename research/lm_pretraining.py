"""Pretrain a tiny checkpoint's language model on ShapesWorld scenes written as text.

LLaVA starts from a language model pretrained on trillions of tokens: it can already
compare a claim with a fact ("Is the circle blue?" -> "No, it is red.") and find the
option that holds a value and answer its letter (an induction-style copy). A tiny
checkpoint's language model starts from random weights, and on a 2-core CPU it does not
discover those steps from images within a fine-tune: judgement and multiple choice stayed
at chance while short VQA was learned (RESULTS.md, "Comparisons"; the letter
step alone sat on a plateau for ~850 steps). :func:`pretrain_language_model` is the local
stand-in for LLM pretraining, as :func:`hf_vitcurate.testing.pretrain_vision_tower`
is the stand-in for CLIP: text only, it trains the language model (embeddings, layers,
head; the tower and projector are not used) on conversations whose first turn describes a
scene in words (:func:`~hf_vitcurate.synthetic.writers.describe`, "At the top left there is
a large red circle. ...") followed by questions in every format the pools and the
benchmark use: short answers, SVIT-style explained yes/no, lettered multiple choice and
sentence answers, plus ``match`` rows that isolate the letter step ("A. blue B. red ...
Which option is red?" -> "B").

Run it after the model has learned to read images (:func:`train_tiny_lm` runs it after stage 1):
measured, a language model trained on text before it has seen an image token did not
learn to read the image in the fine-tune (RESULTS.md, "Language-model
pretraining, after stage 1").

Scenes come from a separate seed stream (never a pool's or the benchmark's images) and
their text is written from the scene's ground truth, as a pretraining corpus would be; no
row's ``_truth`` is read. The weights are written back with ``save_pretrained``, so
everything downstream still loads the checkpoint through the Auto classes.

Example:
    >>> report = pretrain_language_model(base, steps=1500)        # doctest: +SKIP
    >>> report["held_out"]["multiple_choice"]                      # doctest: +SKIP
    97.0
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict

from hf_vitcurate.synthetic.language import (
    JUDGE_SUFFIX,
    LETTERS,
    SHORT_SUFFIX,
    SPACES,
    ask,
    judge,
    judgement_answer,
    mc_question,
    options,
)
from hf_vitcurate.synthetic.world import make_scene
from hf_vitcurate.synthetic.writers import describe

REPORT_FILE = "lm_pretraining.json"
# Seed stream of the text scenes: apart from pools (small seeds), the benchmark and the tower's images.
LM_SEED = 86_420
TEXT_DATASET_OFFSET = 2 * 10**9  # text_dataset's rows: far past any training step's and the held-out indices
FORMATS = ("short", "judgement", "multiple_choice", "sentence")
_SHORT_KINDS = ("color", "shape", "count", "size", "position")
_JUDGE_KINDS = ("existence", "color", "shape", "count", "size", "position")
_MC_KINDS = ("color", "shape", "count", "position")
MATCH_KINDS = ("color", "shape", "count", "position")  # the value spaces of the benchmark's multiple choice


def _question(scene, fmt: str, rng: random.Random) -> tuple[str, str]:
    """One ``(question, answer)`` of format ``fmt`` about ``scene``, phrased as the sources phrase it."""
    if fmt == "judgement":
        qa = None
        while qa is None:
            qa = judge(scene, rng.choice(_JUDGE_KINDS), rng.random() < 0.5, rng)
        return f"{qa.question} {JUDGE_SUFFIX}", judgement_answer(qa, qa.truth == "yes", rng)
    kinds = {"short": _SHORT_KINDS, "multiple_choice": _MC_KINDS, "sentence": _JUDGE_KINDS}[fmt]
    qa = None
    while qa is None:
        qa = ask(scene, rng.choice(kinds), rng)
    if fmt == "short":
        return f"{qa.question}\n{SHORT_SUFFIX}", qa.truth
    if fmt == "sentence":
        return qa.question, qa.sentence(qa.truth)
    opts = options(qa, rng, "random")
    return mc_question(qa, opts), LETTERS[opts.index(qa.truth)]


def _match_turns(
    rng: random.Random, questions: int, forward: float = 0.5, kinds: tuple[str, ...] = MATCH_KINDS
) -> list[dict[str, str]]:
    """The letter step alone: four options, then ``questions`` turns, each "Which option is X?"
    (value -> letter, what multiple choice needs) or, with probability ``forward``, "What is
    option B?" (letter -> value, the easier lookup that trains the same binding of letter and value)."""
    opts = rng.sample(list(SPACES[rng.choice(kinds)]), 4)
    conv = []
    for j in range(questions):
        k = rng.randrange(4)
        if rng.random() < forward:
            q, a = f"What is option {LETTERS[k]}?", opts[k]
        else:
            q, a = f"Which option is {opts[k]}?", LETTERS[k]
        if j == 0:
            q = "\n".join(f"{x}. {v}" for x, v in zip(LETTERS, opts)) + "\n" + q
        conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return conv


def text_row(
    i: int,
    seed: int = 0,
    *,
    questions: int = 4,
    match_share: float = 0.25,
    forward: float = 0.5,
    match_kinds: tuple[str, ...] = MATCH_KINDS,
    formats=FORMATS,
) -> dict:
    """Row ``i`` of the text corpus: a scene in words and ``questions`` questions about it
    (formats drawn from ``formats``), or, with probability ``match_share``, a match row
    (options from the value space of one of ``match_kinds``).

    ``row["format"]`` names the first question's format (``match`` for match rows).

    >>> row = text_row(0, questions=2, match_share=0.0)
    >>> row["conversations"][0]["value"].startswith("The image shows"), len(row["conversations"])
    (True, 4)
    """
    rng = random.Random(f"lm:{seed}:{i}")
    if rng.random() < match_share:
        return {"conversations": _match_turns(rng, questions, forward, match_kinds), "format": "match"}
    scene = make_scene(i, seed=LM_SEED + seed)
    conv, first = [], None
    for j in range(questions):
        fmt = rng.choice(list(formats))
        first = first or fmt
        q, a = _question(scene, fmt, rng)
        conv += [{"from": "human", "value": f"{describe(scene)}\n{q}" if j == 0 else q}, {"from": "gpt", "value": a}]
    return {"conversations": conv, "format": first}


def text_dataset(n: int, seed: int = 0, **row_options):
    """``n`` rows of :func:`text_row` as a canonical text-only ``Dataset`` (no image), to mix
    into a fine-tune the way LLaVA-665K keeps its ShareGPT text rows: without rows that use
    it, the fine-tune erases what this stage taught (measured: the letter step fell from 95
    to 25 in one epoch of the five-type mix, RESULTS.md). Rows come from indices
    from 2·10^9 on, so they are never the rows :func:`pretrain_language_model` trained on
    (indices below ``steps * batch_size``) nor its held-out rows, whatever the seeds.

    >>> ds = text_dataset(3, match_share=1.0, questions=1, match_kinds=("color",))
    >>> ds[0]["task"], ds[0]["images"], ds[0]["conversations"][1]["value"] in "ABCD"
    ('match', [], True)
    """
    from datasets import Dataset

    from hf_vitcurate.schema import FEATURES

    rows = []
    for i in range(n):
        row = text_row(TEXT_DATASET_OFFSET + i, seed, **row_options)
        rows.append({"id": f"lm-text-{seed}-{i:07d}", "images": [], "conversations": row["conversations"],
                     "source": "lm_text", "task": row["format"]})
    return Dataset.from_list(rows, features=FEATURES)


def held_out_rows(n_per_format: int, seed: int = 0, match_kinds: tuple[str, ...] = MATCH_KINDS) -> list[dict]:
    """One-question rows, ``n_per_format`` of each format and of ``match``, from their own stream."""
    rows = []
    for k, fmt in enumerate((*FORMATS, "match")):
        for i in range(n_per_format):
            j = 10**8 + k * 10**6 + i
            if fmt == "match":
                rows.append({"conversations": _match_turns(random.Random(f"lm-held:{seed}:{j}"), 1, 0.0, match_kinds), "format": "match"})
            else:
                rows.append(text_row(j, seed + 1, questions=1, match_share=0.0, formats=(fmt,)))
    return rows


def pretrain_language_model(
    model: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    *,
    steps: int = 1500,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    questions: int = 4,
    match_share: float = 0.25,
    forward: float = 0.5,
    match_kinds: tuple[str, ...] = MATCH_KINDS,
    formats: tuple[str, ...] = FORMATS,
    loss_on: str = "answers",
    lr_schedule: str = "cosine",
    train_embeddings: bool = True,
    until: dict[str, float] | None = None,
    seed: int = 0,
    held_out: int = 100,
    eval_every: int = 0,
    num_threads: int | str | None = None,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Train the language model of the checkpoint ``model`` on :func:`text_row` conversations; save it; return a report.

    ``questions``, ``match_share``, ``forward``, ``match_kinds`` and ``formats`` shape the rows
    (:func:`text_row`); a second call on the result is a curriculum (e.g. the letter step
    alone, then ``formats=("multiple_choice",)``).
    ``loss_on="answers"`` (default) is the fine-tune's loss, on ``gpt`` tokens only, so the
    stage teaches what the benchmark asks; ``"all"`` is next-token prediction on every token,
    as LLM pretraining computes it (measured: no better at the letter step, RESULTS
    "Language-model pretraining"). ``lr_schedule``: after a 3% warm-up, ``cosine`` to 10%
    (the tiny recipes' schedule), ``linear`` or ``constant``. ``train_embeddings=False`` keeps
    the embedding table (tied to the output head in the tiny checkpoints) as it is and trains the
    layers only: with answer-token loss on a few letters, the softmax pushes every other row
    of a tied table the same way (measured: mean cosine between rows 0.76 after 1200 match
    steps), so the default ``True`` is plain LLM training and ``False`` the guard against
    that. ``until`` (e.g. ``{"match": 90}``) stops at the first held-out check (every
    ``eval_every`` steps, 100 if unset) where every named format reaches its accuracy, so a
    run goes past the plateau and no further; ``steps`` is then the most it runs, and the lr
    schedule is laid out over ``steps``. The tower and projector are left as they are;
    ``device`` defaults to the GPU when there is one, and the model trains in float32.
    ``output_dir`` (default: in place) receives the whole checkpoint. The report (also written
    as ``lm_pretraining.json``) has the steps run (``max_steps``: those asked), seconds, the mean loss of the first and the
    last tenth of the steps, and the held-out first-answer-token accuracy (0-100) per format
    (chance: judgement 50, multiple choice and match 25); ``eval_every`` > 0 also records it
    every that many steps (``curve``).

    Long because its signature and this docstring name every option of the stage; the body
    is the step loop, with the checks, the parameters and the scoring in helpers of their own.
    """
    import torch

    from hf_vitcurate.models.chat import encode, model_inputs
    from hf_vitcurate.models.loading import load, rewrite_target, set_threads
    from hf_vitcurate.models.loss import token_nll
    from hf_vitcurate.models.training import make_recipe, scheduled_update
    from hf_vitcurate.progress import progress as progress_bar

    until, eval_every = _check_options(steps=steps, batch_size=batch_size, questions=questions, loss_on=loss_on,
                                       formats=formats, match_kinds=match_kinds, match_share=match_share,
                                       forward=forward, eval_every=eval_every, until=until)
    set_threads(num_threads)
    source, out = rewrite_target(model, output_dir)
    model, processor = load(source, dtype=torch.float32, device=device)
    torch.manual_seed(seed)
    params = _language_parameters(model, train_embeddings)
    # The package's update rule (models.training.scheduled_update): 3% warm-up, clipping at 1.
    schedule = make_recipe(learning_rate=learning_rate, warmup_ratio=0.03, lr_schedule=lr_schedule, min_lr_ratio=0.1,
                           weight_decay=0.0, max_grad_norm=1.0)
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=schedule.weight_decay, betas=schedule.adam_betas)
    test_rows = held_out_rows(held_out, seed, tuple(match_kinds))
    test = encode(processor, {"conversations": [r["conversations"] for r in test_rows]})
    bar = progress_bar(total=steps, desc="language model", unit="step", enabled=progress)
    model.train()
    start, curve, losses, stopped_at = time.time(), [], [], None
    for step in range(steps):
        rows = [text_row(step * batch_size + j, seed, questions=questions, match_share=match_share, forward=forward,
                         match_kinds=tuple(match_kinds), formats=tuple(formats)) for j in range(batch_size)]
        data = encode(processor, {"conversations": [r["conversations"] for r in rows]})
        labels = data["labels"]
        if loss_on == "all":  # next-token prediction on every token, as LLM pretraining does
            labels = data["input_ids"].masked_fill(data["attention_mask"] == 0, -100)
        nll, mask = token_nll(model(**model_inputs(data, model)).logits, labels.to(model.device))
        loss = nll.sum() / mask.sum()
        loss.backward()
        scheduled_update(opt, step=step, total=steps, recipe=schedule)
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            curve.append({"step": step + 1, "seconds": round(time.time() - start, 1), **_accuracy(model, test, test_rows)})
            if until and all(curve[-1][k] >= v for k, v in until.items()):
                stopped_at = step + 1  # past the plateau: the rest of the steps would only cost time
                break
    bar.close()
    if stopped_at:  # its last point is the final score, as at the last of ``steps`` otherwise
        final = {k: v for k, v in curve.pop().items() if k not in ("step", "seconds")}
    else:
        final = _accuracy(model, test, test_rows)
    for p in model.parameters():
        p.requires_grad_(False)
    model.save_pretrained(out)
    done = stopped_at or steps
    tenth = max(1, done // 10)
    report = {
        "steps": done, "max_steps": steps, "until": until, "batch_size": batch_size, "learning_rate": learning_rate,
        "questions": questions, "match_share": match_share, "forward": forward, "match_kinds": list(match_kinds),
        "formats": list(formats), "loss_on": loss_on, "lr_schedule": lr_schedule, "train_embeddings": train_embeddings,
        "seed": seed, "seconds": round(time.time() - start, 1),
        # Mean answer loss of the first and the last tenth of the steps.
        "loss_first": round(sum(losses[:tenth]) / tenth, 4),
        "loss_last": round(sum(losses[-tenth:]) / tenth, 4),
        "held_out": final, "held_out_rows_per_format": held_out, "curve": curve,
    }
    with open(os.path.join(out, REPORT_FILE), "w") as f:
        json.dump(report, f, indent=2)
    return report


def _check_options(*, steps, batch_size, questions, loss_on, formats, match_kinds, match_share, forward, eval_every,
                   until) -> tuple[dict, int]:
    """Raise ``ValueError`` on a bad option of :func:`pretrain_language_model`; return ``(until, eval_every)``."""
    if steps < 1 or batch_size < 1 or questions < 1:
        raise ValueError(f"steps, batch_size and questions must be >= 1, got {steps}, {batch_size}, {questions}")
    if loss_on not in ("answers", "all"):
        raise ValueError(f"loss_on must be 'answers' or 'all', got {loss_on!r}")
    if not formats or set(formats) - set(FORMATS):
        raise ValueError(f"formats must be among {FORMATS}, got {formats!r}")
    unknown = set(match_kinds) - set(MATCH_KINDS)
    if unknown or not match_kinds:
        raise ValueError(f"match_kinds must be among {MATCH_KINDS}, got {match_kinds!r}")
    if not 0.0 <= match_share <= 1.0 or not 0.0 <= forward <= 1.0:
        raise ValueError(f"match_share and forward must be in [0, 1], got {match_share}, {forward}")
    if eval_every < 0:
        raise ValueError(f"eval_every must be >= 0, got {eval_every}")
    until = dict(until or {})
    if set(until) - {*FORMATS, "match"}:
        raise ValueError(f"until names formats among {(*FORMATS, 'match')}, got {sorted(until)}")
    if until and not eval_every:
        eval_every = 100  # the stop is checked on the held-out rows, so they must be scored
    return until, eval_every


def _language_parameters(model, train_embeddings: bool) -> list:
    """The language model's parameters, set trainable (the embedding table too unless ``train_embeddings`` is off)."""
    params = []
    for name, p in model.named_parameters():
        # The language model only: the image path is not exercised by text rows.
        train = "vision_tower" not in name and "multi_modal_projector" not in name
        if not train_embeddings and ("embed_tokens" in name or "lm_head" in name):
            train = False
        p.requires_grad_(train)
        if train:
            params.append(p)
    return params


def _accuracy(model, test: dict, test_rows: list[dict]) -> dict[str, float]:
    """Held-out first-answer-token accuracy (0-100) per format."""
    import torch

    from hf_vitcurate.models.chat import model_inputs

    model.eval()
    hits = defaultdict(list)
    with torch.no_grad():
        for start in range(0, len(test_rows), 128):
            part = {k: v[start : start + 128] for k, v in test.items() if torch.is_tensor(v)}
            labels = part["labels"]
            first = (labels != -100).float().argmax(1)
            logits = model(**model_inputs(part, model)).logits
            rows = torch.arange(len(labels))
            ok = (logits[rows, first - 1].argmax(-1).cpu() == labels[rows, first]).tolist()
            for hit, row in zip(ok, test_rows[start : start + 128]):
                hits[row["format"]].append(hit)
    model.train()
    return {k: round(100 * sum(v) / len(v), 1) for k, v in hits.items()}

def train_tiny_lm(pool, *, work_dir: str | os.PathLike, language_steps: int, language_options: dict | None = None,
                  seed: int = 0, **tiny_options) -> str:
    """``hf_vitcurate.testing.train_tiny`` (tower, stage 1), then this text stage into a folder of its own.

    The text stage runs **after** stage 1, into ``{f_pre}_lm`` (``tiny_lm`` without stage 1).
    The order is measured: run before stage 1, it left the fine-tune unable to read the
    image (captions 23 against 95); after it, the fine-tune reads the image as well as
    without it (RESULTS.md, "Language-model pretraining"). ``language_options``: the other
    arguments of :func:`pretrain_language_model` (e.g. ``{"learning_rate": 3e-4}``);
    ``tiny_options``: those of ``train_tiny``. A rerun reuses what exists.

    >>> path = train_tiny_lm(pool, work_dir="runs/tiny", language_steps=2000)   # doctest: +SKIP
    """
    from hf_vitcurate.testing import train_tiny

    path = train_tiny(pool, work_dir=work_dir, seed=seed, **tiny_options)
    lm = path + "_lm"
    if not os.path.exists(os.path.join(lm, "config.json")):
        options = {"seed": seed, "progress": tiny_options.get("progress", True), **(language_options or {})}
        pretrain_language_model(path, lm + ".partial", steps=language_steps, **options)
        os.replace(lm + ".partial", lm)
    return lm
