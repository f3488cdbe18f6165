"""Ingest: a video becomes clip memories committed to the bank, one clip at a time, resumable after any crash.

`clip_encoder.ClipEncoder` runs the per-clip stages in order; `ingest` drives it over a source and commits with
`BankWriter`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


from longwatch.errors import CorruptVideo
from longwatch.pipeline.clip_encoder import ClipEncoder, ClipMemory, ResumePoint, info_dict, opened


@dataclass(frozen=True)
class IngestProgress:
    """Reported after every committed clip; `eta` is None for live sources and unknown durations."""

    video_id: str
    clips_done: int
    t: float
    duration: float | None
    elapsed: float
    eta: float | None
    lanes: dict[str, str] = field(default_factory=dict)  # evidence lane -> what ran or why not ("no audio stream")


@dataclass
class IngestReport:
    video_id: str
    clips_added: int
    clips_total: int
    resumed_from: int | None   # last committed clip index found before this run, None on a fresh start
    seconds: float
    complete: bool
    timings: dict[str, float] = field(default_factory=dict)
    lanes: dict[str, str] = field(default_factory=dict)  # as in IngestProgress


def resume_point(bank, video_id: str) -> ResumePoint | None:
    """Where an interrupted ingest of `video_id` continues: after its last committed clip, with its state."""
    last = bank.last_clip(video_id)
    if last is None:
        return None
    records = bank.clips(video_id)
    record = records[-1]
    memory = bank.tokens([record.record_id], "memory")[0] if "memory" in record.tokens else None
    # Speech the resumed run may hear again (its audio starts a little before the resume point) ends near it.
    speech = bank.evidence(video_id, kinds=["speech"], time_range=(max(0.0, record.t1 - 60.0), record.t1))
    seen = {"caption_from": record.meta.get("caption_from", record.clip_index),
            "caption_look": record.meta["caption_look"]} if record.meta.get("caption_look") else {}
    return ResumePoint(last, memory, record.caption or None, len(records), t1=float(record.t1),
                       speech_until=max((e.t1 for e in speech), default=None), seen=seen)


class BankWriter:
    """Commits `ClipMemory`s in order: registers the video, adds the clip atomically, completes the video."""

    def __init__(self, bank):
        self.bank = bank
        self._known: set[str] = set()

    def commit(self, memory: ClipMemory) -> int:
        video_id = memory.record.video_id
        if video_id not in self._known:
            self.bank.add_video(video_id, memory.source, memory.info)
            self._known.add(video_id)
        record_id = self.bank.add(memory.record, vectors=memory.vectors, tokens=memory.tokens)
        if memory.final:
            self.bank.mark_complete(video_id)
        return record_id


def ingest(bank, clip_encoder: ClipEncoder, source, video_id: str,
           progress: Callable[[IngestProgress], None] | None = None, subtitles: list | None = None) -> IngestReport:
    """Encode `source` (a VideoSource, or a spec for `open_source`) into `bank` as `video_id`.

    Resumes after the last committed clip when the bank already holds part of this video; memory is
    bounded because only the current clip, the carried state and one speech window of look-ahead are held.
    `subtitles`: subtitle files to read instead of the sidecars found beside a file.
    """
    start_wall = time.perf_counter()
    clip_seconds = clip_encoder.config.clip_seconds
    resume = resume_point(bank, video_id)
    start = 0 if resume is None else resume.last_clip + 1
    writer = BankWriter(bank)
    timings: dict[str, float] = {}
    lanes: dict[str, str] = {}
    frames: dict[str, int] = {}
    added = 0
    with opened(source) as src:
        info = src.info
        bank.add_video(video_id, info.source, info_dict(info))
        recorded = record_gaps(bank, video_id, ())  # the ranges already stored: a resumed run re-reads them
        try:
            for memory in clip_encoder.memories(src, video_id, start_clip=start, resume=resume, timings=timings,
                                                subtitles=subtitles, lanes=lanes):
                t = time.perf_counter()
                writer.commit(memory)
                timings["commit"] = timings.get("commit", 0.0) + time.perf_counter() - t
                added += 1
                _count_frames(memory.record.meta, frames, lanes)
                record_gaps(bank, video_id, getattr(src, "gaps", ()), recorded)
                if progress is not None:
                    progress(_progress(video_id, added, memory.record.t1, info.duration,
                                       time.perf_counter() - start_wall, start * clip_seconds, lanes))
        except CorruptVideo:
            # Damage that ends the file: every clip before it is committed (memories yields them first) and the
            # lost tail is a recorded gap. Nothing decodable at all is still an error.
            record_gaps(bank, video_id, getattr(src, "gaps", ()), recorded)
            if bank.last_clip(video_id) is None:
                raise
        record_gaps(bank, video_id, getattr(src, "gaps", ()), recorded)
        # A file served over a live protocol (an HTTP file) and read to its end is as complete as a local file.
        stats = getattr(src, "stats", None) if getattr(src, "finite", False) else None
        complete = not info.is_live or getattr(stats, "ended_reason", None) == "eof"
        if complete:
            bank.mark_complete(video_id)
    return IngestReport(video_id, added, len(bank.clips(video_id)), None if resume is None else resume.last_clip,
                        time.perf_counter() - start_wall, complete, timings, lanes)


def _count_frames(meta: dict, frames: dict[str, int], lanes: dict[str, str]) -> None:
    """Add one clip's frame counts to `frames` and say in `lanes` how much each gated stage looked at: sampled
    frames vs frames OCR read, clips captioned vs captions kept from an unchanged picture."""
    for key in ("frames", "ocr_frames_read", "vision_frames_reused"):
        frames[key] = frames.get(key, 0) + int(meta.get(key, 0))
    frames["clips"] = frames.get("clips", 0) + 1
    frames["captions_kept"] = frames.get("captions_kept", 0) + int("caption_from" in meta)
    if "ocr_frames_read" in meta:
        lanes["ocr"] = f"read {frames['ocr_frames_read']} of {frames['frames']} sampled frames"
    if "caption_look" in meta or "caption_from" in meta:
        made = frames["clips"] - frames["captions_kept"]
        lanes["captions"] = f"generated {made} for {frames['clips']} clips (the rest showed an unchanged picture)"
    if frames["vision_frames_reused"]:
        lanes["vision"] = f"{frames['vision_frames_reused']} of {frames['frames']} frames reused unchanged tokens"


def record_gaps(bank, video_id: str, gaps, recorded: set | None = None) -> set:
    """Add `gaps` (time a source could not decode) to the bank, each once; returns the (t0, t1) stored so far.

    `recorded` is that set from an earlier call; without it the bank is asked, since a resumed run or a rerun
    re-reads damage it already recorded."""
    if recorded is None:
        recorded = {(g.t0, g.t1) for g in bank.gaps(video_id)}
    for gap in gaps:
        if (gap.t0, gap.t1) not in recorded:
            bank.add_gap(video_id, gap.t0, gap.t1, gap.reason)
            recorded.add((gap.t0, gap.t1))
    return recorded


def _progress(video_id, added, t1, duration, elapsed, start, lanes) -> IngestProgress:
    eta = None
    done_media = t1 - start
    if duration and done_media > 0:
        eta = max(0.0, elapsed / done_media * (duration - t1))
    return IngestProgress(video_id, added, float(t1), duration, elapsed, eta, dict(lanes))
