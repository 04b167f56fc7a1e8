"""Tiny checkpoints (hf_vitcurate.testing), chat encoding, training (resume, accelerate), generation, evaluation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from hf_vitcurate.models import encode, generate_answers, load, train
from hf_vitcurate.models.chat import IGNORE_INDEX, to_messages
from hf_vitcurate.models.training import Recipe, global_batches, lr_at, make_recipe, part_of

FAST = dict(batch_size=8, learning_rate=3e-3, warmup_ratio=0.0, progress=False, log_steps=1, seed=0)


def test_tiny_checkpoint_loads_with_auto_classes(tiny_model_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor, LlavaForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_model_path)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_path)
    assert isinstance(model, LlavaForConditionalGeneration)
    assert processor.chat_template and processor.tokenizer.pad_token is not None
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_to_messages_splits_images():
    msgs = to_messages([{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A cat."}])
    assert msgs[0] == {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}
    assert msgs[1]["role"] == "assistant"


def _label_segments(labels: torch.Tensor) -> list[list[int]]:
    """Runs of consecutive labelled tokens."""
    segments, current = [], []
    for t in labels.tolist():
        if t == IGNORE_INDEX:
            if current:
                segments.append(current)
            current = []
        else:
            current.append(t)
    return segments + ([current] if current else [])


def test_labels_cover_exactly_the_gpt_turns(tiny_model_path, toy_vit):
    _, processor = load(tiny_model_path)
    tok = processor.tokenizer
    rows = toy_vit[:6]  # row 1 is text-only, row 2 has two gpt turns
    batch = encode(processor, rows)
    assert batch["pixel_values"].shape[0] == 5  # one image per row except the text-only one
    for i, conv in enumerate(rows["conversations"]):
        answers = [t["value"] for t in conv if t["from"] == "gpt"]
        decoded = [tok.decode(seg) for seg in _label_segments(batch["labels"][i])]
        assert decoded == [a + tok.eos_token for a in answers]
    # Padding and prompt tokens are never labelled.
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_generation_inputs_end_with_the_prompt(tiny_model_path, toy_vit):
    _, processor = load(tiny_model_path)
    batch = encode(processor, toy_vit[:3], generation=True)
    assert "labels" not in batch
    text = processor.tokenizer.decode(batch["input_ids"][2])
    # Two-turn row: the first answer stays, the last is dropped, the prompt asks for the next one.
    assert text.endswith("Is it a square?<|assistant|>") and "yes" not in text
    assert (batch["attention_mask"][:, -1] == 1).all()  # left padding


def test_recipe_validation_and_parts():
    with pytest.raises(TypeError, match="lr"):
        make_recipe(lr=1.0)
    with pytest.raises(ValueError):
        Recipe(train_parts=("eyes",))
    assert part_of("model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight") == "vision"
    assert part_of("model.multi_modal_projector.linear_1.weight") == "projector"
    assert part_of("model.visual.merger.mlp.0.weight") == "projector"  # Qwen2-VL
    assert part_of("model.image_newline") == "projector"  # LLaVA-NeXT / OneVision
    assert part_of("model.visual.blocks.0.attn.qkv.weight") == "vision"
    assert part_of("model.language_model.layers.0.self_attn.q_proj.weight") == "language"
    assert part_of("lm_head.weight") == "language"


def test_schedule_and_batches():
    rec = Recipe(warmup_ratio=0.1, learning_rate=1.0)
    lrs = [lr_at(s, 100, rec, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0) and lrs[-1] < 0.01
    batches = global_batches(10, 4, seed=0, epoch=0)
    assert [len(b) for b in batches] == [4, 4, 4] and set().union(*map(set, batches)) == set(range(10))
    assert [b.tolist() for b in batches] == [b.tolist() for b in global_batches(10, 4, seed=0, epoch=0)]
    assert [b.tolist() for b in batches] != [b.tolist() for b in global_batches(10, 4, seed=0, epoch=1)]


def test_train_loss_decreases_and_reloads(tiny_model_path, toy_vit, tmp_path):
    out = train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "ft", max_steps=12, **FAST)
    log = json.loads((tmp_path / "ft" / "train_log.json").read_text())
    losses = [h["loss"] for h in log["history"]]
    assert len(losses) == 12 and losses[-1] < 0.8 * losses[0]
    model, _ = load(out)  # loads back like any checkpoint, with the trained weights
    base, _ = load(tiny_model_path)
    name = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(model.state_dict()[name], base.state_dict()[name])
    # How the checkpoint was built travels with the fine-tune (recipes read it).
    from pathlib import Path

    assert (tmp_path / "ft" / "tiny_architecture.json").read_text() == (
        Path(tiny_model_path, "tiny_architecture.json").read_text())
    # A rerun of a finished run is a no-op.
    mtime = os.path.getmtime(tmp_path / "ft" / "train_log.json")
    assert train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "ft", max_steps=12, **FAST) == out
    assert os.path.getmtime(tmp_path / "ft" / "train_log.json") == mtime


def _changed_weights(model: str, folder) -> str:
    """A copy of checkpoint ``model`` with one byte of its weights changed (same size, still loads)."""
    shutil.copytree(model, folder)
    weights = os.path.join(folder, "model.safetensors")
    data = bytearray(open(weights, "rb").read())
    data[-1] ^= 1
    with open(weights, "wb") as f:
        f.write(bytes(data))
    return str(folder)


def test_rerun_with_other_inputs_never_returns_the_old_checkpoint(tiny_model_path, toy_vit, tmp_path, capsys):
    """Issue 19: a finished output_dir came back for another model, other data and learning_rate=123."""
    from hf_vitcurate.errors import NotFoundError, StaleStateError

    out = tmp_path / "ft"
    recipe = dict(FAST, max_steps=1)
    assert train(toy_vit, model=tiny_model_path, output_dir=out, **recipe) == str(out)
    log_path = out / "train_log.json"
    mtime = os.path.getmtime(log_path)
    assert train(toy_vit, model=tiny_model_path, output_dir=out, **dict(recipe, progress=True, num_threads=1)) == str(out)
    other = _changed_weights(tiny_model_path, tmp_path / "other-base")
    hint = r"use restart=True or another output_dir"
    with pytest.raises(StaleStateError, match=r"model changed \(sha256:.*" + hint):
        train(toy_vit, model=other, output_dir=out, **recipe)
    with pytest.raises(StaleStateError, match=r"^output_dir .* data changed \(sha256:"):
        train(toy_vit.select(range(16)), model=tiny_model_path, output_dir=out, **recipe)
    with pytest.raises(StaleStateError, match=r"params changed: learning_rate 0.003 -> 123;"):
        train(toy_vit, model=tiny_model_path, output_dir=out, **dict(recipe, learning_rate=123))
    with pytest.raises(NotFoundError, match="no such file or folder"):
        train(toy_vit, model=tmp_path / "no-such-model", output_dir=tmp_path / "never", **recipe)
    assert not (tmp_path / "never").exists() and os.path.getmtime(log_path) == mtime
    # On the command line: one line naming the flags, exit code 2, no traceback.
    from hf_vitcurate.cli import main

    toy_vit.save_to_disk(str(tmp_path / "rows"))
    argv = ["train", str(tmp_path / "rows"), "--model", tiny_model_path, "--output", str(out), "--max-steps", "1",
            "--batch-size", "8", "--warmup-ratio", "0", "--log-steps", "1", "--learning-rate", "123", "--no-progress"]
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "params changed: --learning-rate 0.003 -> 123" in err and err.strip().endswith("use --restart or another output_dir")
    assert os.path.getmtime(log_path) == mtime
    # restart=True recomputes with the new inputs and records them.
    train(toy_vit, model=tiny_model_path, output_dir=out, restart=True, **dict(recipe, learning_rate=0.01))
    log = json.loads(log_path.read_text())
    assert log["recipe"]["learning_rate"] == 0.01 and log["identity"]["params"]["learning_rate"] == 0.01


def test_resume_with_other_inputs_is_refused(tiny_model_path, toy_vit, tmp_path, crash_after_step):
    from hf_vitcurate.errors import StaleStateError

    recipe = dict(FAST, max_steps=2, save_steps=1)
    restore = crash_after_step(1)
    with pytest.raises(KeyboardInterrupt):
        train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "ft", **recipe)
    restore()
    with pytest.raises(StaleStateError, match="params changed: batch_size 8 -> 4"):
        train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "ft", **dict(recipe, batch_size=4))
    train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "ft", **recipe)
    assert json.loads((tmp_path / "ft" / "train_log.json").read_text())["resumed_from_step"] == 1


def test_a_log_cut_short_by_a_kill_is_not_a_crash(tmp_path):
    """A kill while train_log.json or a step state is written leaves no half file to trip over."""
    from hf_vitcurate.models.training import STATE_FILE, recorded_identity

    step = tmp_path / "checkpoints" / "step-1"
    step.mkdir(parents=True)
    (step / STATE_FILE).write_text(json.dumps({"step": 1, "identity": {"key": "abc"}}))
    (tmp_path / "train_log.json").write_text('{"complete": true, "ident')
    assert recorded_identity(tmp_path) == ({"key": "abc"}, False)  # resumed from the step, not finished
    (step / STATE_FILE).write_text('{"step": 1, "iden')
    assert recorded_identity(tmp_path) == (None, False)


def _train_in_spawned_process(model, data_path, out, recipe):
    from datasets import load_from_disk

    return train(load_from_disk(data_path), model=model, output_dir=out, **recipe)


@pytest.mark.slow
def test_dataloader_workers_in_a_spawned_process(tiny_model_path, toy_vit, tmp_path):
    """num_workers > 0 where workers start by spawn (a spawned parent; Python 3.14's default
    forkserver): the collate function must pickle (it was a closure), and the weights match
    a run that encodes in the main process."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from safetensors.torch import load_file

    toy_vit.save_to_disk(tmp_path / "data")
    recipe = dict(FAST, max_steps=3, num_threads=1)
    plain = train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "plain", **recipe)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        workers = pool.submit(_train_in_spawned_process, tiny_model_path, str(tmp_path / "data"),
                              str(tmp_path / "workers"), dict(recipe, num_workers=2)).result()
    a, b = load_file(os.path.join(plain, "model.safetensors")), load_file(os.path.join(workers, "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_only_chosen_parts_change(tiny_model_path, toy_vit, tmp_path):
    from safetensors.torch import load_file

    out = train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "proj", max_steps=2, train_parts=("projector",), **FAST)
    before = load_file(os.path.join(tiny_model_path, "model.safetensors"))
    after = load_file(os.path.join(out, "model.safetensors"))
    for name, tensor in before.items():
        changed = not torch.equal(tensor, after[name])
        assert changed == (part_of(name) == "projector"), name


def test_resume_continues_from_last_checkpoint(tiny_model_path, toy_vit, tmp_path, crash_after_step):
    recipe = dict(FAST, max_steps=6, save_steps=2)
    straight = train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "straight", **recipe)

    restore = crash_after_step(4)
    with pytest.raises(KeyboardInterrupt):
        train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "resumed", **recipe)
    assert os.path.isdir(tmp_path / "resumed" / "checkpoints" / "step-4")
    restore()
    resumed = train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "resumed", **recipe)
    log = json.loads((tmp_path / "resumed" / "train_log.json").read_text())
    assert log["resumed_from_step"] == 4 and [h["step"] for h in log["history"]] == list(range(1, 7))
    # Same data order, optimizer state and weights: the resumed run ends where the straight one does.
    a, _ = load(straight)
    b, _ = load(resumed)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, msg=name)


