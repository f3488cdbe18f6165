"""Change detection: which sampled frames the text lane reads, on moving footage and on still pictures.

The gate alone on drawn frames (exact decisions), then the whole OCR lane on the real packaged bikes clip with
burned-in captions that change, read by the real OCR engine.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from longwatch.pipeline.change import TextGate, _column_runs, _runs, picture_distance
from longwatch.pipeline.ocr import OcrEngine, OcrLane, _key
from longwatch.samples.niah import _font

W, H = 448, 252
CAPTION_BAND = (60.0, 200.0, 390.0, 230.0)
CAPTION_AT = (70, 204)


def _texture(seed: int = 0) -> np.ndarray:
    """A busy, street-like background wider than the frame: hundreds of overlapping blocks of random shades."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (W + 160, H), (90, 90, 90))
    draw = ImageDraw.Draw(im)
    for _ in range(600):
        x, y = int(rng.integers(0, W + 160)), int(rng.integers(0, H))
        w, h = int(rng.integers(4, 40)), int(rng.integers(4, 40))
        draw.rectangle((x, y, x + w, y + h), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return np.asarray(im)


def _frame(t: int, caption: str | None, pan: bool = True, background: np.ndarray | None = None) -> np.ndarray:
    bg = _texture() if background is None else background
    x = (t * 13) % 160 if pan else 0  # the camera pans 13 px a frame
    im = Image.fromarray(np.ascontiguousarray(bg[:, x:x + W]))
    if caption:
        draw = ImageDraw.Draw(im)
        draw.rectangle(CAPTION_BAND, fill=(16, 16, 24))
        draw.text(CAPTION_AT, caption, font=_font(20, bold=True), fill=(255, 255, 255))
    return np.asarray(im)


def _text_box(caption: str) -> tuple[float, float, float, float]:
    """Where a reader would say the caption is: the bounding box of its letters."""
    draw = ImageDraw.Draw(Image.new("RGB", (W, H)))
    return tuple(float(v) for v in draw.textbbox(CAPTION_AT, caption, font=_font(20, bold=True)))


def _decide(gate: TextGate, t: int, caption: str | None):
    decision = gate.decide(_frame(t, caption), float(t))
    if decision.read:  # what a reader would report: the caption's box when there is one
        gate.read_boxes([_text_box(caption)] if caption else [])
    return decision


def test_a_panning_camera_under_the_same_caption_is_not_new_text():
    gate = TextGate(refresh_seconds=None)
    reads = [t for t in range(12) if _decide(gate, t, "Gate 14 now boarding").read]
    assert reads == [0]


def test_a_changed_or_vanished_caption_is_read_at_once_and_a_new_one_dated_from_its_first_frame():
    gate = TextGate(refresh_seconds=None)
    script = ["Gate 14 now boarding"] * 3 + ["Gate 15 now closing"] * 3 + [None] * 3 + ["Storm until 18:30"] * 3
    decisions = [_decide(gate, t, c) for t, c in enumerate(script)]
    read = {t: d for t, d in enumerate(decisions) if d.read}
    # The caption's strokes change at 3 and vanish at 6: the known text is watched, so it is read right then.
    assert read[3].reason == read[6].reason == "text changed"
    # A caption appearing on moving footage is a text line that holds still: seen one frame later (10), and
    # dated from the frame before it (9), which already showed it.
    assert read[10].reason == "new text" and read[10].since == 9.0
    assert read[10].region[1] <= CAPTION_BAND[3] and read[10].region[3] >= CAPTION_BAND[1]
    assert sorted(read) == [0, 3, 6, 10]


def test_refresh_reads_moving_pictures_now_and_then_for_text_that_moves_with_the_camera():
    gate = TextGate(refresh_seconds=4.0)
    reads = [t for t in range(13) if _decide(gate, t, "Gate 14 now boarding").read]
    assert reads == [0, 4, 8, 12]


def test_a_moving_speaker_in_front_of_an_unchanged_slide_is_not_read_again_until_text_changes():
    slide = np.full((H, W + 120, 3), 235, np.uint8)
    rng = np.random.default_rng(1)
    speaker = np.asarray(Image.fromarray(rng.integers(0, 255, (12, 8, 3), dtype=np.uint8)).resize((48, 96)))

    def frame(t: int, bullet: bool) -> np.ndarray:
        im = Image.fromarray(slide.copy())
        draw = ImageDraw.Draw(im)
        draw.text((30, 20), "Quarterly results", font=_font(28, bold=True), fill=(20, 20, 20))
        if bullet:
            draw.text((30, 90), "Costs fell 4 percent", font=_font(22), fill=(20, 20, 20))
        image = np.asarray(im)[:, :W].copy()
        x = 300 + (t % 3) * 30  # the speaker paces at the right edge
        image[140:236, x:x + 48] = speaker
        return image

    gate = TextGate(refresh_seconds=None)
    decisions = [gate.decide(frame(t, bullet=t >= 6), float(t)) for t in range(10)]
    reads = {t: d for t, d in enumerate(decisions) if d.read}
    assert sorted(reads) == [0, 7], reads  # the bullet appears at 6 and holds still: read at 7, dated 6
    assert reads[7].since == 6.0


def test_runs_keep_rows_of_cells_and_column_runs_measure_how_tall_a_block_is():
    mask = np.array([[1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1]], bool)
    assert _runs(mask, 3).astype(int).tolist() == [[1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]]
    block = np.zeros((6, 3), bool)
    block[1:5, 1] = True
    block[0, 0] = True
    assert _column_runs(block)[:, 1].tolist() == [0, 4, 4, 4, 4, 0] and _column_runs(block)[0, 0] == 1


def test_picture_distance_is_small_for_the_same_picture_and_large_for_another():
    a = _frame(0, "Gate 14", pan=False)
    noisy = np.clip(a.astype(np.int16) + np.random.default_rng(0).integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    assert picture_distance(a, noisy) < 0.01
    assert picture_distance(a, _frame(0, None, background=_texture(seed=5))) > 0.1


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    from longwatch.benchmarks.ingest_speed import make_captioned_footage

    return make_captioned_footage(tmp_path_factory.mktemp("footage"), 36.0, caption_seconds=9.0, fps=5.0,
                                  boxed=False)


def test_real_moving_footage_each_new_caption_is_read_with_its_time_and_far_fewer_frames(footage):
    from longwatch.pipeline.sources import open_source

    gated = OcrLane(OcrEngine(threads=2))
    with open_source(str(footage.video)) as source:
        for clip in source.clips(4.0, fps=1.0, max_side=448):
            gated.process(clip)
    for t0, t1, text in footage.captions:
        found = [s for s in gated.spans() if _key(s.text) == _key(text)]
        assert len(found) == 1, (text, gated.spans())
        assert abs(found[0].t0 - t0) <= 1.0 and abs(found[0].t1 - t1) <= 1.0, (text, found)
    assert gated.stats.frames_seen == 36
    # Four captions: each needs a read where it appears and one where it goes; the moving bikes need none.
    assert gated.stats.ocr_calls <= 18, gated.stats


def test_a_look_is_small_and_tells_a_pacing_speaker_from_a_new_slide_or_a_cut():
    from longwatch.pipeline.change import look, looks_same
    from longwatch.samples.videos import text_card

    slide = text_card("Quarterly results\nRevenue 4.2M")
    paced = slide.copy()
    paced[250:330, 560:600] = (200, 120, 90)  # a small speaker walked in at the edge
    other = text_card("Next steps\nHire two engineers")
    assert len(look(slide)) <= 600  # stored with every clip
    assert looks_same(look(slide), look(paced))
    assert not looks_same(look(slide), look(other))
    assert not looks_same(look(slide), look(_frame(0, None)[:, :, ::-1].copy()))


def test_token_reuse_encodes_only_frames_whose_picture_changed():
    import torch

    from longwatch.pipeline.change import TokenReuse

    encoded = []

    def encode(frames):  # stands in for a vision tower: each frame's "tokens" are its own pixels
        encoded.append(len(frames))
        return torch.from_numpy(frames[:, :2, :2].astype(np.float32))

    a, b = _frame(0, "Gate 14", pan=False), _frame(0, None, background=_texture(seed=3))
    frames = np.stack([a, a, b, b, a])
    reuse = TokenReuse(encode)
    tokens = reuse.tokens(frames, [0, 1, 2, 3, 4])
    assert encoded == [3] and (reuse.encoded, reuse.reused) == (3, 2)  # one batch: a, b, then a again
    assert np.array_equal(tokens.numpy(), frames[:, :2, :2].astype(np.float32))
