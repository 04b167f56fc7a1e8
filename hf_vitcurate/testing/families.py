"""Tiny random checkpoints of every common VLM family, from one table.

:func:`tiny_family_checkpoint` builds, for a family of :data:`FAMILIES`, the real
``transformers`` model class from a small config, the real processor class (its image
processor at a small resolution), a byte-level BPE tokenizer trained locally with
``tokenizers`` that has the family's special tokens, and the family's chat template as
published with its checkpoints (:mod:`hf_vitcurate.testing.family_templates`); it saves
them with ``save_pretrained``. The package loads them back like a downloaded checkpoint
(``models.loading.load``: ``AutoProcessor`` / ``AutoModelForImageTextToText``).
:data:`UNSUPPORTED` builds checkpoints the package refuses (PaliGemma: no chat template), so
that tests can check the error.

Example:
    >>> sorted(FAMILIES)[:3]
    ['gemma3', 'idefics3', 'internvl']
    >>> path = tiny_family_checkpoint("qwen2_vl", "/tmp/tiny-qwen2-vl")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ConfigError
from . import family_templates as templates

# Words of the test conversations (tests/test_families.py) and of the templates, so that
# the tokenizer has merges for them; any other text still encodes (byte level).
CORPUS = (
    "What color is the circle? The circle is red. What shape is it? A square. Is there a cat? Yes, a cat. "
    "Describe the image. Compare the two images. The first is blue and the second is green. No. "
    "Answer briefly. Hello, how are you? I am fine. Count the objects. There are three objects. "
    "You are a helpful assistant. USER: ASSISTANT: [INST] [/INST] user assistant model system Assistant: User:"
)


@dataclass(frozen=True)
class Sizes:
    """Width and depth of both towers: 32 x 2 for tests; larger for speed measurements."""

    width: int = 32
    layers: int = 2

    @property
    def heads(self) -> int:
        return max(4, self.width // 64)

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    def text(self) -> dict:
        return dict(hidden_size=self.width, intermediate_size=4 * self.width, num_hidden_layers=self.layers,
                    num_attention_heads=self.heads, num_key_value_heads=max(1, self.heads // 2),
                    max_position_embeddings=4096)

    def vision(self) -> dict:
        return dict(hidden_size=self.width, intermediate_size=4 * self.width, num_hidden_layers=self.layers,
                    num_attention_heads=self.heads)

    def mrope(self) -> list[int]:
        """M-RoPE sections (time, height, width) summing to half a head, as Qwen's 16/24/24 of 64."""
        half = self.head_dim // 2
        return [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]


@dataclass(frozen=True)
class Family:
    """One row of the table: the classes, tokens and template of a family, and its config.

    ``tokens``: the tokenizer's named special tokens (``bos_token``, ``eos_token``,
    ``pad_token``, and extra ones such as ``image_token`` that the processor reads).
    ``build(tokenizer, sizes)``: ``(config, image_processor, processor_kwargs)``.
    """

    model_class: str
    processor_class: str
    template: str
    source: str  # the Hub checkpoint whose chat template and classes this family copies
    tokens: dict[str, str]
    build: Callable
    # What the template writes after an answer (labelled with it); "" when nothing (LLaVA-1.5).
    end_of_turn: str = ""
    # Tokens that are special but not named attributes (row/column markers, vision markers).
    extra: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)


def _ids(tok, *names):
    return [tok.convert_tokens_to_ids(n) for n in names]


def _clip(sz: Sizes, image_size: int, patch: int):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(**sz.vision(), image_size=image_size, patch_size=patch, projection_dim=sz.width)


def _siglip(sz: Sizes, image_size: int, patch: int):
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(**sz.vision(), image_size=image_size, patch_size=patch)


def _text(kind: str, tok, sz: Sizes, **extra):
    import transformers

    cls = getattr(transformers, kind)
    return cls(**sz.text(), vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.pad_token_id, **extra)


def _pil(name: str, **kwargs):
    """The family's PIL image processor (same pixels as the torchvision one; no torchvision needed)."""
    from ..models.loading import pil_image_processor_class

    return pil_image_processor_class(name)(**kwargs)


