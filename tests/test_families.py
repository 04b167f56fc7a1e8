"""Every VLM family of testing.families through the same code: labels, necessity, generation, training.

Each family is a tiny random checkpoint of the real ``transformers`` classes with the chat
template its checkpoints publish, loaded back through ``models.loading.load`` (AutoProcessor /
AutoModelForImageTextToText). The rows mix one image, two images, no image and two turns.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, load_from_disk
from PIL import Image as PILImage, ImageDraw

from hf_vitcurate import FEATURES
from hf_vitcurate.errors import ConfigError
from hf_vitcurate.models.chat import IGNORE_INDEX, encode, model_inputs, render, to_messages
from hf_vitcurate.models.generate import greedy_batch
from hf_vitcurate.models.loading import load, load_processor
from hf_vitcurate.stages import necessity
from hf_vitcurate.testing.families import FAMILIES, family, family_tokenizer, tiny_family_checkpoint

# LLaVA-NeXT's published template writes a literal '<\s>', which Jinja reads as an unknown escape.
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
NAMES = sorted(FAMILIES)
# The fast lane runs the model-level checks on two families that differ most from LLaVA
# (per-row image lists, dynamic resolution); the others run with the slow tests.
FAST = ("gemma3", "qwen2_vl")
SOME_SLOW = [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in NAMES]


def picture(color: str, size=(40, 32)) -> bytes:
    im = PILImage.new("RGB", size, "white")
    ImageDraw.Draw(im).ellipse([4, 4, size[0] - 4, size[1] - 4], fill=color)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def turn(human: str, gpt: str) -> list[dict]:
    return [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]


KINDS = {
    "image": ([picture("red")], turn("<image>\nWhat color is the circle?", "The circle is red.")),
    "multi": ([picture("blue", (32, 48)), picture("green")],
              turn("<image>\n<image>\nCompare the two images.", "The first is blue and the second is green.")),
    "text": ([], turn("Hello, how are you?", "I am fine.")),
    "turns": ([picture("yellow")], turn("<image>\nWhat shape is it?", "A square.") + turn("Is there a cat?", "Yes, a cat.")),
}


def rows(kinds=("image", "multi", "text", "turns", "text", "turns", "multi", "image")) -> Dataset:
    out = {k: [] for k in FEATURES}
    for i, kind in enumerate(kinds):
        images, conv = KINDS[kind]
        out["id"].append(f"{kind}-{i}")
        out["images"].append([{"bytes": b, "path": None} for b in images])
        out["conversations"].append(conv)
        out["source"].append("families")
        out["task"].append(kind)
    return Dataset.from_dict(out, features=FEATURES)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """``checkpoint(name)``: the family's tiny checkpoint, built once per test module."""
    built: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in built:
            built[name] = tiny_family_checkpoint(name, tmp_path_factory.mktemp(name))
        return built[name]

    return get


def labelled_runs(labels: torch.Tensor) -> list[list[int]]:
    runs, current = [], []
    for t in labels.tolist():
        if t != IGNORE_INDEX:
            current.append(t)
        elif current:
            runs, current = runs + [current], []
    return runs + ([current] if current else [])


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_is_the_real_family(checkpoint, name):
    fam = family(name)
    model, processor = load(checkpoint(name), device="cpu")
    assert type(model).__name__ == fam.model_class and type(processor).__name__ == fam.processor_class
    assert processor.chat_template == fam.template
    assert sum(p.numel() for p in model.parameters()) < 500_000


@pytest.mark.parametrize("name", NAMES)
def test_labels_are_exactly_the_answers_and_their_end_of_turn(checkpoint, name):
    """Independent of the span logic: the rendered template says what each answer is followed by
    (the family's end-of-turn text); decoding each run of labelled tokens gives exactly that."""
    processor = load_processor(checkpoint(name))
    ds = rows()
    batch = encode(processor, ds[:])
    eot = family(name).end_of_turn
    tokenizer = processor.tokenizer
    for i, conv in enumerate(ds["conversations"]):
        rendered = processor.apply_chat_template(
            [{"role": "user" if t["from"] == "human" else "assistant", "content": [{"type": "text", "text": t["value"]}]}
             for t in conv], tokenize=False)
        answers = [t["value"] for t in conv if t["from"] == "gpt"]
        assert all(a + eot in rendered for a in answers)  # the template writes the marker right after the answer
        runs = labelled_runs(batch["labels"][i])
        assert [tokenizer.decode(r).strip() for r in runs] == [a + eot for a in answers], (name, i)
        labelled = batch["labels"][i] != IGNORE_INDEX
        assert bool((batch["attention_mask"][i].bool() | ~labelled).all())  # never on padding


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("moved", [False, True])
def test_render_is_the_processors_own_chat_template_text(checkpoint, name, moved, monkeypatch):
    """chat.render calls transformers' Jinja renderer directly: the text must stay apply_chat_template's,
    also where a release moved the renderer (``moved``: render falls back to apply_chat_template)."""
    from hf_vitcurate.models import chat

    if moved:
        monkeypatch.setattr(chat, "_jinja_renderer", lambda: None)
    processor = load_processor(checkpoint(name))
    for conv in [KINDS[kind][1] for kind in KINDS]:
        for k in range(1, len(conv) + 1):
            for prompt in (False, True):
                expected = processor.apply_chat_template(to_messages(conv[:k]), tokenize=False,
                                                         add_generation_prompt=prompt)
                assert render(processor, conv[:k], add_generation_prompt=prompt) == expected, (name, k, prompt)


