"""Can a from-scratch tiny LM learn to compare? Controlled probes behind RESULTS "Comparisons".

    python -m research.probe_comparisons --task judgement --input text --answer short --max-objects 1 --steps 2000
    python -m research.probe_comparisons --task judgement --input image --answer svit --max-objects 3
    python -m research.probe_comparisons --task mc --input text --max-objects 1 --steps 3000
    python -m research.probe_comparisons --task match --queries 8

Judgement ("Is the circle blue?") and multiple choice ("What color is the circle? A. ... D.")
need one step more than short VQA: compare the looked-up attribute with a word of the
question, or find the option that holds it and answer its letter. These probes isolate that
step on freshly drawn rows (no pool, no degradation), with the scene given as an image
(ShapesWorld, shapes unique in the scene) or as text ("Scene: a red circle. a blue square."):

- ``--task judgement``: yes/no; ``--answer short`` ("No") or ``svit`` ("No, the circle is red.",
  SVIT's explained answer, as ``svit_judgement`` writes it);
- ``--task mc``: four color options, answer the letter (``short``) or ``opt`` ("B. red");
- ``--task match``: the letter step alone, no scene: "A. blue B. red ... Which option is red?",
  ``--queries`` questions per row (each answer supervised).

One tiny checkpoint (``tiny_checkpoint`` + ``pretrain_vision_tower``, tower frozen), a plain
AdamW loop (lr ``--lr``, 30 warm-up steps, batch 32, one thread); every 100 steps the
first-answer-token accuracy on 300 held-out rows, overall and by objects in the scene
(chance: 50 judgement, 25 MC/match; a constant answer shows as chance).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import tempfile
import time

COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]


def make_row(i: int, args) -> tuple[dict, int]:
    """``(row, objects in the scene)`` for draw ``i``; the scene's shapes are unique, so "the circle" names one object."""
    from hf_vitcurate.synthetic.world import make_scene, render

    rng = random.Random(i)
    if args.task == "match":
        opts = rng.sample(COLORS, 4)
        conv = []
        for j in range(args.queries):
            k = rng.randrange(4)
            q = f"Which option is {opts[k]}?"
            if j == 0:
                q = "\n".join(f"{x}. {c}" for x, c in zip("ABCD", opts)) + "\n" + q
            conv += [{"from": "human", "value": q}, {"from": "gpt", "value": "ABCD"[k]}]
        return {"conversations": conv}, 0
    j = i
    while True:
        scene = make_scene(j, seed=77)
        shapes = [o.shape for o in scene.objects]
        if len(shapes) <= args.max_objects and len(set(shapes)) == len(shapes):
            break
        j += 10**7
    obj = scene.objects[rng.randrange(len(shapes))]
    if args.input == "image":
        prefix, images = "<image>\n", [render(scene)]
    else:
        prefix, images = "Scene: " + ". ".join(f"a {o.color} {o.shape}" for o in scene.objects) + ".\n", None
    if args.task == "judgement":
        asked = obj.color if rng.random() < 0.5 else rng.choice([c for c in COLORS if c != obj.color])
        word = "Yes" if asked == obj.color else "No"
        question = f"Is the {obj.shape} {asked}? Please answer yes or no."
        answer = word if args.answer == "short" else f"{word}, the {obj.shape} is {obj.color}."
    else:
        opts = [obj.color] + rng.sample([c for c in COLORS if c != obj.color], 3)
        rng.shuffle(opts)
        letter = "ABCD"[opts.index(obj.color)]
        question = (f"What color is the {obj.shape}?\n" + "\n".join(f"{x}. {c}" for x, c in zip("ABCD", opts))
                    + "\nPlease choose the most appropriate option.")
        answer = letter if args.answer == "short" else f"{letter}. {obj.color}"
    row = {"conversations": [{"from": "human", "value": prefix + question}, {"from": "gpt", "value": answer}]}
    if images:
        row["images"] = images
    return row, len(shapes)


