"""ShapesWorld for the engine: images to generate from, and questions whose domain is known.

:func:`shapes_images` draws ShapesWorld scenes (``hf_vitcurate.synthetic.world``) as the
engine's input: one image per row, a domain per image (round robin over the domains a
picture of shapes can serve) and the scene's ground truth in words as ``image_tag``
(Table 5's "image related information", as the paper feeds the images' own annotations).
The words are ShapesWorld's own (``synthetic.writers.describe``, ``synthetic.language.refer``):
the engine writes no second description of a scene.

:func:`labelled_questions` writes, from the same ground truth, canonical rows of the four
instruction types in those domains, phrased like the published seed questions, with the
true domain and type in ``_domain`` / ``_instruction_type`` (underscored: for measuring
a tagger, never for a method to read).

Example:
    >>> imgs = shapes_images(4, seed=0)
    >>> imgs.column_names, list(imgs["domain"][:2])
    (['id', 'images', 'domain', 'image_tag'], ['attribute_recognition', 'object_localization'])
    >>> rows = labelled_questions(2, seed=0)
    >>> sorted(set(rows["_instruction_type"][:]))
    ['judgement', 'long_vqa', 'multiple_choice', 'short_vqa']
"""

from __future__ import annotations

import random
from collections import Counter

from datasets import Dataset, Features, Image, List, Value

from ..schema import FEATURES, IMAGE_TOKEN
from ..synthetic import writers
from ..synthetic.language import LETTERS, location, plural, refer
from ..synthetic.world import CELLS, COLOR_NAMES, SHAPES, make_scene, png_bytes
from .taxonomy import TYPE_SUFFIX

# Domains a picture of flat shapes on a plain background can honestly serve.
SHAPES_DOMAINS = (
    "attribute_recognition",
    "object_localization",
    "spatial_relationship",
    "image_comparison",
    "numerical_calculation",
    "image_description",
)


def _scenes(n_images: int, seed: int, image_size: int):
    return [make_scene(i, seed=seed, image_size=image_size) for i in range(n_images)]


def shapes_images(n_images: int = 24, seed: int = 0, domains=SHAPES_DOMAINS, image_size: int = 64) -> Dataset:
    """``n_images`` ShapesWorld images: ``id``, ``images`` (one PNG), ``domain``, ``image_tag``."""
    scenes = _scenes(n_images, seed, image_size)
    rows = {
        "id": [s.image_id for s in scenes],
        "images": [[{"bytes": png_bytes(s), "path": None}] for s in scenes],
        "domain": [domains[i % len(domains)] for i in range(n_images)],
        "image_tag": [writers.describe(s) for s in scenes],
    }
    feats = Features({"id": Value("string"), "images": List(Image()), "domain": Value("string"), "image_tag": Value("string")})
    return Dataset.from_dict(rows, features=feats)


def _name(scene, o, exclude: str = "") -> str:
    """Shortest unique name of ``o`` in its scene (ShapesWorld's ``refer``), without ``exclude`` if it can."""
    return refer(scene, o, exclude) or refer(scene, o)


def _mc(rng: random.Random, right: str, pool: list[str]) -> tuple[list[str], str]:
    wrong = [p for p in dict.fromkeys(pool) if p != right]
    options = rng.sample(wrong, 3) + [right]
    rng.shuffle(options)
    return [f"{L}. {o}" for L, o in zip(LETTERS, options)], LETTERS[options.index(right)]


