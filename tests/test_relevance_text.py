"""The text answerer's relevance on a cached question prefix equals one plain forward over the whole prompt.

Real SmolLM2-135M weights (the offline preset); the VLM families' twin is in test_models_tiny.py.
"""

from __future__ import annotations

import pytest
import torch

from longwatch.pipeline.answer import PromptBlock
from longwatch.pipeline.models import load_preset

# SmolLM2 loads in ~30-60 s on the shared 2-core machine; run with `-m slow`.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

NOTES = [PromptBlock("[00:00:00-00:00:10] A man opens a red door and walks into a kitchen."),
         PromptBlock("[00:00:10-00:00:20]", text_after="On screen: SALE 50% OFF"),
         PromptBlock("[00:00:20-00:00:30] A dog sleeps.", text_after="On screen: Flight QX2207 now boarding, gate 12"),
         PromptBlock("")]


@pytest.fixture(scope="module")
def answerer(one_thread):
    return load_preset("offline", dtype="fp32").answerer  # fp32: this checks exactness, not speed


def full_prompt_score(answerer, head: str, tail: str) -> float:
    """One forward over prefix + block tokens (each part tokenised on its own), no cache, no padding."""
    ids = [answerer.tokenizer(t, return_tensors="pt", add_special_tokens=False)["input_ids"] for t in (head, tail)]
    with torch.inference_mode():
        logits = answerer.model(input_ids=torch.cat(ids, 1)).logits[0, -1].float()
    return float(torch.sigmoid(torch.logsumexp(logits[answerer._yes], 0) - torch.logsumexp(logits[answerer._no], 0)))


def test_text_relevance_on_the_cached_prefix_equals_the_whole_prompt(answerer):
    question = "What does the sign on screen say?"
    head, tails = answerer.relevance_texts(question, NOTES)
    assert question in head and "Answer Yes or No." in head and all(question not in t for t in tails)
    assert "Notes:" not in tails[3]  # a block with no text adds no empty notes
    expected = [full_prompt_score(answerer, head, tail) for tail in tails]
    for batch_size in (1, 3):
        assert answerer.relevance(question, NOTES, batch_size=batch_size) == pytest.approx(expected, abs=1e-4)
    assert expected[1] > expected[0]  # the block with the sign's text is the relevant one
