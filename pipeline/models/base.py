"""The one VLM interface: prompts of time-stamped visual-token blocks, greedy generation from inputs_embeds.

Families (families.py) only say how frames become tokens and how a block of tokens is wrapped.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from longwatch.pipeline.answer import PromptBlock

if TYPE_CHECKING:
    import numpy as np
    import torch

RELEVANCE_QUESTION = "Is this clip relevant to the question? Answer Yes or No."
CAPTION_REQUEST = "Describe what happens in this clip in one short sentence."


@dataclass
class Visual:
    """A run of `len(embeds)` placeholder positions filled by `embeds` [n, D]; `grid` is (t, h, w) when it has one."""

    embeds: torch.Tensor
    placeholder_id: int
    grid: tuple[int, int, int] | None = None
    duration: float | None = None
    separators: int = 0  # trailing learned separators (LLaVA-OneVision's newline), not visual content


@dataclass
class Prompt:
    """Token ids with placeholders, the visual runs that fill them, and where each run starts."""

    input_ids: torch.Tensor                      # [1, L]
    visuals: list[Visual] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)

    @property
    def n_visual(self) -> int:
        """Visual tokens injected (placeholder positions minus separators)."""
        return sum(len(v.embeds) - v.separators for v in self.visuals)


class VLMAdapter:
    """A loaded VLM behind one interface; subclasses set `family` and implement the two family hooks."""

    family = "base"
    is_text_only = False
    frames_independent = False  # each frame's tokens depend on that frame alone (so an unchanged frame's can be reused)
    user_prefix = ""
    assistant_prefix = ""

    def __init__(self, model, processor, name: str = ""):
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.name = name or getattr(model.config, "_name_or_path", self.family)
        eos = {self.tokenizer.eos_token_id, *self._as_list(getattr(model.generation_config, "eos_token_id", None))}
        self.eos_ids = sorted(i for i in eos if i is not None)
        self._yes_no = (self._answer_ids("Yes"), self._answer_ids("No"))

    # ---- family hooks -------------------------------------------------------------------------------
    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """frames [T, H, W, 3] uint8 -> visual tokens [t, h, w, D] in the LM embedding space."""
        raise NotImplementedError

    def visual_segments(self, tokens: torch.Tensor, duration: float | None = None) -> list[str | Visual]:
        """How a block of tokens [t, h, w, D] sits in the prompt: wrapper text and placeholder runs."""
        raise NotImplementedError

    def position_ids(self, prompt: Prompt) -> torch.Tensor:
        """Positions for the prompt; 1-D RoPE families count tokens, mRoPE overrides this."""
        import torch

        return torch.arange(prompt.input_ids.shape[1]).unsqueeze(0)

    # ---- shared machinery ---------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return self.model.get_input_embeddings().weight.shape[1]

    @property
    def dtype(self):
        return self.model.get_input_embeddings().weight.dtype

    @staticmethod
    def _as_list(x) -> list:
        return [] if x is None else list(x) if isinstance(x, (list, tuple)) else [x]

    def _answer_ids(self, word: str) -> list[int]:
        # The answer may start with or without a space depending on the template; score both spellings.
        ids = {self.tokenizer.encode(w, add_special_tokens=False)[0] for w in (word, " " + word)}
        return sorted(ids)

    def build_prompt(self, blocks: list[PromptBlock], question: str) -> Prompt:
        """Tokenise the chat template around blocks and question; visual runs become placeholder ids."""
        import torch

        segments: list[str | Visual] = [self.user_prefix]
        for block in blocks:
            segments.append(block.text)
            if block.tokens is not None:
                if block.tokens.ndim != 4 or block.tokens.shape[-1] != self.hidden_size:
                    raise ValueError(f"PromptBlock.tokens must be [t, h, w, {self.hidden_size}] for {self.name}; "
                                     f"got shape {tuple(block.tokens.shape)}")
                segments.extend(self.visual_segments(block.tokens, block.duration))
            segments.append(block.text_after + "\n")
        segments += [question, self.assistant_prefix]
        ids: list[int] = []
        prompt = Prompt(input_ids=torch.empty(0))
        text = ""  # adjacent text is tokenised as one string, as the chat template would
        for seg in segments + [None]:
            if isinstance(seg, str):
                text += seg
                continue
            if text:
                ids.extend(self.tokenizer.encode(text, add_special_tokens=False))
                text = ""
            if isinstance(seg, Visual):
                prompt.visuals.append(seg)
                prompt.starts.append(len(ids))
                ids.extend([seg.placeholder_id] * len(seg.embeds))
        prompt.input_ids = torch.tensor([ids], dtype=torch.long)
        return prompt

    def embed(self, prompt: Prompt) -> torch.Tensor:
        """inputs_embeds [1, L, D]: text embeddings with every placeholder run replaced by its visual tokens."""
        import torch

        embeds = self.model.get_input_embeddings()(prompt.input_ids.to(self.model.device))
        if prompt.visuals:
            mask = torch.zeros(prompt.input_ids.shape[1], dtype=torch.bool)
            for start, vis in zip(prompt.starts, prompt.visuals):
                mask[start:start + len(vis.embeds)] = True
            visual = torch.cat([v.embeds for v in prompt.visuals]).to(embeds.device, embeds.dtype)
            embeds = embeds.clone()
            embeds[0, mask.to(embeds.device)] = visual
        return embeds

    def forward(self, prompt: Prompt, logits_to_keep: int = 1):
        """One prefill over the prompt; returns the model output (logits of the last `logits_to_keep` positions)."""
        import torch

        positions = self.position_ids(prompt).to(self.model.device)
        with torch.inference_mode():
            return self.model(inputs_embeds=self.embed(prompt), position_ids=positions, use_cache=True,
                              logits_to_keep=logits_to_keep)

    def logits(self, blocks: list[PromptBlock], question: str) -> torch.Tensor:
        """Next-token logits [V] (float32) after the prompt."""
        return self.forward(self.build_prompt(blocks, question)).logits[0, -1].float()

    def generate(self, blocks: list[PromptBlock], question: str, max_new_tokens: int = 128,
                 min_new_tokens: int = 0) -> str:
        """Greedy answer to `question` given `blocks` (deterministic: argmax, no sampling)."""
        ids = self.generate_ids(blocks, question, max_new_tokens, min_new_tokens)
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def generate_ids(self, blocks: list[PromptBlock], question: str, max_new_tokens: int = 128,
                     min_new_tokens: int = 0) -> list[int]:
        """Greedy decoding with a KV cache from inputs_embeds; returns at most `max_new_tokens` new token ids."""
        import torch

        prompt = self.build_prompt(blocks, question)
        positions = self.position_ids(prompt)
        out = self.forward(prompt)
        next_pos = int(positions.max()) + 1  # mRoPE continues after the largest position, not the length
        embed = self.model.get_input_embeddings()
        new: list[int] = []
        with torch.inference_mode():
            for step in range(max_new_tokens):
                logits = out.logits[0, -1].float()
                if step < min_new_tokens:
                    logits[self.eos_ids] = -math.inf
                token = int(logits.argmax())
                if token in self.eos_ids:
                    break
                new.append(token)
                if step + 1 == max_new_tokens:
                    break
                pos = torch.full((1, 1), next_pos + step, dtype=torch.long)
                if positions.ndim == 3:
                    pos = pos.expand(3, 1, 1)
                ids = torch.tensor([[token]], device=self.model.device)
                out = self.model(inputs_embeds=embed(ids), position_ids=pos.to(self.model.device),
                                 use_cache=True, logits_to_keep=1, **{self._cache_arg: _cache_of(out)})
        return new

    @functools.cached_property
    def _cache_arg(self) -> str:
        """The name this transformers takes the KV cache under: `cache` since 5.25 (which warns on, and will drop,
        `past_key_values`), `past_key_values` before. Looked up once, not per generated token."""
        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def caption(self, frames: np.ndarray | None, prev_caption: str | None = None, max_new_tokens: int = 32,
                *, tokens: torch.Tensor | None = None, min_new_tokens: int = 0) -> str:
        """One-sentence caption of a clip, with the previous clip's caption as context (VideoStreaming-style).

        Pass `tokens` (from encode_frames) instead of frames to avoid encoding the clip twice.
        """
        if tokens is None:
            if frames is None:
                raise ValueError("caption() needs frames [T, H, W, 3] or tokens [t, h, w, D]")
            tokens = self.encode_frames(frames)
        context = f"Previous clip: {prev_caption.strip()}\n" if prev_caption else ""
        return self.generate([PromptBlock(text=context, tokens=tokens)], CAPTION_REQUEST,
                             max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens)

    def relevance(self, question: str, blocks: list[PromptBlock], batch_size: int = 8) -> list[float]:
        """Per block, sigmoid(logit(Yes) - logit(No)) for "is this clip relevant to the question?" (Tempo's prior).

        Blocks are scored independently, `batch_size` prompts per forward (right-padded, so no padded row is
        ever fully masked), reading the LM head only at each prompt's last token.
        """
        import torch

        request = f"Question: {question.strip()}\n{RELEVANCE_QUESTION}"
        prompts = [self.build_prompt([block], request) for block in blocks]
        scores: list[float] = []
        for i in range(0, len(prompts), batch_size):
            last = self._last_hidden(prompts[i:i + batch_size])
            with torch.inference_mode():
                logits = self.model.get_output_embeddings()(last).float()  # [B, V]
            scores += self._yes_no_score(logits).tolist()
        return scores

    def _yes_no_score(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        yes, no = self._yes_no
        return torch.sigmoid(torch.logsumexp(logits[:, yes], -1) - torch.logsumexp(logits[:, no], -1))

    def _last_hidden(self, prompts: list[Prompt]) -> torch.Tensor:
        """Final hidden state [B, D] at the last token of each prompt, run as one right-padded batch."""
        import torch

        lengths = [p.input_ids.shape[1] for p in prompts]
        B, L = len(prompts), max(lengths)
        embeds = torch.zeros(B, L, self.hidden_size, dtype=self.dtype, device=self.model.device)
        mask = torch.zeros(B, L, dtype=torch.long, device=self.model.device)
        positions = [self.position_ids(p) for p in prompts]
        pos = torch.zeros(*positions[0].shape[:-2], B, L, dtype=torch.long)
        with torch.inference_mode():
            for b, (prompt, n) in enumerate(zip(prompts, lengths)):
                embeds[b, :n] = self.embed(prompt)[0]
                mask[b, :n] = 1
                pos[..., b, :n] = positions[b][..., 0, :]
            hidden = self.model.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos.to(self.model.device),
                                      use_cache=False).last_hidden_state
        return hidden[torch.arange(B), torch.tensor(lengths) - 1]


def _cache_of(out):
    """The KV cache a forward returned, under either transformers name."""
    return out["cache"] if "cache" in out else out.past_key_values
