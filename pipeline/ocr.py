"""On-screen text lane: RapidOCR (PP-OCRv4) behind a text-change gate, merged into time-ranged text spans.

OCR costs 0.05-0.5 s a frame on a 2-core CPU, so a frame is read only when its text may differ from the last frame
read (change.TextGate): a moving camera under the same caption is not new text.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from longwatch.pipeline.change import TextGate, overlaps
from longwatch.pipeline.frames import Clip
from longwatch.pipeline.sampling import resize_max_side


class OcrLine(NamedTuple):
    """One text line read from an image; `box` is (x0, y0, x1, y1) in the input image's pixels."""

    text: str
    confidence: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class TextSpan:
    """Text visible on screen over [t0, t1) source seconds; `continued` when it began in an earlier clip."""

    text: str
    t0: float
    t1: float
    confidence: float
    continued: bool = False
    context: str = ""  # what the text sits under (slide title, table header): indexed with it, never quoted as it


@dataclass
class OcrStats:
    """Counters that prove the gate works: frames seen = OCR calls + frames skipped (sampled vs read frames)."""

    frames_seen: int = 0
    ocr_calls: int = 0
    frames_skipped: int = 0
    ocr_seconds: float = 0.0
    gate_seconds: float = 0.0
    strip_only: int = 0  # OCR calls that read only the strips the gate named and found nothing new there


