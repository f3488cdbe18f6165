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

# The relevance prompt is [header][RELEVANCE_ASK][clip block][RELEVANCE_CUE][assistant]: everything every candidate
# shares comes first, so its KV cache is computed once per question and each batch of clips runs on top of it.
RELEVANCE_ASK = "Question: {question}\nIs the following clip relevant to this question?\n"
RELEVANCE_CUE = "Answer Yes or No."
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

    def __add__(self, other: Prompt) -> Prompt:
        """The two token sequences one after the other (each tokenised on its own)."""
        import torch

        n = self.input_ids.shape[1]
        return Prompt(torch.cat([self.input_ids, other.input_ids], 1), self.visuals + other.visuals,
                      self.starts + [n + s for s in other.starts])


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
        return self.tokenise([self.user_prefix, *self.block_segments(blocks), question, self.assistant_prefix])

    def block_segments(self, blocks: list[PromptBlock]) -> list[str | Visual]:
        """Each block as its text, its visual runs and its trailing text, in order."""
        segments: list[str | Visual] = []
        for block in blocks:
            segments.append(block.text)
            if block.tokens is not None:
                if block.tokens.ndim != 4 or block.tokens.shape[-1] != self.hidden_size:
                    raise ValueError(f"PromptBlock.tokens must be [t, h, w, {self.hidden_size}] for {self.name}; "
                                     f"got shape {tuple(block.tokens.shape)}")
                segments.extend(self.visual_segments(block.tokens, block.duration))
            segments.append(block.text_after + "\n")
        return segments

    def tokenise(self, segments: list[str | Visual]) -> Prompt:
        """Token ids of text and visual segments; adjacent text is tokenised as one string, as a chat template is."""
        import torch

        ids: list[int] = []
        prompt = Prompt(input_ids=torch.empty(0))
        text = ""
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
        return cache_arg(self.model)  # looked up once, not per generated token

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

    def relevance_prompts(self, question: str, blocks: list[PromptBlock]) -> tuple[Prompt, list[Prompt]]:
        """The relevance prompt in two parts: the prefix every block shares, and per block what follows it."""
        prefix = self.tokenise([self.user_prefix, RELEVANCE_ASK.format(question=question.strip())])
        tails = [self.tokenise([*self.block_segments([block]), RELEVANCE_CUE, self.assistant_prefix])
                 for block in blocks]
        return prefix, tails

    def relevance(self, question: str, blocks: list[PromptBlock], batch_size: int = 8,
                  share_prefix: bool = True) -> list[float]:
        """Per block, sigmoid(logit(Yes) - logit(No)) for "is the following clip relevant to the question?" (Tempo's
        prior).

        The shared prefix (header and question) runs once; blocks are scored independently on top of its KV cache,
        `batch_size` per forward (right-padded, so no padded row is ever fully masked), reading the LM head only at
        each prompt's last token. `share_prefix=False` runs every prompt whole: the same scores, slower (for
        benchmarks/query.py).
        """
        import torch

        if not blocks:
            return []
        prefix, tails = self.relevance_prompts(question, blocks)
        shared = self._prefix_states(prefix) if share_prefix else None
        scores: list[float] = []
        for i in range(0, len(tails), batch_size):
            batch = tails[i:i + batch_size]
            last = (self._last_hidden(batch, prefix, shared) if share_prefix
                    else self._last_hidden([prefix + tail for tail in batch]))
            with torch.inference_mode():
                logits = self.model.get_output_embeddings()(last).float()  # [B, V]
            scores += self._yes_no_score(logits).tolist()
        return scores

    def _yes_no_score(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        yes, no = self._yes_no
        return torch.sigmoid(torch.logsumexp(logits[:, yes], -1) - torch.logsumexp(logits[:, no], -1))

    def _prefix_states(self, prefix: Prompt) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return prefix_states(self.model.model, inputs_embeds=self.embed(prefix),
                             position_ids=self.position_ids(prefix).to(self.model.device))

    def _last_hidden(self, prompts: list[Prompt], prefix: Prompt | None = None,
                     shared: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """Final hidden state [B, D] at the last token of each prompt, run as one right-padded batch.

        With `prefix` and its `shared` states (`_prefix_states`), each prompt continues after the prefix: a fresh
        cache holds the prefix once per row (the shared states are never written to), the attention mask covers
        prefix + prompt, and positions are those the prompt has in prefix + prompt (mRoPE included).
        """
        import torch

        lengths = [p.input_ids.shape[1] for p in prompts]
        B, L = len(prompts), max(lengths)
        P = prefix.input_ids.shape[1] if prefix is not None else 0
        embeds = torch.zeros(B, L, self.hidden_size, dtype=self.dtype, device=self.model.device)
        mask = torch.zeros(B, P + L, dtype=torch.long, device=self.model.device)
        mask[:, :P] = 1
        positions = [self.position_ids(prefix + p if prefix is not None else p)[..., P:] for p in prompts]
        pos = torch.zeros(*positions[0].shape[:-2], B, L, dtype=torch.long)
        cache = {} if shared is None else {self._cache_arg: cache_for_batch(shared, B, self.model.config)}
        with torch.inference_mode():
            for b, (prompt, n) in enumerate(zip(prompts, lengths)):
                embeds[b, :n] = self.embed(prompt)[0]
                mask[b, P:P + n] = 1
                pos[..., b, :n] = positions[b][..., 0, :]
            hidden = self.model.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos.to(self.model.device),
                                      use_cache=bool(cache), **cache).last_hidden_state
        return hidden[torch.arange(B), torch.tensor(lengths) - 1]


def _cache_of(out):
    """The KV cache a forward returned, under either transformers name."""
    return out["cache"] if "cache" in out else out.past_key_values


def cache_arg(model) -> str:
    """The name this transformers takes the KV cache under: `cache` since 5.25 (which warns on, and will drop,
    `past_key_values`), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def prefix_states(decoder, **inputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Run a prompt prefix through `decoder` (the base model, no LM head) once: its (keys, values)
    [1, heads, P, head_dim] per layer, for `cache_for_batch`."""
    import torch

    with torch.inference_mode():
        out = decoder(use_cache=True, **inputs)
    return [(layer.keys, layer.values) for layer in _cache_of(out).layers]


def cache_for_batch(shared: list[tuple[torch.Tensor, torch.Tensor]], batch: int, config):
    """A fresh DynamicCache holding the shared prefix once per row of a batch. The rows are expanded views of
    `shared`, not copies: a forward appends to a DynamicCache by concatenation, which makes new tensors, so `shared`
    is never written and every batch of a question starts from the same prefix (tests/test_models_tiny.py checks
    the scores against plain forwards, batch after batch)."""
    from transformers import DynamicCache

    return DynamicCache([(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in shared],
                        config=config)
