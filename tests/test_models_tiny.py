"""Tiny real-architecture VLMs: injection through inputs_embeds equals each family's native path.

Models are built offline into a session tmp dir and loaded back through the registry (same path as real weights).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from longwatch.kernels import pool_spatial
from longwatch.pipeline.answer import PromptBlock, format_span
from longwatch.pipeline.models import load_preset, load_vlm
from longwatch.pipeline.models.build import build_tiny

FAMILIES = ["smolvlm", "qwen2_vl", "qwen2_5_vl", "llava_onevision"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("longwatch-home") / "models" / "tiny"


@pytest.fixture(scope="session")
def adapters(tiny_root):
    return {f: load_vlm(build_tiny(f, tiny_root), dtype="fp32", device="cpu") for f in FAMILIES}


@pytest.fixture
def frames():
    # 8 frames of a moving gradient, not square, so resizing and grid order both matter.
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    return np.stack([np.roll(base, 5 * i, axis=1) for i in range(8)])


def pool(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[t, H, W, D] -> [t, h, w, D] through the kernels dispatcher, as the pipeline pools."""
    return pool_spatial(tokens, (h, w))


def native_logits(adapter, prompt, frames):
    """All-position logits from the model's own pixel path, on the same token ids our prompt uses."""
    model, inputs = adapter.model, adapter.processor.video_processor(videos=[frames], return_tensors="pt",
                                                                       do_sample_frames=False)
    ids = prompt.input_ids
    with torch.inference_mode():
        if adapter.family == "smolvlm":
            return model(input_ids=ids, pixel_values=inputs["pixel_values"],
                         pixel_attention_mask=inputs["pixel_attention_mask"]).logits
        if adapter.family.startswith("qwen"):
            inputs = adapter.processor.video_processor(videos=[frames], return_tensors="pt", do_sample_frames=False,
                                                       cap_pixels_per_frame=True)
            types = (ids == model.config.video_token_id).int() * 2
            return model(input_ids=ids, pixel_values_videos=inputs["pixel_values_videos"],
                         video_grid_thw=inputs["video_grid_thw"], mm_token_type_ids=types).logits
        return model(input_ids=ids, pixel_values_videos=inputs["pixel_values_videos"]).logits


