"""``vitcurate score STAGE``: add score columns, one subcommand per stage of :mod:`hf_vitcurate.stages`.

Stages: ``necessity`` (MLLM-Selector), ``generate`` and ``mq`` (REVO-LION), ``concepts``,
``yes-no``, ``leakage`` and ``qa-count`` (SVIT), ``taxonomy`` (MMInstruct). Flags are the
Python keyword arguments (``_`` spelled ``-``) with the Python defaults. Model stages run
under ``accelerate launch`` to shard rows over processes; ``--work-dir`` keeps finished
chunks so a killed run resumes where it stopped (``--restart`` discards them).
``leakage`` and ``qa-count`` also take ``--rejected PATH``: the flagged rows are then split
off there (:func:`hf_vitcurate.stages.reject`) and ``--output`` gets the kept rows.

Example:
    $ vitcurate score necessity pool/ --model runs/f_seed --output scored/ --work-dir runs/necessity
    $ vitcurate score leakage pool/ --output kept/ --rejected leaked.jsonl
"""

from __future__ import annotations

import math
from collections import Counter

from ..errors import ConfigError, check_path
from .common import add_input_args, check_model, load_input, option, print_summary, quiet_if_small, save_output

STAGES = ("necessity", "generate", "mq", "concepts", "yes-no", "leakage", "qa-count", "taxonomy")


def _stage(stages, name: str, help: str, run):
    """A stage's subparser with INPUT, ``--output`` and its runner."""
    p = stages.add_parser(name, help=help)
    add_input_args(p)
    p.add_argument("--output", required=True, help="where to write the scored rows (.jsonl/.parquet/folder)")
    p.set_defaults(func=run)
    return p


def _model_options(p, fn) -> None:
    """The options every model stage shares, defaults from ``fn``'s signature."""
    p.add_argument("--model", required=True, help="checkpoint folder or Hub id")
    option(p, fn, "work_dir", "chunk folder for resuming (default: a temporary one)", type=str)
    option(p, fn, "restart", "discard the chunks already in --work-dir and start over")
    option(p, fn, "batch_size", "rows per forward pass")
    option(p, fn, "chunk_size", "rows per resumable chunk")
    option(p, fn, "dtype", "weights dtype: auto (the checkpoint's; bf16 on GPUs, float32 on CPUs without AVX512-BF16/AMX), float32, bfloat16, float16", type=str)
    option(p, fn, "max_pixels", "images with more pixels (a decompression bomb) get a flag and a null score", type=int)


