"""On-screen text lane: real RapidOCR on rendered captions and on a real video nobody here made.

Checks the time ranges (within one sampled frame), the scene-change gate (OCR only on changes), and dedup across clips.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from longwatch.pipeline.change import EveryFrame
from longwatch.pipeline.frames import Clip, Frame
from longwatch.pipeline.ocr import OcrEngine, OcrLane, OcrLine, _key
from longwatch.pipeline.sampling import make_clips


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(threads=2)


def _font(size: int) -> ImageFont.ImageFont:
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                 "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"):
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


TITLE = "Weekly Review"
CAPTIONS = [(3.0, 7.0, "Revenue grew by 12 percent"), (7.0, 10.0, "Costs fell by 4 percent in May")]


def _frame(t: float, rng: np.random.Generator) -> np.ndarray:
    """A static slide: a title all the time, a caption line that appears, changes, and goes away."""
    im = Image.new("RGB", (640, 360), (28, 36, 52))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 640, 60), fill=(50, 70, 110))
    draw.text((24, 14), TITLE, font=_font(28), fill=(255, 255, 255))
    for t0, t1, text in CAPTIONS:
        if t0 <= t < t1:
            draw.text((24, 290), text, font=_font(24), fill=(250, 220, 90))
    # A real decoder never returns the same pixels twice: add codec-like noise so the gate must tolerate it.
    noise = rng.integers(-3, 4, size=(360, 640, 3))
    return np.clip(np.asarray(im, dtype=np.int16) + noise, 0, 255).astype(np.uint8)


def _clips(duration: float = 12.0, fps: float = 1.0, clip_seconds: float = 4.0) -> list[Clip]:
    rng = np.random.default_rng(0)
    frames = [Frame(t, _frame(t, rng)) for t in np.arange(0.0, duration, 1.0 / fps)]
    return list(make_clips(frames, clip_seconds))


def _find(spans, text):
    return [s for s in spans if _key(s.text) == _key(text)]


def test_lane_reads_captions_with_their_time_ranges_and_ocrs_only_on_changes(engine):
    lane = OcrLane(engine)
    per_clip = [lane.process(clip) for clip in _clips()]
    spans = lane.spans()

    title = _find(spans, TITLE)
    assert len(title) == 1 and title[0].t0 == 0.0 and title[0].t1 == 12.0
    for t0, t1, text in CAPTIONS:
        found = _find(spans, text)
        assert len(found) == 1, f"{text!r} not read once; spans: {spans}"
        # At 1 fps a frame stands for one second, so the range is exact up to one sampled frame.
        assert abs(found[0].t0 - t0) <= 1.0 and abs(found[0].t1 - t1) <= 1.0, found[0]
    # 12 frames, 4 distinct pictures (start, caption 1, caption 2, caption gone): only those are read.
    assert lane.stats.frames_seen == 12
    assert lane.stats.ocr_calls == 4
    assert lane.stats.frames_skipped == 8

    # The title lasts all three clips but is one span: later clips report it as continued, same start time.
    for i, spans_in_clip in enumerate(per_clip):
        kept = _find(spans_in_clip, TITLE)
        assert len(kept) == 1 and kept[0].t0 == 0.0 and kept[0].continued == (i > 0)
    assert [s.text for s in _find(per_clip[2], CAPTIONS[0][2])] == []  # gone before the third clip


def test_text_fading_in_slowly_is_read_once_legible(engine):
    # Each frame differs from the one before by a hair, so only a comparison with the last frame *read* sees the
    # text arrive: a slow fade-in cannot sneak past the gate.
    def frame(t: int) -> np.ndarray:
        im = Image.new("RGB", (320, 180), (40, 40, 40))
        level = min(255, 40 + 8 * t)
        ImageDraw.Draw(im).text((20, 70), "Doors open at 9:30", font=_font(26), fill=(level, level, level))
        return np.asarray(im)

    frames = [Frame(float(t), frame(t)) for t in range(30)]
    lane = OcrLane(engine)
    for clip in make_clips(frames, 10.0):
        lane.process(clip)
    found = _find(lane.spans(), "Doors open at 9:30")
    assert found and found[0].t1 == 30.0, lane.spans()
    assert found[0].t0 <= 12.0  # legible from about 1/3 contrast on
    assert 2 <= lane.stats.ocr_calls <= 6


def test_thanks_for_watching_in_a_real_video(engine):
    av = pytest.importorskip("av")
    import gradio

    path = Path(gradio.__file__).parent / "media_assets" / "videos" / "a.mp4"
    if not path.exists():
        pytest.skip(f"gradio does not ship {path}")

    def sampled(fps: float = 1.0):
        # Convert only the sampled frames (the 1080p RGB conversion is what costs), straight to 640x360 (a typical ingest size).
        next_t = 0.0
        with av.open(str(path)) as container:
            for f in container.decode(video=0):
                t = float(f.pts * f.time_base)
                if t + 1e-6 >= next_t:
                    next_t += 1.0 / fps
                    yield Frame(t, f.to_ndarray(width=640, height=360, format="rgb24"))

    lane = OcrLane(engine)
    for clip in make_clips(sampled(), 4.0):
        lane.process(clip)
    found = _find(lane.spans(), "THANKS FOR WATCHING")
    assert len(found) == 1, lane.spans()
    # Read frame by frame at 30 fps: the title is legible from 2.03 s until it wipes out at 5.03 s.
    assert abs(found[0].t0 - 2.03) <= 1.0 and abs(found[0].t1 - 5.03) <= 1.0, found[0]
    assert found[0].confidence > 0.9


def test_lane_refuses_clips_out_of_order(engine):
    clips = _clips()
    lane = OcrLane(engine)
    lane.process(clips[1])
    with pytest.raises(ValueError, match="in order"):
        lane.process(clips[0])


def test_engine_names_bad_input(engine):
    with pytest.raises(TypeError, match=r"\[H, W, 3\] uint8"):
        engine.read(np.zeros((10, 10), np.float32))


def test_spaces_dropped_by_ocr_are_put_back_without_splitting_names():
    from longwatch.pipeline.ocr import respace

    pytest.importorskip("wordninja")
    assert respace("THANKSFORWATCHING") == "THANKS FOR WATCHING"
    assert respace("Thevaultcodeis4-7-1-9") == "The vault code is 4-7-1-9"
    assert respace("The launch is at19:25tomorrow") == "The launch is at 19:25 tomorrow"
    assert respace("The agent's codename is Nightjar") == "The agent's codename is Nightjar"
    assert respace("Gate B4 is now boarding") == "Gate B4 is now boarding"


class _ScriptedEngine:
    """Returns one scripted reading per call, as a caption animates out."""

    def __init__(self, readings: list[list[OcrLine]]) -> None:
        self.readings = readings

    def read(self, image: np.ndarray) -> list[OcrLine]:
        return self.readings.pop(0)


def test_a_caption_wiping_out_keeps_its_full_text():
    box = (0.0, 0.0, 100.0, 20.0)
    engine = _ScriptedEngine([[OcrLine("THANKS FOR WATCHING", 0.97, box)],
                              [OcrLine("HANKS FOR WATCHING", 0.99, box)], []])
    frames = [Frame(float(t), np.full((90, 160, 3), 60 * t, np.uint8)) for t in range(3)]
    lane = OcrLane(engine, gate=EveryFrame())
    for clip in make_clips(frames, 4.0):
        lane.process(clip)
    (span,) = lane.spans()
    assert (span.text, span.t0, span.t1, span.confidence) == ("THANKS FOR WATCHING", 0.0, 2.0, 0.97)


class _Row(NamedTuple):
    text: str
    confidence: float
    box: tuple[float, float, float, float]
    context: str


def test_arrange_hook_turns_each_frames_lines_into_rows_whose_context_reaches_the_span():
    # The hook sees the lines of one read frame and what it returns is what the lane tracks.
    box = (0.0, 0.0, 100.0, 20.0)
    engine = _ScriptedEngine([[OcrLine("Q3", 0.95, box), OcrLine("4.2M", 0.93, (120.0, 0.0, 180.0, 20.0))], []])
    seen: list[list[str]] = []

    def rows(lines: list[OcrLine]) -> list[_Row]:
        seen.append([line.text for line in lines])
        if not lines:
            return []
        return [_Row(" | ".join(line.text for line in lines), min(line.confidence for line in lines), box,
                     "Quarter | Cost")]

    frames = [Frame(float(t), np.full((90, 160, 3), 60 * t, np.uint8)) for t in range(2)]
    lane = OcrLane(engine, arrange=rows, gate=EveryFrame())
    for clip in make_clips(frames, 4.0):
        lane.process(clip)
    assert seen == [["Q3", "4.2M"], []]
    (span,) = lane.spans()
    assert (span.text, span.context, span.t0, span.t1) == ("Q3 | 4.2M", "Quarter | Cost", 0.0, 1.0)
    # Plain OcrLines (no hook) carry no context.
    plain = OcrLane(_ScriptedEngine([[OcrLine("Q3 cost", 0.95, box)]]))
    plain.process(next(iter(make_clips(frames[:1], 4.0))))
    assert plain.spans()[0].context == ""


def test_engine_threads_sleep_when_idle_and_rapidocr_is_left_as_it_was(engine):
    # Spinning ONNX Runtime threads halve OCR speed on a busy machine (measured in ocr._waiting_threads_sleep).
    from rapidocr_onnxruntime.utils import infer_engine

    sessions = [engine._ocr.text_det.infer.session, engine._ocr.text_rec.session.session]
    assert [s.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
            for s in sessions] == ["0", "0"]
    assert isinstance(infer_engine.OrtInferSession.__dict__["_init_sess_opts"], staticmethod)
    fresh = infer_engine.OrtInferSession._init_sess_opts({})  # what RapidOCR builds for anyone else
    with pytest.raises(RuntimeError, match="does not have"):
        fresh.get_session_config_entry("session.intra_op.allow_spinning")
