"""A real, small LLaVA checkpoint built locally: tokenizer, processor, model, config.

:func:`tiny_checkpoint` trains a byte-level BPE tokenizer with ``tokenizers`` on the
corpus text, builds a ``LlavaForConditionalGeneration`` (a CLIP vision tower, a two-layer
MLP projector and a Llama language model, a few million parameters, random weights) and
a ``LlavaProcessor`` (CLIP image processor + that tokenizer + a chat template) and saves
them with ``save_pretrained``. Everything else in the package loads it back with
``AutoProcessor`` / ``AutoModelForImageTextToText.from_pretrained(path)``, exactly as it
loads ``llava-hf/llava-1.5-7b-hf``: nothing downstream knows it is tiny.

Example:
    >>> path = tiny_checkpoint(["<image>What color is the circle?", "red"], output_dir="ckpt/tiny")  # doctest: +SKIP
    >>> model = AutoModelForImageTextToText.from_pretrained(path)                                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Iterable

from ..errors import ConfigError
from ..schema import IMAGE_TOKEN

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
USER, ASSISTANT = "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, IMAGE_TOKEN, USER, ASSISTANT]

# Plain and short: every token of the prompt costs compute on a 2-core CPU. Messages use
# the HF content-list format; image items render as the image placeholder, in content
# order ("first") or after the message's text ("last", see TinyArchitecture.image_position).
_ITEMS = (
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}"
)
_ITEMS_IMAGES_LAST = (
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>{% endif %}{% endfor %}"
)


def chat_template(image_position: str = "first") -> str:
    """The tiny chat template: ``<|user|>…<|assistant|>answer</s>`` per turn."""
    items = {"first": _ITEMS, "last": _ITEMS_IMAGES_LAST}[image_position]
    return (
        "{% for message in messages %}"
        "{% if message['role'] == 'assistant' %}<|assistant|>{% else %}<|user|>{% endif %}"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}" + items + "{% endif %}"
        "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )


CHAT_TEMPLATE = chat_template("first")


@dataclass
class TinyArchitecture:
    """Sizes of a tiny checkpoint; the defaults are the measured choice for ShapesWorld.

    Why (research/RESULTS.md, "Tiny models", has the runs): ShapesWorld puts at most one
    object in each cell of a 3×3 grid of a 64-px image, so a 63-px input with 21-px patches
    gives one image token per cell holding one whole object (9 tokens + CLS instead of 64 + CLS
    at patch 8: 2.5x cheaper rows), and a tower pretrained on the cells
    (:func:`hf_vitcurate.testing.pretrain_vision_tower`) tells each cell's object
    apart at ~99.9%. Position embeddings start as a fixed sin-cos code (``position_scale``)
    so that "which cell" is explicit even before the tower is trained. A 192-wide, 6-head,
    4-layer Llama learned grounding fastest per second among 128/192/256 widths.
    """

    image_size: int = 63
    patch_size: int = 21
    vision_width: int = 128
    vision_layers: int = 2
    vision_heads: int = 4
    vision_mlp: int = 512
    text_width: int = 192
    text_layers: int = 4
    text_heads: int = 6
    text_mlp: int = 512
    vocab_size: int = 1024
    max_positions: int = 1024
    # "full" keeps the CLS token as one more image token: a global summary for counting.
    feature_strategy: str = "full"
    # Vision position embeddings: 2-D sin-cos of this size per dimension instead of CLIP's
    # small random init (0 keeps CLIP's). Makes "which cell" explicit in every image token.
    position_scale: float = 0.5
    # Where a user turn's images go: "first" (content order, as LLaVA) or "last" (after
    # the question, so image tokens can attend to it in the causal LM; measured: no gain).
    image_position: str = "first"


TINY_ARCHITECTURE = TinyArchitecture()


def corpus_texts(corpus) -> Iterable[str]:
    """Texts of ``corpus``: strings, or every turn of a canonical ``Dataset``/``DatasetDict``."""
    from datasets import Dataset, DatasetDict

    if isinstance(corpus, DatasetDict):
        for split in corpus.values():
            yield from corpus_texts(split)
    elif isinstance(corpus, Dataset):
        convs = corpus.select_columns(["conversations"]).with_format("arrow")
        for table in convs.iter(batch_size=10_000):
            import pyarrow.compute as pc

            turns = pc.list_flatten(table.column("conversations").combine_chunks())
            values = turns.field("value")
            yield from (v for v in values.to_pylist() if v)
    else:
        yield from corpus


def train_tokenizer(corpus, vocab_size: int = 1024):
    """A byte-level BPE tokenizer (any text encodes; frequent words become one token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Texts are cut at image placeholders, as the chat template renders them (see chat.to_messages).
    pieces = (p.strip("\n") for t in corpus_texts(corpus) for p in t.split(IMAGE_TOKEN))
    tok.train_from_iterator(pieces, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        model_max_length=TINY_ARCHITECTURE.max_positions,
    )


def _image_processor(size: int):
    """CLIP image processor at ``size``×``size`` (fast/torchvision when installed, else PIL)."""
    import importlib.util

    import transformers

    if importlib.util.find_spec("torchvision") is None:
        cls = transformers.CLIPImageProcessorPil  # same outputs; avoids a fallback warning
    else:
        cls = transformers.CLIPImageProcessor
    return cls(
        size={"height": size, "width": size},
        crop_size={"height": size, "width": size},
        do_center_crop=False,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def _sincos_positions(vision_tower, scale: float) -> None:
    """Overwrite a CLIP tower's patch position embeddings with a fixed 2-D sin-cos code.

    CLIP initialises them with std 0.02 (norm ~0.2) against patch embeddings of norm ~7,
    so a tower that is not trained (see the tiny recipe) would barely tell cells apart.
    """
    import torch

    emb = vision_tower.embeddings
    side = int(round(emb.num_patches**0.5))
    dim = emb.embed_dim
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / max(1, quarter))
    ys, xs = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32), indexing="ij")
    parts = []
    for coord in (ys.flatten(), xs.flatten()):
        angles = coord[:, None] * omega[None] * (3.14159 / max(1, side))  # spread one side over half a turn
        parts += [angles.sin(), angles.cos()]
    code = torch.cat(parts, dim=1)
    code = torch.nn.functional.pad(code, (0, dim - code.shape[1])) * scale
    with torch.no_grad():
        emb.position_embedding.weight[1:] = code  # row 0 is the CLS position