def batch(rows: list[dict]) -> dict:
    return {k: [r[k] for r in rows] for k in rows[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["judgement", "mc", "match"], default="judgement")
    p.add_argument("--input", choices=["text", "image"], default="text")
    p.add_argument("--answer", choices=["short", "svit", "opt"], default="short")
    p.add_argument("--max-objects", type=int, default=1, help="objects per scene, at most (shapes are unique, so 4 at most)")
    p.add_argument("--queries", type=int, default=1, help="match: questions per row")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--checkpoint", default=None, help="tiny checkpoint with its tower pretrained (default: built here)")
    p.add_argument("--seed", type=int, default=0, help="seed of the checkpoint built here and of the training")
    p.add_argument("--save", default=None, help="save the trained checkpoint here (to start another probe from it)")
    args = p.parse_args()
    # Each task has its own answer styles; a combination that would be silently rewritten is an error.
    styles = {"judgement": ("short", "svit"), "mc": ("short", "opt"), "match": ("short",)}[args.task]
    if args.answer not in styles:
        p.error(f"--task {args.task} answers in {' or '.join(styles)}, not {args.answer!r}")
    if args.task == "match" and args.input != "text":
        p.error("--task match has no scene: it is text only")
    if args.queries != 1 and args.task != "match":
        p.error("--queries is an option of --task match")
    if args.max_objects < 1:
        p.error("--max-objects must be at least 1")

    import torch

    from hf_vitcurate.models.chat import encode, model_inputs
    from hf_vitcurate.models.loading import load
    from hf_vitcurate.models.loss import token_nll
    from hf_vitcurate.synthetic import training_pool
    from hf_vitcurate.testing import pretrain_vision_tower, tiny_checkpoint

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    path = args.checkpoint
    if path is None:
        corpus = training_pool("clean", 2000, seed=0, sources=["mm_short_vqa", "mm_multiple_choice", "svit_judgement", "captions"])
        path = tiny_checkpoint(corpus, output_dir=os.path.join(tempfile.mkdtemp(prefix="probe-"), "base"), seed=args.seed)
        pretrain_vision_tower(path, steps=300, seed=args.seed, progress=False)
    model, processor = load(path)
    held_out = [make_row(10**8 + i, argparse.Namespace(**{**vars(args), "queries": 1})) for i in range(300)]
    test = encode(processor, batch([r for r, _ in held_out]))
    params = [q for name, q in model.named_parameters() if "vision_tower" not in name]
    for name, q in model.named_parameters():
        q.requires_grad_("vision_tower" not in name)
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)

    def accuracy() -> dict:
        model.eval()
        with torch.no_grad():
            labels = test["labels"]
            first = (labels != -100).float().argmax(1)
            logits = model(**model_inputs(test)).logits
            rows = torch.arange(len(labels))
            ok = (logits[rows, first - 1].argmax(-1) == labels[rows, first]).tolist()
        model.train()
        by = collections.defaultdict(list)
        for hit, (_, n) in zip(ok, held_out):
            by["all"].append(hit)
            if n:
                by[f"{n} obj"].append(hit)
        return {k: round(100 * sum(v) / len(v)) for k, v in sorted(by.items())}

    print(vars(args), flush=True)
    start = time.time()
    for step in range(args.steps):
        data = encode(processor, batch([make_row(step * 32 + j, args)[0] for j in range(32)]))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 30)
        nll, mask = token_nll(model(**model_inputs(data)).logits, data["labels"])
        loss = nll.sum() / mask.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}  {time.time() - start:.0f} s  loss {loss.item():.3f}  accuracy {accuracy()}", flush=True)
    if args.save:
        shutil.copytree(path, args.save, dirs_exist_ok=True)  # processor and architecture files
        model.save_pretrained(args.save)


if __name__ == "__main__":
    main()
