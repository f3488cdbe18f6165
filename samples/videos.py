"""Sample videos with known content: moving scenes, on-screen text at known times, any codec PyAV can encode.

`make_sample` returns a manifest of what is on screen when; `write_video` and `text_card` are the building blocks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

# codec name -> (PyAV encoder, encoder options). Fast settings: samples are for tests, not for looks.
ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "h264": ("libx264", {"preset": "ultrafast", "crf": "23"}),
    "hevc": ("libx265", {"preset": "ultrafast", "x265-params": "log-level=error"}),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "b": "500k"}),
    "mpeg4": ("mpeg4", {"qscale": "5"}),
    "av1": ("libsvtav1", {"preset": "11"}),
}
# VFR timestamps need a fine time base; 1/1000 s is what Matroska and most phones use.
VFR_TIME_BASE = Fraction(1, 1000)


@dataclass(frozen=True)
class TextEvent:
    """`text` is on screen for t0 <= t < t1 seconds."""

    t0: float
    t1: float
    text: str


@dataclass(frozen=True)
class SampleManifest:
    """What a generated sample holds: frame times come from `times` (pts), texts from `texts`."""

    path: str
    codec: str
    width: int  # as displayed (upright)
    height: int
    fps: float
    duration: float
    n_frames: int
    rotation: int = 0  # degrees clockwise a player turns the stored frames
    texts: list[TextEvent] = field(default_factory=list)
    times: list[float] | None = None  # only for VFR samples, where the times are the point

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def available_codecs() -> list[str]:
    """The codecs of ENCODERS whose encoder this PyAV build has."""
    import av

    return [name for name, (enc, _) in ENCODERS.items() if enc in av.codecs_available]


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def draw_text(image: np.ndarray, text: str, xy: tuple[int, int] | None = None, font_size: int | None = None,
              fg: tuple[int, int, int] = (255, 255, 255), box: tuple[int, int, int] | None = (0, 0, 0)) -> np.ndarray:
    """A copy of `image` [H, W, 3] with `text` drawn on a solid box (OCR-friendly); centred when `xy` is None."""
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    font = _font(font_size or max(12, h // 12))
    pil = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(pil)
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    if xy is None:
        xy = ((w - tw) // 2, (h - th) // 2)
    pad = max(4, th // 4)
    if box is not None:
        draw.rectangle((xy[0] - pad, xy[1] - pad, xy[0] + tw + pad, xy[1] + th + pad), fill=box)
    draw.multiline_text((xy[0] - left, xy[1] - top), text, font=font, fill=fg)
    return np.asarray(pil)


def text_card(text: str, size: tuple[int, int] = (640, 360), bg: tuple[int, int, int] = (20, 20, 20),
              fg: tuple[int, int, int] = (255, 255, 255), font_size: int | None = None) -> np.ndarray:
    """A [H, W, 3] uint8 frame of centred `text` on a plain background; size is (W, H)."""
    w, h = size
    image = np.empty((h, w, 3), np.uint8)
    image[:] = bg
    return draw_text(image, text, font_size=font_size, fg=fg, box=None)


def scene(t: float, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A [H, W, 3] frame at time t: a colour field that changes every 5 s and a square that moves each second.

    Whole-second steps keep an hour to ~3,600 distinct images, so long samples encode fast, yet frames differ.
    """
    w, h = size
    rng = np.random.default_rng(seed * 1_000_003 + int(t // 5))
    image = np.empty((h, w, 3), np.uint8)
    image[:] = rng.integers(30, 200, size=3)
    sec = int(t)
    side = max(4, min(w, h) // 6)
    x = (sec * 37 + seed * 11) % max(1, w - side)
    y = (sec * 23 + seed * 7) % max(1, h - side)
    image[y:y + side, x:x + side] = ((sec * 53) % 256, 255 - (sec * 29) % 256, (sec * 97) % 256)
    return image


def write_video(path: str | Path, frames: Iterable[np.ndarray | tuple[float, np.ndarray]], fps: float,
                codec: str = "h264", rotation: int = 0, gop: int | None = None) -> Path:
    """Encode frames [H, W, 3] uint8 RGB (all one size) to `path`; the suffix picks the container.

    Items may be `(t_seconds, image)`: then pts follow t exactly (variable frame rate); plain images get pts
    i/fps. `rotation` (0/90/180/270, clockwise, like a phone's "rotate" tag) stores the frames turned the
    other way and records a display matrix, so upright-aware readers show the input upright.
    The same image object repeated is converted once, which keeps hour-long samples of few scenes fast.
    """
    import av

    if codec not in ENCODERS:
        raise ValueError(f"codec must be one of {sorted(ENCODERS)}, got {codec!r}")
    if rotation % 90 or not 0 <= rotation < 360:
        raise ValueError(f"rotation must be 0, 90, 180 or 270 degrees, got {rotation}")
    encoder, options = ENCODERS[codec]
    if encoder not in av.codecs_available:
        raise ValueError(f"this PyAV build has no {encoder} encoder for {codec}; choose from {available_codecs()}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    options = {**options, "g": str(gop or max(1, int(round(fps * 2))))}
    # AVI has no per-frame timestamps: a 1/1000 time base there would mean 1000 fps of mostly empty frames.
    time_base = Fraction(1, 1) / rate if path.suffix.lower() == ".avi" else VFR_TIME_BASE
    if codec == "av1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr unless told errors only
    n = 0
    with av.open(str(path), "w") as out:
        stream = None
        last_id, last_frame = None, None
        for item in frames:
            t, image = item if isinstance(item, tuple) else (n / fps, item)
            if stream is None:
                h, w = image.shape[:2]
                if rotation in (90, 270):
                    h, w = w, h
                stream = out.add_stream(encoder, rate=rate, options=options)
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                stream.codec_context.time_base = time_base
                if rotation:
                    stream.set_display_rotation((-rotation) % 360)  # PyAV takes counter-clockwise degrees
            if id(image) != last_id:
                stored = np.rot90(image, k=rotation // 90) if rotation else image
                # Converting to the encoder's pixel format here, once per distinct image, not once per frame
                # inside encode(), is what makes an hour of repeated scenes cheap (~4x faster).
                last_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(stored), format="rgb24"
                                                        ).reformat(format="yuv420p")
                last_id = id(image)
            last_frame.pts = int(round(t / time_base))
            last_frame.time_base = time_base
            for packet in stream.encode(last_frame):
                out.mux(packet)
            n += 1
        if stream is None:
            raise ValueError(f"no frames to write to {path}")
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_sample(path: str | Path, duration: float, fps: float = 10.0, size: tuple[int, int] = (640, 360),
                texts: Sequence[tuple[float, float, str]] = (), seed: int = 0, codec: str = "h264",
                rotation: int = 0, times: Sequence[float] | None = None, font_size: int | None = None
                ) -> SampleManifest:
    """Write a sample of moving scenes with `texts` [(t0, t1, text)] on screen, and return its manifest.

    `size` is (W, H) as displayed. Pass `times` (seconds, increasing) for a variable-frame-rate sample;
    otherwise frames sit at i/fps for i < duration*fps. The manifest is also saved as `<path>.json`.
    """
    events = [TextEvent(float(a), float(b), str(s)) for a, b, s in texts]
    for e in events:
        if not 0 <= e.t0 < e.t1:
            raise ValueError(f"text {e.text!r} needs 0 <= t0 < t1, got ({e.t0}, {e.t1})")
    frame_times = list(times) if times is not None else [i / fps for i in range(max(1, int(round(duration * fps))))]
    cache: dict[tuple, np.ndarray] = {}

    def render(t: float) -> np.ndarray:
        on = tuple(e.text for e in events if e.t0 <= t < e.t1)
        key = (int(t), on)
        if key not in cache:
            cache.clear()  # frames come in time order: only the current second's image is worth keeping
            image = scene(t, size, seed)
            for k, text in enumerate(on):
                image = draw_text(image, text, xy=(size[0] // 16, size[1] // 8 + k * size[1] // 5),
                                  font_size=font_size)
            cache[key] = image
        return cache[key]

    write_video(path, ((t, render(t)) for t in frame_times), fps=fps, codec=codec, rotation=rotation)
    manifest = SampleManifest(path=str(path), codec=codec, width=size[0], height=size[1], fps=fps,
                              duration=frame_times[-1] + (1.0 / fps if times is None else 0.0),
                              n_frames=len(frame_times), rotation=rotation, texts=events,
                              times=[float(t) for t in times] if times is not None else None)
    Path(str(path) + ".json").write_text(manifest.to_json())
    return manifest


def vfr_times(duration: float, seed: int = 0) -> list[float]:
    """Irregular frame times over [0, duration): bursts at 30 fps, slow stretches at 4 fps, one 1.5 s gap."""
    rng = np.random.default_rng(seed)
    times, t = [], 0.0
    while t < duration:
        times.append(round(t, 3))
        if duration * 0.4 <= t < duration * 0.4 + 0.26:
            t += 1.5
        else:
            t += 1 / 30 if (int(t) % 2 == 0) else 1 / 4 + float(rng.uniform(0, 0.02))
    return times


STANDARD_SET = {
    # name: (suffix, codec, kwargs); short files for tests and `longwatch samples make standard`.
    "h264": (".mp4", "h264", {}),
    "vp9": (".webm", "vp9", {}),
    "mpeg4": (".avi", "mpeg4", {}),
    "hevc": (".mp4", "hevc", {}),
    "av1": (".mkv", "av1", {}),
    "rotated": (".mp4", "h264", {"rotation": 90, "size": (180, 320)}),
    "vfr": (".mkv", "h264", {"vfr": True}),
    "one_frame": (".mp4", "h264", {"duration": 0.1}),
}


def make_standard(out_dir: str | Path, names: Iterable[str] | None = None, duration: float = 4.0,
                  size: tuple[int, int] = (320, 180)) -> dict[str, SampleManifest]:
    """Short samples covering codecs, rotation, VFR and a single frame; codecs without an encoder are skipped."""
    out = Path(out_dir)
    have = set(available_codecs())
    result = {}
    for name in names or STANDARD_SET:
        suffix, codec, kw = STANDARD_SET[name]
        if codec not in have:
            continue
        kw = dict(kw)
        dur = kw.pop("duration", duration)
        times = vfr_times(dur) if kw.pop("vfr", False) else None
        texts = [(0.0, dur / 2, f"{name.upper()} FIRST"), (dur / 2, dur, f"{name.upper()} SECOND")]
        result[name] = make_sample(out / f"{name}{suffix}", dur, fps=10.0, size=kw.pop("size", size), texts=texts,
                                   codec=codec, times=times, **kw)
    return result


def make_long(path: str | Path, hours: float = 1.0, fps: float = 10.0, size: tuple[int, int] = (640, 360),
              text_every: float = 300.0, seed: int = 0) -> SampleManifest:
    """A long H.264 sample (default one hour at 640x360) with a numbered caption every `text_every` seconds."""
    duration = hours * 3600.0
    texts = [(t, t + 10.0, f"CHAPTER {k + 1} AT {int(t // 60):02d}:{int(t % 60):02d}")
             for k, t in enumerate(np.arange(0.0, duration, text_every))]
    return make_sample(path, duration, fps=fps, size=size, texts=texts, seed=seed)
