"""Answers and citations: what `Pipeline.ask` returns, and the time-ordered prompt blocks the answerer reads.

Times print as hh:mm:ss; a prompt block is `[hh:mm:ss–hh:mm:ss] <tokens> caption / on-screen text`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def format_time(seconds: float, ceil: bool = False) -> str:
    """`3668.2` -> `"01:01:08"`; `ceil=True` rounds up so a range's end still covers its last instant."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a video time must be a finite number of seconds >= 0, got {seconds}")
    s = math.ceil(seconds - 1e-6) if ceil else math.floor(seconds + 1e-6)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_span(t0: float, t1: float) -> str:
    """`[00:41:08–00:41:12]` (en dash), the label every prompt block and citation shares."""
    return f"[{format_time(t0)}\u2013{format_time(t1, ceil=True)}]"


NEEDS_VISION = ("This question needs a vision model: the offline preset answers from what is said, subtitled and "
                "shown as text, and none of it matches. Use the 'vlm' preset (`longwatch models pull`) to answer it.")

NOT_IN_TEXT = ("Nothing said, subtitled or shown as text in the video mentions this, so I cannot answer it from the "
               "video. (The offline preset reads speech, subtitles and on-screen text; the 'vlm' preset also sees "
               "the pictures.)")

# Words that ask about the picture itself. "How many", "where" and "who" are not among them: they ask for counts,
# places and names that speech, subtitles and slides state as often as pictures show them.
_VISUAL_WORDS = re.compile(r"\b(colou?rs?|looks?( like)?|wear(s|ing)?|worn|see|seen|what happens|doing|scene|"
                           r"persons?|people|animals?|objects?|describe|picture|image|shape|background)\b")


def is_visual_question(question: str) -> bool:
    """Words that ask about what is seen; a text-only answerer declines these unless stored text supports them."""
    return bool(_VISUAL_WORDS.search(question.lower()))


@dataclass(frozen=True)
class Citation:
    """A time range of one video that supports the answer, with its relevance in [0, 1]."""

    video: str
    t0: float
    t1: float
    score: float

    def label(self, with_video: bool = False) -> str:
        return (f"{self.video} " if with_video else "") + format_span(self.t0, self.t1)


@dataclass(frozen=True)
class ClipUse:
    """One clip the answer considered: its relevance and the visual tokens ATA gave it (0 = text only)."""

    video: str
    t0: float
    t1: float
    relevance: float
    tokens: int


@dataclass(frozen=True)
class QuotedEvidence:
    """One piece of evidence an answer quotes, exactly as said/subtitled/shown; `context` is a table's header."""

    kind: str  # speech | subtitle | ocr | caption
    video: str
    t0: float
    t1: float
    text: str
    context: str = ""


@dataclass
class Answer:
    """What `ask` returns: text, supporting time ranges, visual tokens read, per-stage seconds."""

    text: str
    citations: list[Citation]
    tokens_used: int
    timings: dict[str, float]
    clips_considered: int
    budget: int = 0
    needs_vision: bool = False  # the question asks about visuals and the answerer reads text only
    prefill_tokens: int | None = None  # prompt length the answerer saw, when it reports one
    videos: list[str] = field(default_factory=list)
    clips: list[ClipUse] = field(default_factory=list)  # per considered clip, for timelines and debugging
    evidence: list[QuotedEvidence] = field(default_factory=list)  # what the text quotes; citations come from it

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        multi = len({c.video for c in self.citations}) > 1
        cites = ", ".join(f"{c.label(multi)} ({c.score:.2f})" for c in self.citations) or "none"
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items())
        return (f"{self.text}\n\nSources: {cites}\nVisual tokens: {self.tokens_used}/{self.budget}; "
                f"clips considered: {self.clips_considered}; {stages}")