def test_generate_answers_returns_strings_in_row_order(tiny_model_path, toy_vit, tmp_path):
    out = train(toy_vit, model=tiny_model_path, output_dir=tmp_path / "ft", max_steps=60, **FAST)
    rows = toy_vit.select(range(12))
    answers = generate_answers(rows, model=out, max_new_tokens=4, batch_size=5, progress=False)
    assert len(answers) == 12 and all(isinstance(a, str) for a in answers)
    # Single answers are the same as in a batch (left padding and the KV cache are right).
    assert generate_answers(rows.select([7]), model=out, max_new_tokens=4, progress=False) == [answers[7]]
    # 60 steps on one-word color answers: clearly above chance (1 in 4).
    truth = [c[-1]["value"] for c in rows["conversations"]]
    assert sum(a == t for a, t in zip(answers, truth)) >= 5


def test_evaluate_returns_named_scores(tiny_model_path):
    from hf_vitcurate.synthetic import benchmark, evaluate

    bench = benchmark(3, seed=0)
    scores = evaluate(bench, model=tiny_model_path, max_new_tokens=4, progress=False)
    assert scores and all(0.0 <= v <= 100.0 for v in scores.values())


@pytest.mark.slow
def test_accelerate_launch_two_processes(tiny_model_path, toy_vit, tmp_path, free_port):
    data = tmp_path / "data"
    toy_vit.save_to_disk(data)
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port),
        "-m", "hf_vitcurate.cli", "train", str(data), "--model", tiny_model_path, "--output", str(out),
        "--max-steps", "3", "--batch-size", "4", "--save-steps", "2", "--no-progress",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = json.loads((out / "train_log.json").read_text())
    assert log["processes"] == 2 and log["steps"] == 3 and log["rows_seen"] == 3 * 4 * 2
    assert not (out / "checkpoints").exists()
    load(out)
    shutil.rmtree(out)