class OcrEngine:
    """RapidOCR with settings for video frames: no upscaling for detection, no 180-degree classifier.

    Args:
        max_side: frames larger than this are downscaled before OCR; 960 keeps 1080p captions legible.
        min_confidence: lines the recogniser scores lower are dropped (half-drawn, blurred, animated text).
        threads: ONNX Runtime intra-op threads; None lets it use every core.
    """

    def __init__(self, max_side: int = 960, min_confidence: float = 0.75, threads: int | None = None):
        from longwatch import optional

        RapidOCR = optional.require("rapidocr").RapidOCR
        if max_side < 64:
            raise ValueError(f"max_side must be at least 64 pixels to keep text legible, got {max_side}")
        # RapidOCR's default detector upscales the short side to 736 (2x for 640x360 frames, ~2x the cost);
        # "max" only ever shrinks. Video text is upright, so the orientation classifier is skipped too.
        kwargs: dict = {"det_limit_type": "max", "use_cls": False}
        if threads is not None:
            kwargs["intra_op_num_threads"] = threads
        with _waiting_threads_sleep():
            self._ocr = RapidOCR(**kwargs)
        self.max_side = max_side
        self.min_confidence = min_confidence

    def read(self, image: np.ndarray) -> list[OcrLine]:
        """Text lines of one RGB image [H, W, 3] uint8, top to bottom, left to right."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise TypeError(f"OcrEngine.read needs an [H, W, 3] uint8 RGB array, got "
                            f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}")
        small = resize_max_side(image, self.max_side)
        scale = image.shape[1] / small.shape[1]
        # RapidOCR follows OpenCV and expects BGR channel order.
        result, _ = self._ocr(np.ascontiguousarray(small[:, :, ::-1]))
        lines = []
        for points, text, score in result or []:
            text = respace(re.sub(r"\s+", " ", str(text)).strip())
            if float(score) < self.min_confidence or len(_key(text)) < 2:
                continue
            pts = np.asarray(points, dtype=np.float64) * scale
            box = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
            lines.append(OcrLine(text, float(score), box))
        return lines


@contextmanager
def _waiting_threads_sleep():
    """ONNX Runtime sessions made meanwhile let idle pool threads sleep instead of spinning. A spinning thread
    holds a core the other half of a split needs: on the shared 2-core machine (load ~9) a frame's OCR took
    310-345 ms spinning and 140-170 ms without. RapidOCR has no setting for it, so its session options are
    extended while it builds its sessions (and restored after)."""
    try:
        from rapidocr_onnxruntime.utils import infer_engine
    except ImportError:
        yield
        return
    original = infer_engine.OrtInferSession.__dict__.get("_init_sess_opts")
    if not isinstance(original, staticmethod):
        yield  # another RapidOCR layout: keep its defaults
        return

    def options(config):
        opts = original.__func__(config)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    infer_engine.OrtInferSession._init_sess_opts = staticmethod(options)
    try:
        yield
    finally:
        infer_engine.OrtInferSession._init_sess_opts = original


def respace(text: str) -> str:
    """Put back the spaces PP-OCR drops between tightly kerned words ("THANKSFORWATCHING" -> "THANKS FOR WATCHING").

    Only long letter runs are split (by English unigram frequency, wordninja), so names like "Nightjar" stay whole;
    without wordninja installed the text is returned as read.
    """
    limit = 10 if " " not in text else 13  # a line with spaces lost only some; split only clearly glued runs
    # Seams no word has: "is4-7-1-9", "room175", "isREDFOX" (lowercase glued to digits or to an all-caps word).
    text = re.sub(r"(?<=[a-z]{2})(?=\d)|(?<=\d)(?=[a-z]{2})|(?<=[a-z])(?=[A-Z]{2})", " ", text)
    runs = [m for m in re.finditer(r"[A-Za-z]+", text) if len(m.group()) >= limit]
    if not runs:
        return text
    from longwatch import optional

    if not optional.installed("wordninja"):
        return text
    import wordninja
    out, end = [], 0
    for m in runs:
        words = wordninja.split(m.group())
        out.append(text[end:m.start()])
        if len(words) > 1:  # also part the run from a glued neighbour: "is4-7-1-9" -> "is 4-7-1-9"
            left = " " if m.start() > 0 and text[m.start() - 1].isalnum() else ""
            right = " " if m.end() < len(text) and text[m.end()].isalnum() else ""
            out.append(left + " ".join(words) + right)
        else:
            out.append(m.group())
        end = m.end()
    out.append(text[end:])
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _key(text: str) -> str:
    """Matching key: case and spacing dropped, since OCR loses spaces in tightly kerned titles."""
    return re.sub(r"[\s\W_]+", "", text.casefold())


def _same_text(a: str, b: str) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) < 6:
        return False
    # One or two misread characters between reads of the same caption must not split its span.
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.85


@dataclass(eq=False)  # identity, not field equality: two spans may hold equal text
class _Active:
    text: str
    key: str
    t0: float
    t1: float
    confidence: float
    box: tuple[float, float, float, float]
    context: str = ""

    def span(self, clip_t0: float | None = None) -> TextSpan:
        continued = clip_t0 is not None and self.t0 < clip_t0 - 1e-9
        return TextSpan(self.text, self.t0, self.t1, self.confidence, continued, self.context)


class OcrLane:
    """Reads on-screen text clip by clip, calling OCR only when the text may have changed.

    Args:
        engine: the OCR engine (an `OcrEngine`, or anything with `.read(image) -> list[OcrLine]`).
        gate: decides which frames are read (default: `TextGate()`); one gate per lane, it remembers the last read.
        merge_gap: a text that vanishes for at most this many seconds (a missed read) continues its span.
        arrange: applied to each frame's lines right after OCR (e.g. grouping them into screen rows); what it
            returns needs .text, .confidence and .box, and may carry .context (a slide title, a table header).

    State (open spans, last frame read) carries from clip to clip, so feed one source's clips in order and use a
    new lane per source.
    """

    def __init__(self, engine: OcrEngine | None = None, merge_gap: float = 1.5,
                 arrange: Callable[[list[OcrLine]], list] | None = None, gate: TextGate | None = None):
        self.engine = engine if engine is not None else OcrEngine()
        self.arrange = arrange
        self.gate = gate if gate is not None else TextGate()
        self.merge_gap = merge_gap
        self.stats = OcrStats()
        self._active: list[_Active] = []
        self._closed: list[_Active] = []
        self._last_t = -np.inf

    def process(self, clip: Clip) -> list[TextSpan]:
        """Text visible anywhere in `clip`, each span with its whole time range so far (t1 within this clip)."""
        visible: dict[int, _Active] = {}
        n = len(clip.times)
        for i in range(n):
            t = float(clip.times[i])
            if t < self._last_t:
                raise ValueError(f"OcrLane got frame time {t:.3f} s after {self._last_t:.3f} s; feed clips in order "
                                 "and use a new lane per source")
            self._last_t = t
            # A frame stands for the time until the next sampled frame (or the clip's end).
            t_next = float(clip.times[i + 1]) if i + 1 < n else max(float(clip.t1), t)
            self.stats.frames_seen += 1
            start = time.perf_counter()
            decision = self.gate.decide(clip.frames[i], t)
            self.stats.gate_seconds += time.perf_counter() - start
            if not decision.read:  # the same text as the frame last read: it stays on screen until t_next
                self.stats.frames_skipped += 1
                for a in self._active:
                    a.t1 = t_next
                    visible[id(a)] = a
                continue
            start = time.perf_counter()
            lines = self._read(clip.frames[i], decision.strips)
            self.stats.ocr_seconds += time.perf_counter() - start
            self.stats.ocr_calls += 1
            if lines is None:  # the strips where text might have appeared hold none that is new
                self.stats.strip_only += 1
                self.gate.read_boxes([], whole=False)
                for a in self._active:
                    a.t1 = t_next
                    visible[id(a)] = a
                continue
            self.gate.read_boxes([line.box for line in lines])
            self._update(lines, t, t_next, decision.since, decision.region)
            for a in self._active:
                visible[id(a)] = a
        ordered = sorted(visible.values(), key=lambda a: (a.t0, a.box[1], a.box[0]))
        return [a.span(clip.t0) for a in ordered]

    def spans(self) -> list[TextSpan]:
        """Every distinct text seen so far, in order of appearance, with its full time range."""
        return [a.span() for a in sorted(self._closed + self._active, key=lambda a: (a.t0, a.box[1], a.box[0]))]

    def _read(self, image: np.ndarray, strips: list[tuple[int, int]] | None) -> list | None:
        """The (arranged) lines of the whole image; with `strips`, the strips are read first and the whole image
        only when one shows a line no open span has: None then means "nothing new"."""
        if strips is not None and not any(self._new_line(self._masked(image, y0, y1)) for y0, y1 in strips):
            return None
        lines = self.engine.read(image)
        return self.arrange(lines) if self.arrange is not None else lines

    def _masked(self, image: np.ndarray, y0: int, y1: int) -> np.ndarray:
        """Rows y0:y1 with the text already known blanked out, so only what may be new is recognised."""
        strip = image[y0:y1].copy()
        for a in self._active:
            bx0, by0, bx1, by1 = (int(a.box[0]), max(0, int(a.box[1]) - y0), int(np.ceil(a.box[2])),
                                  min(y1 - y0, int(np.ceil(a.box[3])) - y0))
            if by1 > by0 and bx1 > bx0:
                strip[by0:by1, bx0:bx1] = strip[by0:by1, bx0:bx1].mean(axis=(0, 1)).astype(np.uint8)
        return strip

    def _new_line(self, strip: np.ndarray) -> bool:
        if strip.shape[0] < 8:
            return False
        keys = [a.key for a in self._active]
        # What is left of a known line at a strip's edge still reads as part of it: not new.
        return any(not any(_same_text(k, key) or key in k for k in keys)
                   for key in (_key(line.text) for line in self.engine.read(strip)))

    def _update(self, lines: list, t: float, t_next: float, since: float | None = None,
                region: tuple[float, float, float, float] | None = None) -> None:
        """Match one read frame's lines to the open spans; a new line inside `region` (where the gate saw text
        settle) began at `since`, the frame before, which already showed it."""
        still: list[_Active] = []
        for line in lines:
            key = _key(line.text)
            match = next((a for a in still if _same_text(a.key, key)), None)
            if match is not None:  # the same text twice in one frame (e.g. a repeated logo) is one span
                match.confidence = max(match.confidence, line.confidence)
                continue
            match = next((a for a in self._active if _same_text(a.key, key)), None)
            if match is None:
                match = next((a for a in reversed(self._closed)
                              if t - a.t1 <= self.merge_gap and _same_text(a.key, key)), None)
                if match is not None:
                    self._closed.remove(match)
            if match is None:
                t0 = since if since is not None and overlaps(line.box, region) else t
                match = _Active(line.text, key, t0, t_next, line.confidence, line.box, getattr(line, "context", ""))
            else:
                self._active = [a for a in self._active if a is not match]
                match.t1 = t_next
                # Keep the clearest reading, but never a part of it: a caption wiping out reads as its tail.
                if line.confidence > match.confidence and key not in match.key:
                    match.text, match.key, match.confidence = line.text, key, line.confidence
                    match.context = getattr(line, "context", "") or match.context
            still.append(match)
        self._closed.extend(a for a in self._active if a not in still)
        self._active = still