@dataclass
class PromptBlock:
    """One stretch of a prompt: text, then optional visual tokens [t, h, w, D], then more text.

    Data every answerer reads (text-only ones read the text alone). `duration` (seconds covered by `tokens`)
    lets time-aware position schemes (Qwen2.5-VL) space frames in real time; other families ignore it.
    """

    text: str
    tokens: torch.Tensor | None = None
    text_after: str = ""
    duration: float | None = None


@dataclass(eq=False)
class ContextItem:
    """One selected clip as the answerer will see it; `tokens` is [t, h, w, D] after ATA pooling, or None."""

    video: str
    clip_index: int
    t0: float
    t1: float
    caption: str
    ocr_text: str
    relevance: float
    tokens: object | None = None  # torch.Tensor; kept untyped so this module imports without torch

    @property
    def n_tokens(self) -> int:
        return 0 if self.tokens is None else int(np.prod(tuple(self.tokens.shape[:-1])))


def block_text(item: ContextItem, video_label: str | None) -> tuple[str, str]:
    """(text before the tokens, text after them) for one clip."""
    head = (f"Video {video_label} " if video_label else "") + format_span(item.t0, item.t1) + " "
    parts = [p for p in (item.caption.strip(), f"On-screen text: {item.ocr_text.strip()}" if item.ocr_text.strip()
                         else "") if p]
    tail = " / ".join(parts) if parts else "(no description)"
    return head, (" " if item.tokens is not None else "") + tail + "\n"


def build_blocks(items: Sequence[ContextItem]) -> list[PromptBlock]:
    """Prompt blocks in time order (video by video when several); video names appear only when several."""
    multi = len({i.video for i in items}) > 1
    blocks = []
    for i in sorted(items, key=lambda i: (i.video, i.t0, i.clip_index)):
        head, tail = block_text(i, i.video if multi else None)
        blocks.append(PromptBlock(head, tokens=i.tokens, text_after=tail,
                                duration=(i.t1 - i.t0) if i.tokens is not None else None))
    return blocks


def cite(items: Sequence[ContextItem], max_citations: int, spread: int = 0) -> list[Citation]:
    """Citations from the most relevant clips, adjacent clips of one video merged into one range.

    With `spread > 0` (whole-video questions) the timeline of each video is cut into `spread` equal
    parts and the best clip of each part is cited first, so a summary points at the whole storyline.
    """
    if max_citations < 1 or not items:
        return []
    ranked = sorted(items, key=lambda i: (-i.relevance, i.video, i.t0))
    chosen: list[ContextItem] = []
    if spread > 0:
        for video in sorted({i.video for i in items}):
            own = [i for i in items if i.video == video]
            lo, hi = min(i.t0 for i in own), max(i.t1 for i in own)
            width = max(hi - lo, 1e-9) / spread
            for part in range(spread):
                inside = [i for i in ranked if i.video == video
                          and min(int((i.t0 - lo) / width), spread - 1) == part]
                if inside:
                    chosen.append(inside[0])
        chosen = sorted(chosen, key=lambda i: (-i.relevance, i.video, i.t0))[:max_citations]
    for i in ranked:
        if len(_merge(chosen)) >= max_citations:
            break
        if not any(i is c for c in chosen):
            chosen.append(i)
    merged = _merge(chosen)
    return sorted(merged, key=lambda c: (-c.score, c.video, c.t0))


def _merge(items: Sequence[ContextItem]) -> list[Citation]:
    """Citations of `items` with consecutive clips of one video joined into one range."""
    merged: list[Citation] = []
    last: ContextItem | None = None
    for i in sorted(items, key=lambda i: (i.video, i.clip_index)):
        if merged and last is not None and last.video == i.video and i.clip_index == last.clip_index + 1:
            prev = merged[-1]
            merged[-1] = Citation(i.video, prev.t0, max(prev.t1, i.t1), max(prev.score, i.relevance))
        else:
            merged.append(Citation(i.video, i.t0, i.t1, i.relevance))
        last = i
    return merged