def test_sincos_vision_positions_option(tmp_path, toy_vit):
    from transformers import AutoModelForImageTextToText

    from hf_vitcurate.testing import TOY_ARCHITECTURE, tiny_checkpoint

    path = tiny_checkpoint(toy_vit, output_dir=tmp_path / "sc", architecture=TOY_ARCHITECTURE, position_scale=1.0)
    pos = AutoModelForImageTextToText.from_pretrained(path).model.vision_tower.embeddings.position_embedding.weight
    rows = pos[1:].detach()
    # A fixed code: every patch position is distinct and of the requested scale.
    assert len({tuple(r.round(decimals=4).tolist()) for r in rows}) == len(rows)
    assert 0.5 < float(rows.norm(dim=1).mean()) < 10


@pytest.mark.slow
def test_cli_train_builds_a_tiny_checkpoint_with_a_pretrained_tower(toy_vit, tmp_path, capsys):
    from hf_vitcurate.cli import main
    from hf_vitcurate.testing.vision import REPORT_FILE

    toy_vit.save_to_disk(str(tmp_path / "rows"))
    model = tmp_path / "tiny"
    assert main(["train", str(tmp_path / "rows"), "--model", str(model), "--output", str(tmp_path / "ft"), "--build-tiny",
                 "--recipe", "tiny", "--max-steps", "2", "--num-threads", "1", "--no-progress"]) == 0
    assert json.loads((model / REPORT_FILE).read_text())["steps"] == 300  # pretrain_vision_tower's default
    assert not (model / "lm_pretraining.json").exists()  # the text stage is research (research/)
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    # The fine-tune keeps the description of how its base was built.
    assert (tmp_path / "ft" / REPORT_FILE).exists()


