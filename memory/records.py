"""Dataclasses the bank hands across its boundary, and its typed input error.

Plain Python only, so the pipeline and the app can import them without FAISS or SQLite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from longwatch.errors import BankError


class BankInputError(BankError, ValueError):
    """A call the bank refused before writing anything: wrong dim, NaN, unknown video or space, duplicate clip."""


class BankBusy(BankError):
    """The bank's writer lock is held by another process (an ingest, a live watch, a server): writing must wait."""


class InvalidVideoId(BankInputError):
    """A video id that is not a plain slug; ids name bank entries and must never act as paths or patterns."""


VIDEO_ID_MAX = 128
_VIDEO_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def check_video_id(video_id) -> str:
    """Return `video_id` if it is a slug of letters, digits, `-`, `_`, `.` (no leading dot, at most 128 chars).

    One validator for every entry point (API, CLI, batch, UI, live, the bank itself): an id is only ever a name,
    so separators, `..`, wildcards and control characters are refused before anything is read or written.
    """
    if not isinstance(video_id, str):
        raise InvalidVideoId(f"video id must be a string (found: {type(video_id).__name__}). Pass a short name "
                             f"such as 'lecture-01'.")
    if not video_id or len(video_id) > VIDEO_ID_MAX or not _VIDEO_ID.fullmatch(video_id):
        shown = video_id if len(video_id) <= 40 else video_id[:40] + "..."
        length = f"{len(video_id)} character{'' if len(video_id) == 1 else 's'}"
        raise InvalidVideoId(f"video id {shown!r} is not allowed (found: {length}). Use 1 to "
                             f"{VIDEO_ID_MAX} letters, digits, '-', '_' or '.', not starting with '.', with no "
                             f"path separators, wildcards or spaces, e.g. 'lecture-01'.")
    return video_id


class BankWarning(RuntimeWarning):
    """Something on disk was repaired on open (stale or damaged index cache, torn shard tail)."""


@dataclass(frozen=True)
class TokenRef:
    """Where one clip's token tensor of one kind lives: shape [n, d] of `dtype`, in its video's shard."""

    kind: str
    n: int
    d: int
    dtype: str


EVIDENCE_KINDS = ("speech", "subtitle", "ocr", "caption")


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence with a time range: a speech segment, a subtitle cue, an on-screen row, a caption."""

    kind: str  # one of EVIDENCE_KINDS
    t0: float
    t1: float
    text: str  # what is quoted to the user, exactly as said/shown/subtitled
    context: str = ""  # indexed with `text` but never quoted as the fact: slide title, table header row
    meta: dict = field(default_factory=dict)  # small JSON: e.g. {"language": "en"}, {"table": true, "row": 3}


@dataclass(frozen=True)
class EvidenceRecord:
    """One committed piece of evidence: its bank id, the video and clip it was committed with, and its content."""

    evidence_id: int
    video_id: str
    clip_index: int
    kind: str
    t0: float
    t1: float
    text: str
    context: str
    meta: dict


@dataclass(frozen=True)
class EvidenceHit:
    """One search_evidence result: fused rank score, exact cosine, and its rank in the full-text list (if any)."""

    record: EvidenceRecord
    score: float  # reciprocal-rank-fusion score, higher is better
    dense: float | None  # cosine(query, evidence vector), filled for every hit
    lexical_rank: int | None  # 1-based rank in the FTS5 bm25 list, None when full-text search did not match it


@dataclass
class ClipRecord:
    """One clip of one video: time span, text, free-form meta, evidence; `record_id`/`tokens` are filled by the bank."""

    video_id: str
    clip_index: int
    t0: float
    t1: float
    caption: str = ""
    ocr_text: str = ""
    meta: dict = field(default_factory=dict)
    record_id: int | None = None
    tokens: dict[str, TokenRef] = field(default_factory=dict)
    # Committed with the clip in the same transaction; clips()/records() do not load it (see bank.evidence()).
    evidence: list[Evidence] = field(default_factory=list)


@dataclass(frozen=True)
class Gap:
    """A time range of a video that could not be decoded (damage, dropped stream); recorded, never hidden."""

    t0: float
    t1: float
    reason: str


@dataclass
class VideoRecord:
    """One video in the bank; `last_clip` is None until a clip is committed; `gaps` lists undecodable ranges."""

    video_id: str
    source: str
    info: dict
    complete: bool
    clips: int
    last_clip: int | None
    duration: float | None
    created: float
    gaps: list[Gap] = field(default_factory=list)


@dataclass
class Hit:
    """One search result: inner-product score (cosine for L2-normalised vectors) and its record."""

    record_id: int
    score: float
    record: ClipRecord