def register(sub) -> None:
    from ..stages.cleanup import leakage, qa_count
    from ..stages.concepts import MEASURES, concepts
    from ..stages.generate import generate
    from ..stages.mq import mq
    from ..stages.necessity import necessity
    from ..stages.taxonomy import taxonomy
    from ..stages.yes_no import yes_no

    p = sub.add_parser("score", help="add score columns: " + ", ".join(STAGES))
    stages = p.add_subparsers(dest="stage", metavar="STAGE", required=True)

    n = _stage(stages, "necessity", "MLLM-Selector: the seed model's loss on each row", run_necessity)
    _model_options(n, necessity)
    option(n, necessity, "reduction", "sum or mean over the answer tokens", choices=["sum", "mean"])
    option(n, necessity, "sign", "nll (higher = harder) or loglik (the paper's Eq. 3 literally)", choices=["nll", "loglik"])
    option(n, necessity, "max_length", "tokens per row; longer rows are truncated and flagged")
    option(n, necessity, "max_batch_tokens", "padded token positions per forward pass at most (rows sorted by token length)", type=int)

    g = _stage(stages, "generate", "REVO-LION: a checkpoint's greedy answer to each row's last question", run_generate)
    _model_options(g, generate)
    option(g, generate, "column", "the answer column (answer__NAME names the model for mq)")
    option(g, generate, "max_new_tokens", "tokens per answer at most")
    option(g, generate, "num_threads", "CPU threads for torch", type=int)

    m = _stage(stages, "mq", "REVO-LION: MQ of an answer column against the reference answer", run_mq)
    option(m, mq, "answer_column", "the column of model answers")
    option(m, mq, "model_name", "model name in the column mq__NAME (default: the answer column's suffix)", type=str)
    option(m, mq, "variant", "MQ variant (C1..C3)")
    option(m, mq, "components", "also keep the six component scores")
    option(m, mq, "map_batch_size", "rows per Arrow batch")
    option(m, mq, "num_proc", "processes scoring batches", type=int)

    c = _stage(stages, "concepts", "SVIT: concept key words, counts and informativeness", run_concepts)
    option(c, concepts, "concept_sets", "YAML/JSON file of {concept: [key words]} (default: SVIT Table 4)", type=str)
    option(c, concepts, "measure", "what informativeness counts", choices=list(MEASURES))
    option(c, concepts, "map_batch_size", "rows per Arrow batch")
    option(c, concepts, "num_proc", "processes", type=int)

    y = _stage(stages, "yes-no", "SVIT: does the first answer start with yes or no", run_yes_no)
    option(y, yes_no, "map_batch_size", "rows per Arrow batch")
    option(y, yes_no, "num_proc", "processes", type=int)

    lk = _stage(stages, "leakage", "SVIT: answers that mention the annotation source", run_leakage)
    lk.add_argument("--phrases", default=None, metavar="FILE",
                    help="file with one leak phrase per line (default: stages.DEFAULT_LEAK_PHRASES)")
    option(lk, leakage, "map_batch_size", "rows per Arrow batch")
    lk.add_argument("--rejected", default=None, help="split flagged rows off to this path; --output gets the kept rows")

    q = _stage(stages, "qa-count", "SVIT: rows with fewer QA pairs than expected", run_qa_count)
    q.add_argument("--expected", required=True, nargs="+", metavar="N|TASK=N",
                   help="expected QA pairs: one number, or TASK=N pairs (tasks not named are not checked)")
    option(q, qa_count, "task_column", "the column --expected's tasks are read from")
    option(q, qa_count, "map_batch_size", "rows per Arrow batch")
    q.add_argument("--rejected", default=None, help="split short rows off to this path; --output gets the kept rows")

    t = _stage(stages, "taxonomy", "MMInstruct: domain and instruction type of each row", run_taxonomy)
    option(t, taxonomy, "taxonomy", "taxonomy YAML (default: the built-in one)", type=str)
    option(t, taxonomy, "use_task", "keep a task that already names an instruction type")
    option(t, taxonomy, "fallback", "domain of rows where no key phrase is found")
    option(t, taxonomy, "replace_columns", "retag rows that already have domain/instruction_type")
    option(t, taxonomy, "short_words", "most words of a short answer")
    option(t, taxonomy, "caption_words", "fewest words of a caption")
    option(t, taxonomy, "map_batch_size", "rows per Arrow batch")


def _load(args):
    ds = load_input(args)
    quiet_if_small(len(ds))
    return ds


def _finish(out, args, **figures) -> int:
    """Save on the main process and print the summary."""
    from ..distributed import state

    if state().is_main_process:
        save_output(out, args.output)
        print_summary({"output": args.output, "rows": len(out), **figures})
    return 0


def _model_kwargs(args) -> dict:
    return {"model": args.model, "work_dir": args.work_dir, "restart": args.restart, "batch_size": args.batch_size,
            "chunk_size": args.chunk_size, "dtype": args.dtype, "max_pixels": args.max_pixels}


def run_necessity(args) -> int:
    from ..stages.necessity import necessity

    check_model(args.model)
    ds = _load(args)
    scored = necessity(ds, **_model_kwargs(args), reduction=args.reduction, sign=args.sign, max_length=args.max_length,
                       max_batch_tokens=args.max_batch_tokens)
    table = scored.with_format("arrow")
    values = [v for v in table["necessity"].to_pylist() if v is not None and not math.isnan(v)]
    flags = Counter(f for f in table["necessity_flag"].to_pylist() if f)
    return _finish(scored, args, scored=len(values), mean_necessity=sum(values) / max(1, len(values)), flags=dict(flags))


def run_generate(args) -> int:
    from ..stages.generate import generate

    check_model(args.model)
    ds = _load(args)
    out = generate(ds, **_model_kwargs(args), column=args.column, max_new_tokens=args.max_new_tokens,
                   num_threads=args.num_threads)
    answers = out.with_format("arrow")[args.column].to_pylist()
    return _finish(out, args, column=args.column, empty_answers=sum(1 for a in answers if not a))


