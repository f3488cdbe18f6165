"""Plain data that crosses module boundaries: frames, clips, and what a probe learns about a video.

Shape letters: T frames, H/W pixels; images are HxWx3 uint8 RGB, upright (rotation already applied).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from longwatch.memory.records import Gap  # noqa: F401  (re-exported: one gap record from source to bank)


@dataclass(frozen=True)
class Frame:
    """One decoded frame; `t` is seconds from the start of the source, from the stream's pts.

    `end`, when the source knows it, is when the frame stops being shown (t plus its duration): the last clip of
    a source ends there, so no clip claims time the source never delivered.
    """

    t: float
    image: np.ndarray  # [H, W, 3] uint8 RGB
    end: float | None = None


@dataclass(frozen=True)
class Clip:
    """Consecutive sampled frames covering [t0, t1) seconds; `index` counts clips from 0 per source."""

    index: int
    t0: float
    t1: float
    frames: np.ndarray  # [T, H, W, 3] uint8 RGB
    times: np.ndarray  # [T] float64 seconds, one per frame

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"clip frames must be [T, H, W, 3], got {self.frames.shape}")
        if len(self.times) != len(self.frames):
            raise ValueError(f"clip has {len(self.frames)} frames but {len(self.times)} timestamps")


@dataclass(frozen=True)
class VideoInfo:
    """What `probe()` found, before any heavy decode. Sizes are as displayed (after rotation)."""

    source: str
    container: str  # e.g. "mov,mp4,m4a,3gp,3g2,mj2", "avi", "matroska,webm", "rtsp"
    codec: str  # e.g. "h264", "hevc", "vp9", "mpeg4", "av1"
    width: int
    height: int
    fps: float  # average frame rate; 0.0 when the container does not say
    duration: float | None  # seconds; None for live streams
    n_frames: int | None  # frames the container declares, when it does
    rotation: int = 0  # degrees clockwise the stored frames must turn to be upright (0/90/180/270)
    has_audio: bool = False
    is_live: bool = False
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        dur = "live" if self.duration is None else f"{self.duration:.2f} s"
        return (f"{self.source}: {self.codec} {self.width}x{self.height} @ {self.fps:.3f} fps, {dur}, "
                f"rotation {self.rotation}, container {self.container}")
