"""The pathologies the curation papers name, beyond wrong and leaking answers: their writers and demo rates.

- **Redundant easy rows** (truth ``easy``): short questions of a few fixed kinds whose
  one-word answer is the same for every image ("What color is the background?" ->
  "white"), written into ``mm_short_vqa`` as VQAv2's easy questions are. A seed model
  masters them after a few steps, so they add rows but no skill: what NBGS's necessity
  is meant to skip (MLLM-Selector).
- **A low-quality source** (:data:`LOW_QUALITY_SOURCE`): web-style short QA, lowercase and
  sloppy ("red i think"), most of whose answers are wrong (truth ``hallucination`` at
  :data:`LOW_QUALITY_RATES`, the rest ``clean``): what REVO-LION's SQ is meant to rank low.
- The yes:no skew (``yes_ratio``) and near-duplicates (``degrade[...]["duplicate"]``) are
  options of :func:`~hf_vitcurate.synthetic.shapesworld` already.

:data:`DEMO_PATHOLOGIES` are the rates at which each method can show its signal at the
demo's size (``shapesworld(n, **DEMO_PATHOLOGIES)``; benchmarks/RESULTS.md, "Curation
against random (ShapesWorld)"). They are the built-in recipe's ShapesWorld ``options``
(``hf_vitcurate/curation/recipes/shapesworld.yaml``, what users see and copy); a test keeps
the two equal.

Example:
    >>> import random
    >>> from hf_vitcurate.synthetic.world import make_scene
    >>> write_easy(make_scene(0), random.Random(0), 0)[1]["value"]
    'white'
"""

from __future__ import annotations

import random

from .language import SHORT_SUFFIX, wrong_value
from .world import Scene
from .writers import Turns, _asks, turns

LOW_QUALITY_SOURCE = "web_vqa"
LOW_QUALITY_RATES = {"hallucination": 0.8}  # its rows' truth, unless degrade names the source
# Rates at which each method shows its signal at demo size: the built-in recipe's (see the module docstring).
DEMO_PATHOLOGIES: dict = {"easy": 1.5, "low_quality": 1.0, "yes_ratio": 20.0}

# (question paraphrases, the one answer): the same for every image of the world.
EASY_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("What color is the background?", "What is the color of the background?", "Which color is the background?"), "white"),
    (("Is this a photo or a drawing?", "Is the image a photograph or a drawing?", "Photo or drawing?"), "drawing"),
    (("What kind of things are in the image?", "What does the image show?", "What is drawn in the image?"), "shapes"),
)
_SLOPPY = ("{} i think", "prob {}", "{} lol", "its {}", "{}??", "idk maybe {}", "{} obviously")


def write_easy(scene: Scene, rng: random.Random, kind: int) -> Turns:
    """One easy row of ``EASY_KINDS[kind]``: a paraphrase and its fixed one-word answer.

    ``scene`` is unused on purpose: the answer does not depend on the image.
    """
    questions, answer = EASY_KINDS[kind % len(EASY_KINDS)]
    return turns([(f"{rng.choice(questions)}\n{SHORT_SUFFIX}", answer)])


def easy_rows(rng: random.Random, rate: float, u: float) -> list[int]:
    """The easy kinds an image gets, never one kind twice: ``int(rate)``, one more when ``u < rate % 1``.

    ``u`` comes from a low-discrepancy sequence over images, so the realised rate matches ``rate``.
    """
    base, frac = int(rate), rate - int(rate)
    n = min(len(EASY_KINDS), base + (u < frac))
    return rng.sample(range(len(EASY_KINDS)), n)


def write_sloppy(scene: Scene, rng: random.Random, status: str, style: str) -> Turns:
    """The low-quality source's row: a lowercase question without ``?`` and a sloppy answer.

    >>> from hf_vitcurate.synthetic.world import make_scene
    >>> t = write_sloppy(make_scene(1), random.Random(0), "clean", "confusion")
    >>> t[0]["value"].startswith("<image>\\n"), t[0]["value"].endswith("?")
    (True, False)
    """
    qa = _asks(scene, [rng.choice(["color", "shape", "count", "size"])], rng)[0]
    value = wrong_value(qa.kind, qa.truth, rng, style) if status == "hallucination" else qa.truth
    question = qa.question.rstrip("?").lower()
    return turns([(question, rng.choice(_SLOPPY).format(value))])