def reference_nll(path: str, ds: Dataset) -> tuple[list[float], list[int]]:
    """One row at a time, float64 log-softmax, summed over the labelled tokens."""
    model, processor = load(path, dtype="float32", device="cpu")
    sums, counts = [], []
    for i in range(len(ds)):
        batch = encode(processor, ds[i : i + 1])
        with torch.no_grad():
            logp = torch.log_softmax(model(**model_inputs(batch, model)).logits[0].double(), -1)
        labels = batch["labels"][0]
        picked = [(t, int(labels[t])) for t in range(1, len(labels)) if labels[t] != IGNORE_INDEX]
        sums.append(-sum(logp[t - 1, tok].item() for t, tok in picked))
        counts.append(len(picked))
    return sums, counts


@pytest.mark.parametrize("name", SOME_SLOW)
def test_necessity_equals_independent_per_row_loss(checkpoint, name):
    ds = rows()
    scored = necessity(ds, model=checkpoint(name), batch_size=3, dtype="float32")
    sums, counts = reference_nll(checkpoint(name), ds)
    assert list(scored["necessity_tokens"]) == counts
    got = np.array(scored["necessity"])
    assert np.all(np.abs(got - sums) <= 1e-4 * np.abs(sums)), (got, sums)
    assert set(scored["necessity_flag"]) == {""}