def run_mq(args) -> int:
    from ..stages.mq import mq

    ds = _load(args)
    if args.answer_column not in ds.column_names:
        raise ConfigError(f"--answer-column: {args.answer_column!r} is not a column of INPUT ({ds.column_names})")
    out = mq(ds, answer_column=args.answer_column, model_name=args.model_name, variant=args.variant,
             components=args.components, map_batch_size=args.map_batch_size, num_proc=args.num_proc)
    column = [c for c in out.column_names if c.startswith("mq__") and c not in ds.column_names][0]
    values = out.with_format("arrow")[column].to_pylist()
    return _finish(out, args, column=column, mean_mq=sum(values) / max(1, len(values)))


def run_concepts(args) -> int:
    from ..stages.concepts import concepts

    check_path(args.concept_sets, flag="--concept-sets", hub=False)
    ds = _load(args)
    out = concepts(ds, concept_sets=args.concept_sets, measure=args.measure, map_batch_size=args.map_batch_size,
                   num_proc=args.num_proc)
    info = out.with_format("arrow")["informativeness"].to_numpy()
    return _finish(out, args, mean_informativeness=float(info.mean()) if len(out) else None)


def run_yes_no(args) -> int:
    from ..stages.yes_no import yes_no

    ds = _load(args)
    out = yes_no(ds, map_batch_size=args.map_batch_size, num_proc=args.num_proc)
    counts = Counter(out.with_format("arrow")["yes_no"].to_pylist())
    return _finish(out, args, yes=counts["yes"], no=counts["no"], none=counts["none"])


def _finish_flags(out, args, column: str) -> int:
    """Save the flagged rows, or with ``--rejected`` split them off (:func:`stages.reject`)."""
    from ..stages.reject import reject

    flagged = sum(out.with_format("arrow")[column].to_pylist())
    if not args.rejected:
        return _finish(out, args, flagged=flagged)
    kept, rejected = reject(out, where=column)
    save_output(rejected, args.rejected)
    return _finish(kept, args, rows_in=len(out), flagged=flagged, rejected=len(rejected), rejected_output=args.rejected)


def run_leakage(args) -> int:
    from ..stages.cleanup import DEFAULT_LEAK_PHRASES, leakage

    phrases = DEFAULT_LEAK_PHRASES
    if args.phrases:
        check_path(args.phrases, flag="--phrases", hub=False)
        with open(args.phrases, encoding="utf-8") as f:
            phrases = [line.strip() for line in f if line.strip()]
        if not phrases:
            raise ConfigError(f"--phrases: {args.phrases} holds no phrase")
    out = leakage(_load(args), phrases=phrases, map_batch_size=args.map_batch_size)
    return _finish_flags(out, args, "leakage")


def expected_qa(values: list[str], *, flag: str = "--expected") -> int | dict[str, int]:
    """``--expected`` (``flag``): one number, or ``TASK=N`` pairs.

    >>> expected_qa(["3"]), expected_qa(["ref=10", "conv=2"])
    (3, {'ref': 10, 'conv': 2})
    """
    try:
        if len(values) == 1 and "=" not in values[0]:
            return int(values[0])
        pairs = [v.partition("=") for v in values]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError
        return {task: int(n) for task, _, n in pairs}
    except ValueError:
        raise ConfigError(f"{flag}: give one number or TASK=N pairs, got {' '.join(values)!r}") from None


def run_qa_count(args) -> int:
    from ..stages.cleanup import qa_count

    expected = expected_qa(args.expected)
    ds = _load(args)
    if isinstance(expected, dict) and args.task_column not in ds.column_names:
        raise ConfigError(f"--task-column: {args.task_column!r} is not a column of INPUT")
    out = qa_count(ds, expected=expected, task_column=args.task_column, map_batch_size=args.map_batch_size)
    return _finish_flags(out, args, "qa_short")


def run_taxonomy(args) -> int:
    from ..stages.taxonomy import taxonomy

    check_path(args.taxonomy, flag="--taxonomy", hub=False)
    ds = _load(args)
    out = taxonomy(ds, taxonomy=args.taxonomy, use_task=args.use_task, fallback=args.fallback,
                   replace_columns=args.replace_columns, short_words=args.short_words, caption_words=args.caption_words,
                   map_batch_size=args.map_batch_size)
    table = out.with_format("arrow")
    types = Counter(table["instruction_type"].to_pylist())
    fallback = sum(1 for s in table["domain_score"].to_pylist() if s == 0)
    return _finish(out, args, domains=len(set(table["domain"].to_pylist())), instruction_types=dict(types),
                   fallback_rows=fallback)