def _llava(tok, sz: Sizes):
    from transformers import LlavaConfig

    config = LlavaConfig(vision_config=_clip(sz, 28, 14), text_config=_text("LlamaConfig", tok, sz),
                         image_token_index=tok.convert_tokens_to_ids("<image>"), image_seq_length=4,
                         vision_feature_layer=-1)
    image = _pil("CLIPImageProcessor", size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    return config, image, dict(patch_size=14, vision_feature_select_strategy="default", num_additional_image_tokens=1)


PINPOINTS = [[28, 28], [28, 56], [56, 28]]


def _llava_next(tok, sz: Sizes):
    from transformers import LlavaNextConfig

    config = LlavaNextConfig(vision_config=_clip(sz, 28, 14), text_config=_text("MistralConfig", tok, sz),
                             image_token_index=tok.convert_tokens_to_ids("<image>"), image_grid_pinpoints=PINPOINTS,
                             vision_feature_layer=-1)
    image = _pil("LlavaNextImageProcessor", size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28},
                 image_grid_pinpoints=PINPOINTS)
    return config, image, dict(patch_size=14, vision_feature_select_strategy="default", num_additional_image_tokens=1)


def _llava_onevision(tok, sz: Sizes):
    from transformers import LlavaOnevisionConfig

    image_token, video_token = _ids(tok, "<image>", "<video>")
    config = LlavaOnevisionConfig(vision_config=_siglip(sz, 28, 14), text_config=_text("Qwen2Config", tok, sz),
                                  image_token_index=image_token, video_token_index=video_token,
                                  image_grid_pinpoints=PINPOINTS, vision_feature_layer=-1)
    image = _pil("LlavaOnevisionImageProcessor", size={"height": 28, "width": 28}, image_grid_pinpoints=PINPOINTS)
    return config, image, dict(num_image_tokens=4, vision_feature_select_strategy="full")