class WholeLogits(torch.nn.Module):
    """The model behind a ``forward(**inputs)`` without ``logits_to_keep`` (a wrapper a user may write)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.device, self.dtype = model.device, model.dtype

    def forward(self, **inputs):
        return self.model(**inputs)


def test_row_nll_on_answer_positions_only_equals_whole_logits(checkpoint):
    """row_nll sends only answer-predicting positions through the LM head (logits_to_keep); a model
    whose forward cannot take it gets whole logits: both give the same sums and counts."""
    from hf_vitcurate.models.loss import row_nll

    model, processor = load(checkpoint("qwen2_vl"), dtype="float32", device="cpu")
    batch = encode(processor, rows()[:])
    kept, whole = row_nll(model, batch), row_nll(WholeLogits(model), batch)
    torch.testing.assert_close(kept[0], whole[0], rtol=1e-5, atol=1e-5)
    assert kept[1].tolist() == whole[1].tolist() and min(kept[1].tolist()) > 0


@pytest.mark.parametrize("name", SOME_SLOW)
def test_batched_greedy_generation_equals_one_row_at_a_time(checkpoint, name):
    model, processor = load(checkpoint(name), dtype="float32", device="cpu")
    model.eval()
    ds = rows(("turns", "text", "multi", "image")).cast_column("images", FEATURES["images"])
    together = greedy_batch(model, processor, ds[:], max_new_tokens=6)
    alone = [greedy_batch(model, processor, ds[i : i + 1], max_new_tokens=6)[0] for i in range(len(ds))]
    assert together == alone


def test_a_processor_that_refuses_a_row_with_several_images_says_so(checkpoint):
    """Every family of the table takes several images in a row (the 'multi' rows above); a processor
    that refuses one (here Gemma 3's, given two images but one image marker) is a ConfigError naming it."""
    processor = load_processor(checkpoint("gemma3"))
    batch = rows(("multi",))[:]
    batch["conversations"] = [turn("<image>\nCompare the two images.", "No.")]
    with pytest.raises(ConfigError, match="Gemma3Processor cannot encode rows with several images") as info:
        encode(processor, batch)
    assert f"rows {batch['id'][0]}:" in str(info.value) and "\n" not in str(info.value)  # names the row


def test_a_checkpoint_without_a_chat_template_fails_at_load_naming_its_processor(tmp_path):
    """PaliGemma's processor builds prompts from a prefix and a suffix and publishes no chat template:
    loading it is one ConfigError naming the processor class and model type, not a later ValueError."""
    path = tiny_family_checkpoint("paligemma", tmp_path / "paligemma")
    with pytest.raises(ConfigError, match=r"PaliGemmaProcessor \(paligemma\) has no chat template") as info:
        load_processor(path)
    assert "\n" not in str(info.value) and "chat_template" in str(info.value)
    with pytest.raises(ConfigError, match="PaliGemmaProcessor"):
        load(path, device="cpu")


@pytest.mark.parametrize("name", ["Idefics3ImageProcessor", "SmolVLMImageProcessorFast", "Qwen2VLImageProcessor"])
def test_pil_image_processor_class_needs_no_torchvision(name):
    """transformers 5.15 lists Idefics3's and SmolVLM's PIL image processors as needing torchvision
    (a placeholder class that raises); the class from its own module builds without it."""
    from hf_vitcurate.models.loading import pil_image_processor_class

    cls = pil_image_processor_class(name)
    assert cls.__name__ == name.removesuffix("Fast") + "Pil"
    assert cls().to_dict()["image_processor_type"].startswith(name.removesuffix("Fast"))


def test_unknown_family_names_the_known_ones():
    with pytest.raises(ConfigError, match="qwen2_vl"):
        family("qwen1-vl")
    assert family("qwen2.5-vl") is FAMILIES["qwen2_5_vl"]


def test_tokenizer_keeps_the_family_special_tokens_whole():
    tok = family_tokenizer(family("gemma3"))
    for token in ("<start_of_image>", "<end_of_turn>", "<start_of_turn>", "<image_soft_token>"):
        assert tok.convert_ids_to_tokens(tok(token, add_special_tokens=False)["input_ids"]) == [token]
    assert tok.boi_token == "<start_of_image>" and tok.image_token == "<image_soft_token>"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_train_two_steps_saves_and_resumes_to_the_same_weights(checkpoint, name, tmp_path, crash_after_step):
    from hf_vitcurate.models import training

    ds = rows()
    recipe = dict(max_steps=2, save_steps=1, batch_size=4, learning_rate=1e-2, warmup_ratio=0.0, progress=False,
                  log_steps=1, seed=0, dtype="float32")
    straight = training.train(ds, model=checkpoint(name), output_dir=tmp_path / "straight", **recipe)
    restore = crash_after_step(1)
    with pytest.raises(KeyboardInterrupt):
        training.train(ds, model=checkpoint(name), output_dir=tmp_path / "resumed", **recipe)
    restore()
    resumed = training.train(ds, model=checkpoint(name), output_dir=tmp_path / "resumed", **recipe)
    log = json.loads((tmp_path / "resumed" / "train_log.json").read_text())
    assert log["resumed_from_step"] == 1
    base, _ = load(checkpoint(name), device="cpu")
    a, _ = load(straight, device="cpu")
    b, _ = load(resumed, device="cpu")
    changed = False
    for (key, p), q, r in zip(a.named_parameters(), b.parameters(), base.parameters()):
        torch.testing.assert_close(p, q, msg=key)
        changed |= not torch.equal(p, r)
    assert changed  # two steps did train


@pytest.mark.slow
def test_two_cpu_processes_equal_one_on_qwen2_vl(checkpoint, tmp_path, free_port):
    path = checkpoint("qwen2_vl")
    rows().save_to_disk(str(tmp_path / "pool"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    score = ["-m", "hf_vitcurate.cli", "score", "necessity", str(tmp_path / "pool"), "--model", path,
             "--chunk-size", "3", "--dtype", "float32"]
    subprocess.run([sys.executable, *score, "--output", str(tmp_path / "one"), "--batch-size", "4",
                    "--work-dir", str(tmp_path / "w1")], env=env, check=True, capture_output=True)
    run = subprocess.run(["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port),
                          *score, "--output", str(tmp_path / "two"), "--batch-size", "3",
                          "--work-dir", str(tmp_path / "w2")], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "w2").iterdir() if p.is_dir()) == ["rank-00000", "rank-00001"]
    a, b = load_from_disk(str(tmp_path / "one")), load_from_disk(str(tmp_path / "two"))
    assert list(a["id"]) == list(b["id"])
    np.testing.assert_allclose(list(a["necessity"]), list(b["necessity"]), rtol=1e-4)


def test_auto_dtype_never_picks_emulated_bf16_on_a_cpu(monkeypatch):
    from hf_vitcurate.models import loading

    cpu = torch.device("cpu")
    monkeypatch.setattr(loading, "cpu_fast_bf16", lambda: False)  # a CPU without AVX512-BF16/AMX
    assert loading.resolve_dtype("auto", cpu) == torch.float32
    with pytest.warns(UserWarning, match="AVX512-BF16"):
        assert loading.resolve_dtype("bfloat16", cpu) == "bfloat16"
    monkeypatch.setattr(loading, "cpu_fast_bf16", lambda: True)
    assert loading.resolve_dtype("auto", cpu) == "auto"  # the checkpoint's own dtype


def test_a_bf16_checkpoint_loads_in_float32_on_a_cpu_without_native_bf16(checkpoint, tmp_path, monkeypatch):
    from hf_vitcurate.models import loading

    model, processor = load(checkpoint("qwen2_vl"), device="cpu")
    model.to(torch.bfloat16).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    monkeypatch.setattr(loading, "cpu_fast_bf16", lambda: False)
    assert loading.load_model(tmp_path, device="cpu").dtype == torch.float32
    monkeypatch.setattr(loading, "cpu_fast_bf16", lambda: True)
    assert loading.load_model(tmp_path, device="cpu").dtype == torch.bfloat16


def test_a_downloaded_video_capable_checkpoint_loads_without_torchvision(checkpoint, tmp_path):
    """Published Qwen2-VL checkpoints carry a video_preprocessor_config.json, which makes
    AutoProcessor require torchvision; the package loads their image side without it."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed: AutoProcessor itself loads the checkpoint")
    path = shutil.copytree(checkpoint("qwen2_vl"), tmp_path / "ckpt")
    (path / "video_preprocessor_config.json").write_text(json.dumps(
        {"video_processor_type": "Qwen2VLVideoProcessor", "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}))
    from transformers import AutoProcessor

    with pytest.raises(ImportError, match="[Tt]orchvision"):
        AutoProcessor.from_pretrained(path)
    processor = load_processor(path)
    assert type(processor).__name__ == "Qwen2VLProcessor" and processor.chat_template == family("qwen2_vl").template
    assert processor.get_attributes() == ["image_processor", "tokenizer"]
    # Older uploads keep the image processor's config, and the processor class, in preprocessor_config.json.
    config = json.loads((path / "processor_config.json").read_text())["image_processor"]
    (path / "preprocessor_config.json").write_text(json.dumps({**config, "processor_class": "Qwen2VLProcessor"}))
    (path / "processor_config.json").unlink()
    assert type(load_processor(path)).__name__ == "Qwen2VLProcessor"


def test_a_checkpoint_saved_without_torchvision_loads_where_torchvision_is_installed(checkpoint, monkeypatch):
    """Found on the GPU machine: a checkpoint saved where torchvision was missing has no
    video_preprocessor_config.json, and where torchvision is installed AutoProcessor then fails
    looking for it (the OSError below is transformers' own). Its image side still loads."""
    import importlib.util

    import transformers
    from transformers.video_processing_utils import BaseVideoProcessor

    path = checkpoint("qwen2_vl")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "torchvision" else real_find_spec(name, *a))

    def auto_processor(model, **_):  # what AutoProcessor does with torchvision installed, up to its failure
        BaseVideoProcessor.get_video_processor_dict(model)

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", auto_processor)
    with pytest.raises(OSError, match="video_preprocessor_config.json"):
        transformers.AutoProcessor.from_pretrained(path)
    processor = load_processor(path)
    assert processor.get_attributes() == ["image_processor", "tokenizer"]
    batch = encode(processor, rows(("image",))[:])
    assert batch["input_ids"].shape[0] == 1 and "image_grid_thw" in batch
    # Any other failure of AutoProcessor where torchvision is installed is the user's to see.
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("disk on fire")))
    with pytest.raises(OSError, match="disk on fire"):
        load_processor(path)


@pytest.mark.slow
def test_gpu_benchmark_script_runs_at_toy_size_on_a_cpu(tmp_path):
    """benchmarks/bench_gpu.sh is run where a GPU is lent: the same code at toy size must work here."""
    repo = Path(__file__).resolve().parents[1]
    run = subprocess.run(["bash", str(repo / "benchmarks" / "bench_gpu.sh"), "--toy", "--rows", "4", "--batch-size", "2",
                          "--new-tokens", "2"], env={**os.environ, "OUT": str(tmp_path / "gpu.json")},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report == json.loads((tmp_path / "gpu.json").read_text())
    for shape in ("qwen2_vl_2b", "llava_15_7b"):
        result = report["shapes"][shape]
        assert result["generated_tokens"] == 4 * 2 and 0 < result["padding_share"] < 1
        assert result["necessity_tokens_per_s"] > 0 and result["mfu"] > 0
        assert result["overlapped_s"] > 0 and result["stage_rows_per_s"] > 0 and result["stage_flagged_rows"] == 0


def test_the_engine_does_not_take_a_checkpoint_without_chat_template_for_a_text_lm(tmp_path):
    """The engine's local backend falls back to a text LM for checkpoints with no image-text class;
    an image-text checkpoint the package refuses (no chat template) keeps its own one-line error."""
    from hf_vitcurate.engine import LocalBackend

    path = tiny_family_checkpoint("paligemma", tmp_path / "paligemma")
    with pytest.raises(ConfigError, match="PaliGemmaProcessor"):
        LocalBackend(path).accepts_images
