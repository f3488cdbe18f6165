"""Frame sampling at a target rate, resizing to a max side, and grouping frames into clips.

Shared by every source (file, live, iterable): they yield `Frame`s with pts-derived times; this module never counts frames to tell time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from longwatch.pipeline.frames import Clip, Frame


def sample_fps(frames: Iterable[Frame], fps: float | None) -> Iterator[Frame]:
    """Keep the first frame at or after each tick of a 1/fps grid anchored at the first frame's time.

    Works for variable frame rate because it reads timestamps, not indices. `fps=None` keeps every frame.
    Frames whose time goes backwards (broken pts) are dropped rather than reordered.
    """
    if fps is None:
        yield from frames
        return
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    step = 1.0 / fps
    start: float | None = None
    next_tick = -math.inf
    last_t = -math.inf
    for frame in frames:
        if frame.t < last_t:
            continue
        last_t = frame.t
        if start is None:
            start = frame.t
        # Half a microsecond of slack: pts converted from rationals rarely land exactly on the grid.
        if frame.t + 5e-7 >= next_tick:
            yield frame
            ticks_passed = math.floor((frame.t - start) / step + 5e-7) + 1
            next_tick = start + ticks_passed * step


def resize_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale (never upscale) so that max(H, W) <= max_side, keeping the aspect ratio; sides stay even."""
    if max_side is None:
        return image
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    new_w = max(2, int(round(w * scale / 2)) * 2)
    new_h = max(2, int(round(h * scale / 2)) * 2)
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))


def make_clips(frames: Iterable[Frame], clip_seconds: float,
               until: Callable[[], float | None] | None = None) -> Iterator[Clip]:
    """Group frames into clips covering consecutive [t0, t0 + clip_seconds) windows of source time.

    A window with no frames (a gap in a live stream) produces no clip; the last, partial clip is
    emitted with t1 = its window end clamped to just after its last frame. Only one clip's frames are held.
    `until`, called once the frames are exhausted, may give where the source's last decoded frame ends (sampling
    drops the frames after the last kept one); the last clip then ends exactly there.
    A clip's index is its window number in source time, so a run resumed mid-video numbers clips as an
    uninterrupted run would.
    """
    if clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
    buf: list[Frame] = []
    window = None
    for frame in frames:
        w = math.floor(frame.t / clip_seconds + 1e-9)
        if window is not None and w != window and buf:
            yield _clip(buf, window, clip_seconds, final=False)
            buf = []
        window = w
        buf.append(frame)
    if buf:
        end = until() if until is not None else None
        yield _clip(buf, window, clip_seconds, final=True, end=end)


def _clip(buf: list[Frame], window: int, clip_seconds: float, final: bool, end: float | None = None) -> Clip:
    t0 = window * clip_seconds
    t1 = (window + 1) * clip_seconds
    if final and end is not None and end > buf[-1].t:
        t1 = min(t1, end)
    elif final:
        # The source may end mid-window: cite only time that exists (one frame interval past the last frame,
        # and never past where the source said its last frame ends).
        interval = (buf[-1].t - buf[0].t) / (len(buf) - 1) if len(buf) > 1 else min(clip_seconds, 1.0)
        t1 = min(t1, buf[-1].t + interval)
        if buf[-1].end is not None and buf[-1].end > buf[-1].t:
            t1 = min(t1, buf[-1].end)
    first = buf[0].image.shape
    # A stream may change resolution mid-clip (a camera switching modes, concatenated recordings): the clip keeps
    # every frame, rescaled to its first frame's size, so no stretch of time silently goes missing.
    images = [f.image if f.image.shape == first else _rescale(f.image, first) for f in buf]
    return Clip(index=window, t0=t0, t1=t1, frames=np.stack(images),
                times=np.array([f.t for f in buf], dtype=np.float64))


def _rescale(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((shape[1], shape[0]), Image.BILINEAR))