def _qwen_vl(generation: str):
    """Qwen2-VL, Qwen2.5-VL and Qwen3-VL: dynamic resolution (``image_grid_thw``), M-RoPE."""

    def build(tok, sz: Sizes):
        import transformers

        image_token, video_token, start, end = _ids(tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                    "<|vision_end|>")
        if generation == "3":
            rope = {"rope_type": "default", "mrope_section": sz.mrope(), "mrope_interleaved": True, "rope_theta": 5e6}
            vision = dict(depth=sz.layers, hidden_size=sz.width, intermediate_size=4 * sz.width,
                          out_hidden_size=sz.width, num_heads=sz.heads, patch_size=16, spatial_merge_size=2, num_position_embeddings=16, deepstack_visual_indexes=[1])
            text = dict(sz.text(), head_dim=sz.head_dim, vocab_size=len(tok), rope_parameters=rope, pad_token_id=tok.pad_token_id)
            config = transformers.Qwen3VLConfig(text_config=text, vision_config=vision, image_token_id=image_token,
                                                video_token_id=video_token, vision_start_token_id=start,
                                                vision_end_token_id=end, tie_word_embeddings=True)
            patch = 16
        else:
            rope = {"rope_type": "default", "mrope_section": sz.mrope(), "rope_theta": 1e6}
            if generation == "2":
                vision = dict(depth=sz.layers, embed_dim=sz.width, hidden_size=sz.width, num_heads=sz.heads,
                              mlp_ratio=4, patch_size=14,
                              spatial_merge_size=2)
            else:
                vision = dict(depth=sz.layers, hidden_size=sz.width, intermediate_size=4 * sz.width,
                              out_hidden_size=sz.width, num_heads=sz.heads,
                              patch_size=14, spatial_merge_size=2, window_size=56, fullatt_block_indexes=[1])
            text = dict(sz.text(), vocab_size=len(tok), rope_parameters=rope, bos_token_id=tok.bos_token_id,
                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            cls = transformers.Qwen2VLConfig if generation == "2" else transformers.Qwen2_5_VLConfig
            config = cls(text_config=text, vision_config=vision, image_token_id=image_token,
                         video_token_id=video_token, vision_start_token_id=start, vision_end_token_id=end)
            patch = 14
        unit = patch * 2  # one merged token per (2 patches)^2
        image = _pil("Qwen2VLImageProcessor", patch_size=patch, merge_size=2, temporal_patch_size=2,
                     size={"shortest_edge": unit * unit, "longest_edge": 4 * unit * unit})
        return config, image, {}

    return build


def _idefics3(smol: bool):
    def build(tok, sz: Sizes):
        import transformers

        vision = dict(sz.vision(), image_size=28, patch_size=7)
        text = _text("LlamaConfig", tok, sz)
        cls = transformers.SmolVLMConfig if smol else transformers.Idefics3Config
        config = cls(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                     scale_factor=2)
        image = _pil("SmolVLMImageProcessor" if smol else "Idefics3ImageProcessor", size={"longest_edge": 56},
                     max_image_size={"longest_edge": 28}, do_image_splitting=True)
        return config, image, dict(image_seq_len=4)

    return build


def _gemma3(tok, sz: Sizes):
    from transformers import Gemma3Config, Gemma3TextConfig

    boi, eoi, image_token = _ids(tok, "<start_of_image>", "<end_of_image>", "<image_soft_token>")
    text = Gemma3TextConfig(**sz.text(), head_dim=sz.head_dim, vocab_size=len(tok), sliding_window=64, bos_token_id=tok.bos_token_id,
                            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = Gemma3Config(text_config=text, vision_config=_siglip(sz, 28, 7), mm_tokens_per_image=4, boi_token_index=boi,
                          eoi_token_index=eoi, image_token_index=image_token)
    image = _pil("Gemma3ImageProcessor", size={"height": 28, "width": 28})
    return config, image, dict(image_seq_length=4)


def _internvl(tok, sz: Sizes):
    from transformers import InternVLConfig

    vision = dict(sz.vision(), image_size=[28, 28], patch_size=[7, 7])
    config = InternVLConfig(vision_config=vision, text_config=_text("Qwen2Config", tok, sz).to_dict(),
                            image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=4,
                            downsample_ratio=0.5, vision_feature_layer=-1)
    image = _pil("GotOcr2ImageProcessor", size={"height": 28, "width": 28}, crop_to_patches=True, max_patches=2)
    return config, image, dict(image_seq_length=4)


def _paligemma(tok, sz: Sizes):
    from transformers import PaliGemmaConfig
    from transformers.models.paligemma.processing_paligemma import EXTRA_TOKENS

    tok.add_tokens(EXTRA_TOKENS)  # the processor adds its location/segment tokens: the vocabulary holds them
    text = _text("GemmaConfig", tok, sz, head_dim=sz.head_dim)
    config = PaliGemmaConfig(vision_config=_siglip(sz, 28, 7), text_config=text,
                             image_token_index=tok.convert_tokens_to_ids("<image>"), projection_dim=sz.width)
    image = _pil("SiglipImageProcessor", size={"height": 28, "width": 28}, image_seq_length=16)
    return config, image, {}


_IM = dict(bos_token="<|endoftext|>", eos_token="<|im_end|>", pad_token="<|endoftext|>")
_QWEN_TOKENS = dict(_IM, image_token="<|image_pad|>", video_token="<|video_pad|>",
                    vision_start_token="<|vision_start|>", vision_end_token="<|vision_end|>")
_LLAMA = dict(bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
_ROWS = tuple(f"<row_{r}_col_{c}>" for r in range(1, 3) for c in range(1, 3))
_IDEFICS = dict(image_token="<image>", fake_image_token="<fake_token_around_image>", global_image_token="<global-img>",
                end_of_utterance_token="<end_of_utterance>")

FAMILIES: dict[str, Family] = {
    "llava": Family("LlavaForConditionalGeneration", "LlavaProcessor", templates.LLAVA_15, "llava-hf/llava-1.5-7b-hf",
                    dict(_LLAMA, image_token="<image>"), _llava),
    "llava_next": Family("LlavaNextForConditionalGeneration", "LlavaNextProcessor", templates.LLAVA_NEXT,
                         "llava-hf/llava-v1.6-mistral-7b-hf", dict(_LLAMA, image_token="<image>"), _llava_next,
                         end_of_turn="<\\s>"),
    "llava_onevision": Family("LlavaOnevisionForConditionalGeneration", "LlavaOnevisionProcessor",
                              templates.LLAVA_ONEVISION, "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
                              dict(_IM, image_token="<image>", video_token="<video>"), _llava_onevision,
                              end_of_turn="<|im_end|>"),
    "qwen2_vl": Family("Qwen2VLForConditionalGeneration", "Qwen2VLProcessor", templates.QWEN2_VL,
                       "Qwen/Qwen2-VL-2B-Instruct", _QWEN_TOKENS, _qwen_vl("2"), end_of_turn="<|im_end|>"),
    "qwen2_5_vl": Family("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor", templates.QWEN2_VL,
                         "Qwen/Qwen2.5-VL-3B-Instruct", _QWEN_TOKENS, _qwen_vl("2.5"), end_of_turn="<|im_end|>"),
    "qwen3_vl": Family("Qwen3VLForConditionalGeneration", "Qwen3VLProcessor", templates.QWEN3_VL,
                       "Qwen/Qwen3-VL-2B-Instruct", _QWEN_TOKENS, _qwen_vl("3"), end_of_turn="<|im_end|>"),
    "idefics3": Family("Idefics3ForConditionalGeneration", "Idefics3Processor", templates.IDEFICS3,
                       "HuggingFaceM4/Idefics3-8B-Llama3",
                       dict(bos_token="<|begin_of_text|>", eos_token="<end_of_utterance>", pad_token="<|end_of_text|>",
                            **_IDEFICS), _idefics3(smol=False), end_of_turn="<end_of_utterance>", extra=_ROWS),
    "smolvlm": Family("SmolVLMForConditionalGeneration", "SmolVLMProcessor", templates.SMOLVLM,
                      "HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
                      dict(bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<|im_end|>",
                           unk_token="<|endoftext|>", video_token="<video>", **_IDEFICS), _idefics3(smol=True),
                      end_of_turn="<end_of_utterance>", extra=_ROWS),
    "gemma3": Family("Gemma3ForConditionalGeneration", "Gemma3Processor", templates.GEMMA3, "google/gemma-3-4b-it",
                     dict(bos_token="<bos>", eos_token="<end_of_turn>", pad_token="<pad>", unk_token="<unk>",
                          boi_token="<start_of_image>", eoi_token="<end_of_image>", image_token="<image_soft_token>"),
                     _gemma3, end_of_turn="<end_of_turn>", extra=("<start_of_turn>",)),
    "internvl": Family("InternVLForConditionalGeneration", "InternVLProcessor", templates.INTERNVL,
                       "OpenGVLab/InternVL3-1B-hf",
                       dict(_IM, start_image_token="<img>", end_image_token="</img>", context_image_token="<IMG_CONTEXT>",
                            video_token="<video>"), _internvl, end_of_turn="<|im_end|>"),
}
# Families whose checkpoints the package refuses, with a one-line ConfigError at load: built so
# that a test can show the error. PaliGemma prompts are a prefix and a suffix, not a chat template.
UNSUPPORTED: dict[str, Family] = {
    "paligemma": Family("PaliGemmaForConditionalGeneration", "PaliGemmaProcessor", "", "google/paligemma-3b-mix-224",
                        dict(bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
                             image_token="<image>"), _paligemma, notes={"why": "no chat template"}),
}
# Aliases by the names people use for the checkpoints.
ALIASES = {"llava-1.5": "llava", "llava-next": "llava_next", "llava-onevision": "llava_onevision",
           "qwen2-vl": "qwen2_vl", "qwen2.5-vl": "qwen2_5_vl", "qwen3-vl": "qwen3_vl", "gemma-3": "gemma3",
           "smolvlm2": "smolvlm"}


def family(name: str) -> Family:
    """The table row of ``name`` (a key of :data:`FAMILIES`, :data:`UNSUPPORTED` or an alias); a ConfigError
    names the supported ones."""
    key = ALIASES.get(name, name)
    if key not in FAMILIES and key not in UNSUPPORTED:
        raise ConfigError(f"unknown model family {name!r}: pick one of {', '.join(sorted(FAMILIES))}")
    return FAMILIES.get(key) or UNSUPPORTED[key]


def family_tokenizer(fam: Family, vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on :data:`CORPUS` with the family's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    named = dict(fam.tokens)
    specials = list(dict.fromkeys([*named.values(), *fam.extra]))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS], trainer)
    base = {k: named.pop(k) for k in ("bos_token", "eos_token", "pad_token", "unk_token") if k in named}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **base, extra_special_tokens=named, model_max_length=512)


def processor_class(name: str):
    """The processor class ``name``, usable without torchvision (see ``models.loading.image_only``)."""
    import transformers

    from ..models.loading import image_only

    return image_only(getattr(transformers, name))


def tiny_family_checkpoint(family_name: str, output_dir: str | os.PathLike, *, seed: int = 0, width: int = 32,
                           layers: int = 2) -> str:
    """Build and save a tiny random checkpoint of ``family_name`` in ``output_dir``; return its path.

    ``width`` and ``layers`` size both towers (32 x 2: a few hundred thousand parameters;
    ``benchmarks/bench_families.py`` measures speed at 512 x 4).

    >>> tiny_family_checkpoint("gemma3", "/tmp/tiny-gemma3")   # doctest: +SKIP
    '/tmp/tiny-gemma3'
    """
    import torch
    import transformers

    fam = family(family_name)
    tok = family_tokenizer(fam)
    config, image_processor, kwargs = fam.build(tok, Sizes(width, layers))
    torch.manual_seed(seed)
    model = getattr(transformers, fam.model_class)(config)
    gen = model.generation_config
    gen.pad_token_id, gen.eos_token_id, gen.bos_token_id = tok.pad_token_id, tok.eos_token_id, tok.bos_token_id
    processor = processor_class(fam.processor_class)(image_processor=image_processor, tokenizer=tok,
                                                     chat_template=fam.template or None, **kwargs)
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir
