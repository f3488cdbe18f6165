"""Model presets, loaders and one adapter per VLM family.

Everything that turns frames or text into model inputs, and model outputs into text or scores.
"""

from longwatch.pipeline.answer import PromptBlock
from longwatch.pipeline.models.base import VLMAdapter
from longwatch.pipeline.models.registry import (PRESETS, ModelSet, load_preset, load_vlm, longwatch_home, pull,
                                                resolve_dtype)
from longwatch.pipeline.models.roles import Answerer, Captioner, Embedder, VisionAnswerer
from longwatch.pipeline.models.text import TextAnswerer, TextEmbedder

__all__ = ["PRESETS", "Answerer", "Captioner", "Embedder", "ModelSet", "PromptBlock", "TextAnswerer", "TextEmbedder",
           "VLMAdapter", "VisionAnswerer", "load_preset", "load_vlm", "longwatch_home", "pull", "resolve_dtype"]
