"""The offline preset: real SmolLM2-135M and all-MiniLM-L6-v2 weights from pip packages, with no network.

SmolLM2's re-saved safetensors copy lives in the user cache ($LONGWATCH_HOME, default ~/.cache/longwatch):
the first run on a machine dequantises the GGUF once (~15-90 s), later runs reuse it.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from longwatch.pipeline.answer import PromptBlock
from longwatch.pipeline.models import load_preset, longwatch_home
from longwatch.pipeline.models import text as text_models

# ~30-60 s on the shared 2-core machine (model loads dominate); run with `-m slow`.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def offline(one_thread):
    """Load the preset with every socket connection turned into an error: proof that nothing goes online."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"network access attempted during offline load: {address}")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    try:
        models = load_preset("offline")
    finally:
        mp.undo()
    assert attempts == []
    return models


NOTES = [PromptBlock("[00:00:00-00:00:10] A man opens a red door and walks into a kitchen."),
         PromptBlock("[00:00:10-00:00:20]", text_after="On screen: SALE 50% OFF")]


def test_offline_preset_has_text_models_and_no_vision(offline):
    assert offline.svlm is None and offline.answerer.is_text_only
    assert offline.embedder.dim == 384


def test_minilm_embeddings_are_normalised_and_semantic(offline):
    vecs = offline.embedder.embed(["a red car drives down the road", "the car on the street is red",
                                   "a lecture about quantum physics"])
    assert vecs.dtype == np.float32 and vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > 0.6 > 0.3 > sims[0, 2]
    assert offline.embedder.embed([]).shape == (0, 384)


def test_smollm2_answers_from_notes_deterministically(offline):
    answer = offline.answerer.generate(NOTES, "What color is the door?", max_new_tokens=16)
    assert "red" in answer.lower()
    assert answer == offline.answerer.generate(NOTES, "What color is the door?", max_new_tokens=16)


def test_text_relevance_is_a_deterministic_probability(offline):
    scores = offline.answerer.relevance("What does the sign on screen say?", NOTES)
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    assert scores == offline.answerer.relevance("What does the sign on screen say?", NOTES)
    assert scores[1] > scores[0]  # the block with the sign text is the relevant one


def test_smollm2_reloads_from_the_cached_copy_without_the_gguf(offline, monkeypatch):
    cached = longwatch_home() / "models" / "smollm2-135m-instruct"
    assert (cached / "model.safetensors").exists()

    def no_package(*args):
        raise AssertionError("the GGUF package was consulted although a cached copy exists")

    monkeypatch.setattr(text_models, "package_dir", no_package)
    # Same dtype as the preset chose ("auto" is bf16 on CPUs that compute it natively, else fp32).
    answerer = text_models.load_smollm2(longwatch_home(), dtype=offline.answerer.model.dtype)
    assert answerer.relevance("Is there a door?", NOTES[:1]) == offline.answerer.relevance("Is there a door?", NOTES[:1])
