"""Model presets, loaders and one adapter per VLM family.

Everything that turns frames or text into model inputs, and model outputs into text or scores.
"""

from longwatch.pipeline.models.base import PromptBlock, VLMAdapter, format_span, format_time
from longwatch.pipeline.models.registry import (PRESETS, ModelSet, load_preset, load_vlm, longwatch_home, pull,
                                                resolve_dtype)
from longwatch.pipeline.models.text import TextAnswerer, TextEmbedder

__all__ = ["PRESETS", "ModelSet", "PromptBlock", "TextAnswerer", "TextEmbedder", "VLMAdapter", "format_span",
           "format_time", "load_preset", "load_vlm", "longwatch_home", "pull", "resolve_dtype"]
