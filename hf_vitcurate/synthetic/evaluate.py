"""Score a checkpoint on the ShapesWorld benchmark: greedy answers, then named scores in 0-100.

``evaluate(model=path)`` is the evaluator every method uses (Individual Select's trials,
REVO-LION's and MLLM-Selector's "does training on this selection help?" checks). It works
for any checkpoint the package can load; only the benchmark is ShapesWorld's.

Example:
    >>> scores = evaluate(model="runs/ft")                # doctest: +SKIP
    >>> scores["average"]                                 # doctest: +SKIP
    71.3
"""

from __future__ import annotations

import os

# The default benchmark: 300 held-out images (1200 rows: judgement, multiple choice,
# short VQA, caption), the same for every caller so that scores compare.
BENCHMARK_IMAGES = 300
BENCHMARK_SEED = 1234


def default_benchmark(n_images: int = BENCHMARK_IMAGES, seed: int = BENCHMARK_SEED):
    """The fixed ShapesWorld benchmark (:func:`hf_vitcurate.synthetic.benchmark`), cached on disk by ``datasets``."""
    from .benchmark import benchmark

    return benchmark(n_images, seed=seed)


def evaluate(
    benchmark=None,
    *,
    model: str | os.PathLike,
    max_new_tokens: int = 48,
    batch_size: int = 64,
    dtype: str | None = "auto",
    device: str | None = None,
    num_threads: int | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Benchmark scores of the checkpoint ``model`` (all in 0-100, higher is better).

    ``benchmark``: a benchmark ``Dataset`` (default: :func:`default_benchmark`). The model
    answers the last question of each row (greedy, ``max_new_tokens``) and
    ``score_benchmark`` turns the answers into named scores.

    >>> evaluate(model="runs/ft", batch_size=128)   # doctest: +SKIP
    {'judgement': 88.0, 'multiple_choice': 75.5, 'short_vqa': 70.2, 'caption': 41.0, 'average': 68.7}
    """
    from ..models.generate import generate_answers
    from .benchmark import score_benchmark

    bench = default_benchmark() if benchmark is None else benchmark
    answers = generate_answers(
        bench,
        model=model,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        dtype=dtype,
        device=device,
        num_threads=num_threads,
        progress=progress,
    )
    return {k: float(v) for k, v in score_benchmark(bench, answers).items()}
