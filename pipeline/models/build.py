"""Random models of the real VLM architectures: tiny ones for tests, published sizes for benchmarks.

Configs and a byte-level BPE tokenizer are built in-process, so nothing is downloaded; tiny models are
saved as safetensors and loaded back through the same `from_pretrained` path as real checkpoints.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

FAMILIES = ("smolvlm", "qwen2_vl", "qwen2_5_vl", "llava_onevision")

# Family special tokens, spelled as the real checkpoints spell them so prompts build identically.
_QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]
SPECIAL_TOKENS: dict[str, list[str]] = {
    "smolvlm": ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
                "<global-img>", "<video>"] + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)],
    "qwen2_vl": _QWEN_SPECIALS,
    "qwen2_5_vl": _QWEN_SPECIALS,
    "llava_onevision": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"],
}
EOS_TOKEN = {"smolvlm": "<end_of_utterance>", "qwen2_vl": "<|im_end|>", "qwen2_5_vl": "<|im_end|>",
             "llava_onevision": "<|im_end|>"}

_CORPUS = [
    "Yes. No. Yes, it is. No, it is not. Is this clip relevant to the question? Answer Yes or No.",
    "User: Describe this clip in one sentence. Assistant: A person walks into the kitchen and opens the door.",
    "The previous clip showed a red car on a road; now a man talks to a woman near a table.",
    "Question: what is written on the screen at 00:41:08? The sign says OPEN 24 HOURS.",
    "[00:00:00-00:00:04] frames from a video. The video shows people, cars, text, numbers 0123456789.",
    "system user assistant You are a helpful assistant. Frame from 00:02: the scene changes.",
]


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny model: small enough for ms forwards, big enough to keep every code path."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vision_hidden: int = 32
    vocab: int = 400


def build_tokenizer(family: str, vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on a few sentences, with the family's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = SPECIAL_TOKENS[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS_TOKEN[family], pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)


def _ids(tokenizer, *tokens: str) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens]


def tiny_config(family: str, tokenizer, spec: TinySpec = TinySpec()):
    """Config of a tiny random `family` model whose special-token ids match `tokenizer`."""
    vocab = len(tokenizer)
    text = dict(hidden_size=spec.hidden, num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                num_key_value_heads=spec.kv_heads, intermediate_size=2 * spec.hidden, vocab_size=vocab,
                max_position_embeddings=4096, tie_word_embeddings=False,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    vision = dict(hidden_size=spec.vision_hidden, num_hidden_layers=spec.layers, num_attention_heads=2,
                  intermediate_size=2 * spec.vision_hidden)
    if family == "smolvlm":
        from transformers import SmolVLMConfig

        image_id, = _ids(tokenizer, "<image>")
        # 64 px / 8 px patches = 8x8 patches; pixel shuffle by 2 -> 4x4 = 16 tokens per frame.
        return SmolVLMConfig(vision_config=dict(vision, image_size=64, patch_size=8), text_config=dict(text, model_type="llama"),
                             scale_factor=2, image_token_id=image_id, tie_word_embeddings=False,
                             pad_token_id=tokenizer.pad_token_id)
    if family in ("qwen2_vl", "qwen2_5_vl"):
        from transformers import Qwen2_5_VLConfig, Qwen2VLConfig

        head_dim = spec.hidden // spec.heads
        # mRoPE splits head_dim/2 rotary frequencies between (t, h, w); the sections must sum to it.
        t_sec = head_dim // 2 - 2 * (head_dim // 6)
        rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [t_sec, head_dim // 6, head_dim // 6]}
        image_id, video_id, vstart, vend = _ids(tokenizer, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                "<|vision_end|>")
        ids = dict(image_token_id=image_id, video_token_id=video_id, vision_start_token_id=vstart,
                   vision_end_token_id=vend)
        if family == "qwen2_vl":
            vis = dict(depth=spec.layers, embed_dim=spec.vision_hidden, num_heads=2, mlp_ratio=2, hidden_size=spec.hidden,
                       patch_size=4, temporal_patch_size=2, spatial_merge_size=2)
            return Qwen2VLConfig(vision_config=vis, text_config=dict(text, rope_parameters=rope), **ids)
        vis = dict(depth=spec.layers, hidden_size=spec.vision_hidden, num_heads=2, intermediate_size=2 * spec.vision_hidden,
                   out_hidden_size=spec.hidden, patch_size=4, temporal_patch_size=2, spatial_merge_size=2,
                   window_size=16, fullatt_block_indexes=[1])
        return Qwen2_5_VLConfig(vision_config=vis, text_config=dict(text, rope_parameters=rope), **ids)
    if family == "llava_onevision":
        from transformers import LlavaOnevisionConfig

        image_id, video_id = _ids(tokenizer, "<image>", "<video>")
        # 32 px / 4 px patches = 8x8 patch features; the video path pools them 2x -> 4x4 = 16 tokens per frame.
        return LlavaOnevisionConfig(vision_config=dict(vision, model_type="siglip_vision_model", image_size=32, patch_size=4),
                                    text_config=dict(text, model_type="qwen2"), image_token_id=image_id,
                                    video_token_id=video_id, vision_feature_layer=-1,
                                    vision_feature_select_strategy="full", image_grid_pinpoints=[[32, 32], [32, 64], [64, 32]],
                                    tie_word_embeddings=False)
    raise ValueError(f"unknown VLM family {family!r}; expected one of {FAMILIES}")


def build_processor(family: str, tokenizer, config):
    """The family's real processor class, configured for the sizes of `config`."""
    if family == "smolvlm":
        from transformers import SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

        side = config.vision_config.image_size
        seq = (side // config.vision_config.patch_size) ** 2 // config.scale_factor**2
        image = SmolVLMImageProcessor(size={"longest_edge": side}, max_image_size={"longest_edge": side},
                                      do_image_splitting=False)
        video = SmolVLMVideoProcessor(size={"longest_edge": side}, max_image_size={"longest_edge": side})
        return SmolVLMProcessor(image, tokenizer, video, image_seq_len=seq)
    if family in ("qwen2_vl", "qwen2_5_vl"):
        from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

        vc = config.vision_config
        unit = vc.patch_size * vc.spatial_merge_size
        sizes = dict(size={"shortest_edge": unit * unit, "longest_edge": (8 * unit) ** 2}, patch_size=vc.patch_size,
                     merge_size=vc.spatial_merge_size, temporal_patch_size=vc.temporal_patch_size)
        cls = Qwen2VLProcessor if family == "qwen2_vl" else Qwen2_5_VLProcessor
        return cls(Qwen2VLImageProcessor(**sizes), tokenizer, Qwen2VLVideoProcessor(**sizes, min_frames=1))
    if family == "llava_onevision":
        from transformers import (LlavaOnevisionImageProcessor, LlavaOnevisionProcessor,
                                  LlavaOnevisionVideoProcessor)

        side = config.vision_config.image_size
        size = {"height": side, "width": side}
        image = LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=config.image_grid_pinpoints)
        video = LlavaOnevisionVideoProcessor(size=size)
        seq = (side // config.vision_config.patch_size) ** 2
        return LlavaOnevisionProcessor(image, tokenizer, video, num_image_tokens=seq,
                                       vision_feature_select_strategy=config.vision_feature_select_strategy)
    raise ValueError(f"unknown VLM family {family!r}; expected one of {FAMILIES}")


def build_tiny(family: str, root: str | Path, spec: TinySpec = TinySpec(), seed: int = 0) -> Path:
    """Save a tiny random `family` model + processor under `root` (reused when already built); return its dir.

    The directory name carries a hash of the spec and seed, so a changed spec never reuses stale weights.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    key = hashlib.sha1(json.dumps([family, spec.__dict__, seed, 2]).encode()).hexdigest()[:10]
    out = Path(root) / f"tiny-{family}-{key}"
    if (out / "model.safetensors").exists() and (out / "processor_config.json").exists():
        return out
    tokenizer = build_tokenizer(family, spec.vocab)
    config = tiny_config(family, tokenizer, spec)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    build_processor(family, tokenizer, config).save_pretrained(tmp)
    tmp.rename(out)  # atomic: a killed build never leaves a half-written model that looks complete
    return out


# Published sizes (from the checkpoints' config.json); only speed is measured with these, so weights are random.
SIZED: dict[str, tuple[str, dict]] = {
    "smolvlm2-256m": ("smolvlm", dict(
        vision_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                           image_size=512, patch_size=16),
        text_config=dict(model_type="llama", hidden_size=576, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, intermediate_size=1536, vocab_size=49280, rope_theta=100000.0,
                         max_position_embeddings=8192, tie_word_embeddings=True),
        scale_factor=4)),
    "smolvlm2-2.2b": ("smolvlm", dict(
        vision_config=dict(hidden_size=1152, num_hidden_layers=27, num_attention_heads=16, intermediate_size=4304,
                           image_size=384, patch_size=14),
        text_config=dict(model_type="llama", hidden_size=2048, num_hidden_layers=24, num_attention_heads=32,
                         num_key_value_heads=32, intermediate_size=8192, vocab_size=49280, rope_theta=273768.0,
                         max_position_embeddings=16384),
        scale_factor=3)),
    "llava-onevision-0.5b": ("llava_onevision", dict(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=1152, num_hidden_layers=26,
                           num_attention_heads=16, intermediate_size=4304, image_size=384, patch_size=14),
        text_config=dict(model_type="qwen2", hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True),
        vision_feature_layer=-1, vision_feature_select_strategy="full")),
    "qwen2-vl-2b": ("qwen2_vl", dict(
        vision_config=dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, hidden_size=1536, patch_size=14,
                           temporal_patch_size=2, spatial_merge_size=2),
        text_config=dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         intermediate_size=8960, vocab_size=151936, tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                          "mrope_section": [16, 24, 24]}))),
}


def build_sized(name: str, dtype=None):
    """(model, processor) with random weights at the published size `name` (see SIZED), built in memory."""
    import torch
    from transformers import AutoModelForImageTextToText

    if name not in SIZED:
        raise ValueError(f"unknown sized model {name!r}; expected one of {sorted(SIZED)}")
    family, kwargs = SIZED[name]
    tokenizer = build_tokenizer(family)
    tiny = tiny_config(family, tokenizer)  # only for the special-token ids, which must match our tokenizer
    cls = type(tiny)
    ids = {k: getattr(tiny, k) for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                         "vision_end_token_id") if getattr(tiny, k, None) is not None}
    extra = {"image_grid_pinpoints": [[384, 384]]} if family == "llava_onevision" else {}
    config = cls(**kwargs, **ids, **extra)
    from transformers.initialization import no_init_weights

    # The library's per-module init takes minutes at these sizes; speed does not depend on the values,
    # so fill N(0, 0.02) directly (norm scales at 1 keep activations finite through every layer).
    with no_init_weights():
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype or torch.float32)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.fill_(1.0) if param.ndim == 1 and "norm" in name else param.normal_(0.0, 0.02)
    return model.eval(), build_processor(family, tokenizer, config)
