"""Dataclasses the bank hands across its boundary, and its typed input error.

Plain Python only, so the pipeline and the app can import them without FAISS or SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longwatch.pipeline.errors import BankError


class BankInputError(BankError, ValueError):
    """A call the bank refused before writing anything: wrong dim, NaN, unknown video or space, duplicate clip."""


class BankWarning(RuntimeWarning):
    """Something on disk was repaired on open (stale or damaged index cache, torn shard tail)."""


@dataclass(frozen=True)
class TokenRef:
    """Where one clip's token tensor of one kind lives: shape [n, d] of `dtype`, in its video's shard."""

    kind: str
    n: int
    d: int
    dtype: str


@dataclass
class ClipRecord:
    """One clip of one video: its time span, text, free-form meta; `record_id`/`tokens` are filled by the bank."""

    video_id: str
    clip_index: int
    t0: float
    t1: float
    caption: str = ""
    ocr_text: str = ""
    meta: dict = field(default_factory=dict)
    record_id: int | None = None
    tokens: dict[str, TokenRef] = field(default_factory=dict)


@dataclass
class VideoRecord:
    """One video in the bank; `last_clip` is None until a clip is committed."""

    video_id: str
    source: str
    info: dict
    complete: bool
    clips: int
    last_clip: int | None
    duration: float | None
    created: float


@dataclass
class Hit:
    """One search result: inner-product score (cosine for L2-normalised vectors) and its record."""

    record_id: int
    score: float
    record: ClipRecord