def _questions(scene, rng: random.Random) -> list[tuple[str, str, str, list[str], str]]:
    """(domain, type, question, options, answer) items of one scene.

    Long because it is the table of question templates, one per domain and type, in the
    published seed questions' words; the objects are named and described by ShapesWorld's
    own writers (``refer``, ``describe``).
    """
    objs = list(scene.objects)
    a = rng.choice(objs)
    b = rng.choice([o for o in objs if o is not a]) if len(objs) > 1 else None
    na = _name(scene, a)
    where = _name(scene, a, exclude="position")  # the localization questions must not say where it is
    yes = rng.random() < 0.5
    other_color = rng.choice([c for c in COLOR_NAMES if c != a.color])
    other_cell = rng.choice([c for c in CELLS if c != a.position])
    counts = Counter(o.shape for o in objs)
    items: list[tuple[str, str, str, list[str], str]] = []
    # attribute recognition
    items += [
        ("attribute_recognition", "short_vqa", f"What color is the {na}?", [], a.color),
        ("attribute_recognition", "judgement", f"Is the {a.shape} {location(a.position)} {a.color if yes else other_color}?", [],
         "Yes" if yes else "No"),
    ]
    opts, letter = _mc(rng, a.shape, list(SHAPES))
    items.append(("attribute_recognition", "multiple_choice", f"What is the shape of the {a.color} object {location(a.position)}?", opts, letter))
    items.append(("attribute_recognition", "long_vqa", f"Describe the color, shape and size of the {na}.",
                  [], f"The {na} is a {a.size} {a.color} {a.shape}; it is filled with one flat {a.color} color."))
    # object localization
    items += [
        ("object_localization", "short_vqa", f"Where is the {where} located in the picture?", [], a.position),
        ("object_localization", "judgement", f"Is the precise position of the {where} in the picture the {a.position if yes else other_cell}?",
         [], "Yes" if yes else "No"),
        ("object_localization", "short_vqa", f"Please estimate the visible number of {plural(a.shape)} in this image.", [],
         str(counts[a.shape])),
    ]
    opts, letter = _mc(rng, a.position, list(CELLS))
    items.append(("object_localization", "multiple_choice", f"In which part of the image is the {where} located?", opts, letter))
    x1, y1, x2, y2 = scene.norm_box(a)
    items.append(("object_localization", "long_vqa", f"What are the bounding box coordinates of the {na}? Explain where it is.",
                  [], f"The {na} is {location(a.position)} of the image, inside the box [{x1}, {y1}, {x2}, {y2}]."))
    if b is not None:
        nb = _name(scene, b)
        left = a.column < b.column
        above = a.row < b.row
        items += [
            ("spatial_relationship", "judgement", f"Is the {na} on the left of the {nb} in the image?", [], "Yes" if left else "No"),
            ("spatial_relationship", "judgement", f"Is the {na} above the {nb} in the image?", [], "Yes" if above else "No"),
            ("image_comparison", "judgement", f"Are the {na} and the {nb} in the picture the same color?", [],
             "Yes" if a.color == b.color else "No"),
            ("image_comparison", "short_vqa", f"Compare the size of the {na} and the {nb}: which one is larger?", [],
             "same size" if a.size == b.size else (na if a.size == "large" else nb)),
            ("image_comparison", "long_vqa", f"Compare the {na} and the {nb} in the figure: what is different and what is the same?", [],
             (f"The {na} is a {a.size} {a.color} {a.shape} and the {nb} is a {b.size} {b.color} {b.shape}; "
              f"they {'share' if a.color == b.color else 'differ in'} color and {'share' if a.size == b.size else 'differ in'} size.")),
        ]
        rel = "left" if left else "right" if a.column > b.column else "top" if above else "bottom"
        opts, letter = _mc(rng, rel, ["left", "right", "top", "bottom", "center"])
        items.append(("spatial_relationship", "multiple_choice", f"On which side of the {nb} is the {na}?", opts, letter))
    s1, s2 = rng.sample(list(SHAPES), 2)
    total = counts[s1] + counts[s2]
    same = sum(o.color == a.color for o in objs)
    items += [
        ("numerical_calculation", "short_vqa",
         f"Calculate the sum of the number of {plural(s1)} and the number of {plural(s2)} in the image.", [], str(total)),
        ("numerical_calculation", "judgement",
         f"If you add the number of {plural(s1)} to the number of {plural(s2)}, is the total {total if yes else total + 1}?",
         [], "Yes" if yes else "No"),
        ("numerical_calculation", "long_vqa", f"Calculate how many objects remain if all {a.color} objects are removed, and show the calculation.",
         [], (f"There are {len(objs)} objects and {same} of them are {a.color}, so "
              f"{len(objs)} - {same} = {len(objs) - same} remain.")),
        ("image_description", "long_vqa", "Please describe the details of this image.", [], writers.describe(scene)),
        ("image_description", "short_vqa", "What would be a suitable title for this image?", [], "Shapes on a plain background"),
        ("image_description", "judgement", "Is the theme of this picture simple geometric shapes?", [], "Yes"),
    ]
    return items