@pytest.mark.parametrize("family", FAMILIES)
def test_unpooled_injection_equals_native_path(adapters, frames, family):
    adapter = adapters[family]
    tokens = adapter.encode_frames(frames)
    assert tokens.ndim == 4 and tokens.shape[-1] == adapter.hidden_size
    if family.startswith("qwen"):
        assert tokens.shape[0] == len(frames) // adapter.model.config.vision_config.temporal_patch_size
    else:
        assert tokens.shape[0] == len(frames)
    prompt = adapter.build_prompt([PromptBlock(format_span(0, 8), tokens, "a caption")], "What happens?")
    ours = adapter.forward(prompt, logits_to_keep=0).logits
    native = native_logits(adapter, prompt, frames)
    torch.testing.assert_close(ours, native, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_pooled_tokens_with_timestamps_generate(adapters, frames, family):
    adapter = adapters[family]
    tokens = adapter.encode_frames(frames)
    pooled = pool(tokens, 2, 2)  # 4 tokens per grid step, fewer than native
    assert pooled.shape[1] * pooled.shape[2] < tokens.shape[1] * tokens.shape[2]
    half = len(pooled) // 2
    blocks = [PromptBlock(format_span(0, 4), pooled[:half], "first half"),
              PromptBlock(format_span(4, 8), pooled[half:], "second half")]
    prompt = adapter.build_prompt(blocks, "What happens?")
    assert prompt.n_visual == pooled.shape[0] * 4
    assert "00:00:04" in adapter.tokenizer.decode(prompt.input_ids[0])
    answer = adapter.generate(blocks, "What happens?", max_new_tokens=6, min_new_tokens=3)
    assert answer and answer == adapter.generate(blocks, "What happens?", max_new_tokens=6, min_new_tokens=3)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_mrope_positions_of_pooled_grid_match_native_video(adapters, family):
    adapter = adapters[family]
    vc = adapter.model.config.vision_config
    # A native video whose merged grid is (4, 2, 2): 8 frames of (2*merge*patch)^2 pixels.
    side = 2 * vc.spatial_merge_size * vc.patch_size
    video = np.random.default_rng(0).integers(0, 255, (8, side, side, 3), dtype=np.uint8)
    native = adapter.processor.video_processor(videos=[video], return_tensors="pt", do_sample_frames=False,
                                               cap_pixels_per_frame=True)
    big = adapter.encode_frames(np.random.default_rng(1).integers(0, 255, (8, 48, 64, 3), dtype=np.uint8))
    pooled = pool(big, 2, 2)
    assert tuple(pooled.shape[:3]) == (4, 2, 2)
    prompt = adapter.build_prompt([PromptBlock("[00:00:00-00:00:08]", pooled, "after")], "Q?")
    assert torch.equal(adapter.video_grid_thw(prompt), native["video_grid_thw"])
    types = (prompt.input_ids == adapter.model.config.video_token_id).int() * 2
    expected, _ = adapter.model.model.get_rope_index(prompt.input_ids, mm_token_type_ids=types,
                                                     video_grid_thw=native["video_grid_thw"])
    ours = adapter.position_ids(prompt)
    assert torch.equal(ours, expected)
    start = prompt.starts[0]
    grid = ours[:, 0, start:start + 16] - ours[:, 0, start:start + 1]
    # Qwen2.5-VL spaces time by tokens_per_second x seconds per grid step (1 s when the block has no duration).
    step = getattr(vc, "tokens_per_second", 1) if family == "qwen2_5_vl" else 1
    assert grid[0].tolist() == [t * step for t in range(4) for _ in range(4)]
    assert grid[1].tolist() == [h for _ in range(4) for h in (0, 0, 1, 1)]
    assert grid[2].tolist() == [w for _ in range(4) for w in (0, 1, 0, 1)]


def _full_prompt_score(adapter, prompt) -> float:
    """Yes-vs-No relevance from one plain forward over the whole prompt: no cache, no batch, no padding."""
    logits = adapter.forward(prompt).logits[0, -1].float()
    yes, no = adapter._yes_no
    return float(torch.sigmoid(torch.logsumexp(logits[yes], 0) - torch.logsumexp(logits[no], 0)))


@pytest.mark.parametrize("family", FAMILIES)
def test_relevance_on_the_cached_question_prefix_equals_the_whole_prompt(adapters, frames, family):
    adapter = adapters[family]
    tokens = pool(adapter.encode_frames(frames), 2, 2)
    # Blocks of different lengths (time steps and text), so batches are right-padded.
    blocks = [PromptBlock(format_span(0, 8), tokens), PromptBlock(format_span(8, 16), tokens.flip(0), "text"),
              PromptBlock(format_span(16, 24), tokens[:1], "a much longer caption about a red car on a road"),
              PromptBlock(format_span(24, 28), tokens[1:], duration=4.0)]
    question = "Where is the red car?"
    prefix, tails = adapter.relevance_prompts(question, blocks)
    # The question comes before the clip, so it is in the shared prefix; only the clip and the cue follow it.
    assert question in adapter.tokenizer.decode(prefix.input_ids[0]) and not prefix.visuals
    assert all(question not in adapter.tokenizer.decode(t.input_ids[0]) for t in tails)
    expected = [_full_prompt_score(adapter, prefix + tail) for tail in tails]
    for batch_size in (1, 3):  # 3: one padded batch of three, then a batch of one on the same prefix
        scores = adapter.relevance(question, blocks, batch_size=batch_size)
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == pytest.approx(expected, abs=1e-5), batch_size
        assert adapter.relevance(question, blocks, batch_size, share_prefix=False) == pytest.approx(expected, abs=1e-5)
    assert adapter.relevance(question, blocks, batch_size=3) == adapter.relevance(question, blocks, batch_size=3)
    assert adapter.relevance(question, []) == []


@pytest.mark.parametrize("family", ["smolvlm", "llava_onevision"])
def test_caption_respects_token_limit_and_uses_previous_caption(adapters, frames, family, monkeypatch):
    adapter = adapters[family]
    seen: list[list[int]] = []
    decode = adapter.tokenizer.decode
    monkeypatch.setattr(adapter.tokenizer, "decode", lambda ids, **kw: seen.append(list(ids)) or decode(ids, **kw))
    adapter.caption(frames, None, max_new_tokens=5, min_new_tokens=5)
    adapter.caption(frames, None, max_new_tokens=3)
    assert len(seen[0]) == 5 and len(seen[1]) <= 3
    tokens = adapter.encode_frames(frames)
    with_prev = adapter.build_prompt([PromptBlock("Previous clip: a dog runs\n", tokens)], "Describe")
    assert "a dog runs" in adapter.tokenizer.decode(with_prev.input_ids[0])
    assert adapter.caption(None, "a dog runs", max_new_tokens=4, tokens=tokens) == \
        adapter.caption(frames, "a dog runs", max_new_tokens=4)


def test_prompt_rejects_tokens_of_the_wrong_width(adapters):
    adapter = adapters["smolvlm"]
    with pytest.raises(ValueError, match=r"\[t, h, w, 64\]"):
        adapter.build_prompt([PromptBlock("x", torch.zeros(1, 2, 2, 7))], "q")


def test_tiny_preset_builds_once_and_loads_through_the_registry(tmp_path):
    models = load_preset("tiny", home=tmp_path, answerer="llava_onevision", embedder=None)
    assert models.answerer.family == "llava_onevision" and models.svlm.family == "smolvlm"
    built = sorted((tmp_path / "models" / "tiny").iterdir())
    stamps = [(p / "model.safetensors").stat().st_mtime_ns for p in built]
    load_preset("tiny", home=tmp_path, answerer="llava_onevision")
    assert [(p / "model.safetensors").stat().st_mtime_ns for p in built] == stamps
    vec = models.embedder.embed(["a clip"])
    assert vec.shape == (1, models.embedder.dim) and np.isclose(np.linalg.norm(vec), 1.0, atol=1e-5)


def _lecture(path, seconds: int = 20, switch: int = 12):
    """Slide A until `switch`, then slide B; a small 'speaker' square paces at the bottom right all along."""
    from longwatch.samples.videos import text_card, write_video

    slides = [text_card("Quarterly results\nRevenue 4.2M", (320, 180)), text_card("Next steps\nHire two", (320, 180))]
    frames = []
    for i in range(seconds * 2):  # 2 fps
        image = slides[int(i / 2 >= switch)].copy()
        x = 250 + (i % 4) * 8
        image[130:160, x:x + 12] = (200, 120, 90)
        frames.append(image)
    return write_video(path, frames, 2.0)


def test_clips_whose_picture_did_not_change_keep_the_caption_and_resume_decides_the_same(tmp_path):
    from longwatch.memory import MemoryBank
    from longwatch.pipeline.config import PipelineConfig
    from longwatch.pipeline.core import Pipeline

    models = load_preset("tiny", home=tmp_path / "home")
    config = PipelineConfig(ocr=False, min_new_tokens=2, caption_tokens=6)
    video = str(_lecture(tmp_path / "lecture.mp4"))

    def metas(root, crash_after=None):
        class Crash(Exception):
            pass

        def progress(p):
            if p.clips_done == crash_after:
                raise Crash

        with MemoryBank(root) as bank:
            try:
                Pipeline(bank, models, config).ingest(video, "v", progress=progress)
            except Crash:
                Pipeline(bank, models, config).ingest(video, "v")
            return [(r.caption, r.meta.get("caption_from"), r.meta.get("caption_tokens_frames_reused"))
                    for r in bank.clips("v")]

    straight = metas(tmp_path / "a")
    # Clips of 4 s: slide A in clips 0-2, slide B from 12 s (clips 3-4). Only the first clip of each slide is
    # captioned; the pacing speaker is not a new picture. Within a clip the captioner encodes only its first frame.
    assert [from_ for _, from_, _ in straight] == [None, 0, 0, None, 3]
    assert straight[1][0] == straight[0][0] and straight[4][0] == straight[3][0]
    assert all(reused == 3 for _, _, reused in straight), straight  # 4 frames a clip at 1 fps: 1 encoded
    # Interrupted after clip 1 and resumed: the same decisions, from the look stored with the clip.
    assert metas(tmp_path / "b", crash_after=2) == straight