def test_train_tiny_builds_once_and_skips_stage_1_without_captions(tmp_path):
    from hf_vitcurate.testing import toy_dataset, train_tiny

    ds = toy_dataset(8)  # short_vqa and text_only rows: no captions, so no stage 1
    path = train_tiny(ds, work_dir=tmp_path / "m", vision_steps=0)
    assert path == str(tmp_path / "m" / "tiny") and not (tmp_path / "m" / "f_pre").exists()
    assert not (tmp_path / "m" / "tiny.partial").exists()
    mtime = os.path.getmtime(os.path.join(path, "model.safetensors"))
    assert train_tiny(ds, work_dir=tmp_path / "m", vision_steps=0) == path
    assert os.path.getmtime(os.path.join(path, "model.safetensors")) == mtime  # reused, not rebuilt


def test_train_tiny_runs_stage_1_on_captions(tmp_path):
    from hf_vitcurate.testing import toy_dataset, train_tiny

    path = train_tiny(toy_dataset(8), work_dir=tmp_path / "m", vision_steps=0, captions=toy_dataset(4),
                      max_steps=1, batch_size=4, progress=False)
    assert path == str(tmp_path / "m" / "f_pre")
    log = json.loads((tmp_path / "m" / "f_pre" / "train_log.json").read_text())
    assert log["rows"] == 4 and log["recipe"]["train_parts"] == ["projector", "language"]


def test_one_update_rule_for_training_and_the_vision_tower(toy_vit, tmp_path, monkeypatch):
    """``train`` and ``pretrain_vision_tower`` both step through ``training.scheduled_update``."""
    from hf_vitcurate.models import training
    from hf_vitcurate.testing import pretrain_vision_tower, tiny_checkpoint

    calls = []
    real = training.scheduled_update

    def counted(optimizer, **kw):
        calls.append(kw["step"])
        return real(optimizer, **kw)

    monkeypatch.setattr(training, "scheduled_update", counted)
    base = tiny_checkpoint(toy_vit, output_dir=tmp_path / "b", vision_width=32, vision_mlp=64, vision_heads=2,
                           text_width=64, text_mlp=128, text_layers=1, text_heads=2)
    pretrain_vision_tower(base, steps=3, batch_size=4, held_out=4, progress=False)
    assert calls == [0, 1, 2]
    train(toy_vit, model=base, output_dir=tmp_path / "ft", max_steps=2, **FAST)
    assert calls == [0, 1, 2, 0, 1]


def test_scheduled_update_sets_each_groups_rate_and_clips():
    from hf_vitcurate.models.training import scheduled_update

    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [a], "base_lr": 1.0}, {"params": [b]}], lr=0.0)
    a.grad, b.grad = torch.tensor([30.0, 40.0]), torch.tensor([0.0, 0.0])  # norm 50
    recipe = make_recipe(learning_rate=0.5, warmup_ratio=0.0, lr_schedule="constant", max_grad_norm=5.0)
    scheduled_update(opt, step=3, total=10, recipe=recipe)
    assert [g["lr"] for g in opt.param_groups] == [1.0, 0.5]  # base_lr, else the recipe's rate
    torch.testing.assert_close(a.detach(), torch.tensor([-3.0, -4.0]))  # clipped to norm 5, lr 1
    assert a.grad is None and b.grad is None


def test_models_export_no_tiny_checkpoints():
    import hf_vitcurate.models as models
    import hf_vitcurate.testing as testing

    for name in ("tiny_checkpoint", "tiny_recipe", "train_tiny", "toy_dataset", "pretrain_vision_tower"):
        assert name not in models.__all__ and name in testing.__all__
    assert models.recipe_preset("tiny") == {k: v for k, v in testing.tiny_recipe().items()}