def labelled_questions(n_images: int = 50, seed: int = 0, image_size: int = 64, images: bool = False) -> Dataset:
    """Canonical single-turn rows with known ``_domain`` and ``_instruction_type`` (see module doc).

    ``images=False`` (default) leaves ``images`` empty and drops the placeholder: the
    tagger reads text only, and rows are then cheap to make by the thousand.
    """
    rows: dict[str, list] = {k: [] for k in (*FEATURES, "_domain", "_instruction_type")}
    for scene in _scenes(n_images, seed, image_size):
        rng = random.Random(f"labelled:{seed}:{scene.image_id}")
        img = [{"bytes": png_bytes(scene), "path": None}] if images else []
        for k, (dom, kind, q, opts, ans) in enumerate(_questions(scene, rng)):
            human = "\n".join(p for p in [q, *opts, TYPE_SUFFIX[kind]] if p)
            rows["id"].append(f"{scene.image_id}-l{k}")
            rows["images"].append(img)
            rows["conversations"].append([{"from": "human", "value": (IMAGE_TOKEN + "\n" if images else "") + human},
                                          {"from": "gpt", "value": ans}])
            rows["source"].append("shapesworld_labelled")
            rows["task"].append(kind)
            rows["_domain"].append(dom)
            rows["_instruction_type"].append(kind)
    feats = Features({**FEATURES, "_domain": Value("string"), "_instruction_type": Value("string")})
    return Dataset.from_dict(rows, features=feats)


def _tags(items: list[tuple[str, str, str, list[str], str]]) -> str:
    return " ".join(f"<Q{k}> {q} </Q{k}>" + (f" <C{k}> {' '.join(o)} </C{k}>" if o else "") + f" <A{k}> {a} </A{k}>"
                    for k, (_, _, q, o, a) in enumerate(items, start=1))


def teacher_rows(engine, n_images: int = 64, seed: int = 1000, n_questions: int = 3, n_long: int = 5,
                 domains=SHAPES_DOMAINS, image_size: int = 64) -> Dataset:
    """Canonical rows pairing the engine's own prompts with ideal answers written from the ground truth.

    For each scene: the caption prompt (with the image) answered by ``synthetic.writers.describe``, one
    question prompt per type answered in the ``<Qn>..</Qn><Cn>..</Cn><An>..</An>`` format
    by questions of the image's domain (others of the type fill up), and the multi-round
    prompt answered by ``n_long`` long answers. Fine-tuning a tiny checkpoint on them
    gives a small local generator that knows the output format, so the plumbing can be
    exercised on a CPU (``dataset_scripts/build_mminstruct_style.py --teach-steps``).
    Use a seed stream apart from the images the engine then runs on.
    """
    from .taxonomy import TYPES

    rows: dict[str, list] = {k: [] for k in FEATURES}

    def add(rid, prompt, answer, image):
        rows["id"].append(rid)
        rows["images"].append([image] if image else [])
        rows["conversations"].append([{"from": "human", "value": (IMAGE_TOKEN + "\n" if image else "") + prompt},
                                      {"from": "gpt", "value": answer}])
        rows["source"].append("shapesworld_teacher")
        rows["task"].append("teacher")

    for i, scene in enumerate(_scenes(n_images, seed, image_size)):
        dom = domains[i % len(domains)]
        caption = writers.describe(scene)
        add(f"{scene.image_id}-caption", engine.prompts.caption_prompt(dom, caption), caption, {"bytes": png_bytes(scene), "path": None})
        items = _questions(scene, random.Random(f"teacher:{seed}:{scene.image_id}"))
        for kind in TYPES:
            mine = [it for it in items if it[1] == kind and it[0] == dom] + [it for it in items if it[1] == kind and it[0] != dom]
            seeds = [] if dom in engine.taxonomy.no_seed_domains else engine.seeds.pick(dom, kind, 3, seed=engine.seed, key=scene.image_id)
            prompt = engine.prompts.questions(dom, kind, caption=caption, seeds=seeds, n=n_questions, output_format=engine.output_format)
            add(f"{scene.image_id}-{kind}", prompt, _tags(mine[:n_questions]), None)
        longs = [it for it in items if it[1] == "long_vqa"]
        add(f"{scene.image_id}-multi", engine.prompts.multi_round_prompt(caption=caption, n=n_long, output_format=engine.output_format),
            _tags(longs[:n_long]), None)
    return Dataset.from_dict(rows, features=FEATURES)


__all__ = ["SHAPES_DOMAINS", "labelled_questions", "shapes_images", "teacher_rows"]