def _configs(arch: TinyArchitecture, tokenizer):
    """The ``LlavaConfig`` of ``arch``: a CLIP tower, a Llama language model sized to ``tokenizer``."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    n_patches = (arch.image_size // arch.patch_size) ** 2
    vision = CLIPVisionConfig(
        hidden_size=arch.vision_width,
        intermediate_size=arch.vision_mlp,
        num_hidden_layers=arch.vision_layers,
        num_attention_heads=arch.vision_heads,
        image_size=arch.image_size,
        patch_size=arch.patch_size,
        projection_dim=arch.vision_width,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.text_width,
        intermediate_size=arch.text_mlp,
        num_hidden_layers=arch.text_layers,
        num_attention_heads=arch.text_heads,
        num_key_value_heads=arch.text_heads,
        max_position_embeddings=arch.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,  # fewer parameters; the vocabulary is small anyway
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=n_patches + (arch.feature_strategy == "full"),
        # Last layer: the tiny tower is pretrained for this output (LLaVA uses CLIP's -2).
        vision_feature_layer=-1,
        vision_feature_select_strategy=arch.feature_strategy,
        tie_word_embeddings=True,
    )


def tiny_checkpoint(
    corpus,
    *,
    output_dir: str | os.PathLike,
    architecture: TinyArchitecture | None = None,
    seed: int = 0,
    **sizes,
) -> str:
    """Build and save a tiny LLaVA checkpoint in ``output_dir``; return its path.

    ``corpus``: strings or a canonical dataset (all turns are used) to train the tokenizer.
    ``architecture`` or keyword ``sizes`` (fields of :class:`TinyArchitecture`, e.g.
    ``image_size=64, patch_size=8, text_layers=4``) override :data:`TINY_ARCHITECTURE`.

    >>> path = tiny_checkpoint(["<image>What shape is it?", "A circle."], output_dir="/tmp/tiny",
    ...                        vision_layers=1, text_layers=1)  # doctest: +SKIP
    """
    import torch
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    arch = TinyArchitecture(**{**asdict(architecture or TINY_ARCHITECTURE), **sizes})
    if arch.image_size % arch.patch_size:
        raise ConfigError(f"image_size {arch.image_size} is not a multiple of patch_size {arch.patch_size}")
    tokenizer = train_tokenizer(corpus, arch.vocab_size)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(_configs(arch, tokenizer))
    if arch.position_scale:
        _sincos_positions(model.model.vision_tower, arch.position_scale)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    processor = LlavaProcessor(
        image_processor=_image_processor(arch.image_size),
        tokenizer=tokenizer,
        patch_size=arch.patch_size,
        vision_feature_select_strategy=arch.feature_strategy,
        chat_template=chat_template(arch.image_position),
        num_additional_image_tokens=1,  # CLIP's CLS token
    )
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    with open(os.path.join(output_dir, "tiny_architecture.json"), "w") as f:
        json.dump({**asdict(arch), "seed": seed, "parameters": sum(p.numel() for p in model.parameters())}, f, indent=2)
    return output_dir
