"""What each model role must offer the pipeline: answerers (vision or text), the SVLM, the text embedder.

Typed Protocols, so a new model family or a test double shows what it must implement; nothing here loads a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch

    from longwatch.pipeline.answer import PromptBlock


@runtime_checkable
class Embedder(Protocol):
    """Sentence embeddings for retrieval keys and questions."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 [n, dim], one row per text."""
        ...


@runtime_checkable
class Answerer(Protocol):
    """What every answerer offers: answers and relevance from the text of prompt blocks (captions, on-screen text,
    times). A text-only one (`is_text_only`, e.g. models.text.TextAnswerer) offers nothing more."""

    name: str
    is_text_only: bool  # True: the pipeline answers from stored text and never encodes frames

    def generate(self, blocks: list[PromptBlock], question: str, max_new_tokens: int = 128,
                 min_new_tokens: int = 0) -> str:
        """Greedy (deterministic) answer to `question` given `blocks`."""
        ...

    def relevance(self, question: str, blocks: list[PromptBlock], batch_size: int = 8) -> list[float]:
        """Per block, sigmoid(logit(Yes) - logit(No)) for "is this clip relevant to the question?" (Tempo's prior)."""
        ...


@runtime_checkable
class Captioner(Protocol):
    """The small VLM (SVLM): captions clips at ingest, re-scores retrieved clips from its stored tokens when asked."""

    name: str

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """frames [T, H, W, 3] uint8 -> visual tokens [t, h, w, D] in its own embedding space."""
        ...

    def caption(self, frames: np.ndarray | None, prev_caption: str | None = None, max_new_tokens: int = 32,
                *, tokens: torch.Tensor | None = None, min_new_tokens: int = 0) -> str:
        """One-sentence caption of a clip, given its frames or their tokens, with the previous caption as context."""
        ...

    def relevance(self, question: str, blocks: list[PromptBlock], batch_size: int = 8) -> list[float]:
        """Per block, the Yes-vs-No relevance probability; blocks may carry its tokens [t, h, w, D]."""
        ...


@runtime_checkable
class VisionAnswerer(Answerer, Captioner, Protocol):
    """A VLM answerer: reads visual tokens of its own space from prompt blocks (and can caption when no SVLM)."""

    hidden_size: int  # D of the visual tokens it makes and reads; stored tokens must match it

    def build_prompt(self, blocks: list[PromptBlock], question: str):
        """The tokenised prompt (`.input_ids` [1, L]) the answerer would read; its length is the prefill."""
        ...

    def logits(self, blocks: list[PromptBlock], question: str) -> torch.Tensor:
        """Next-token logits [V] after the prompt."""
        ...
