"""Ingest: a video becomes clip memories committed to the bank, one clip at a time, resumable after any crash.

`ClipEncoder` runs the per-clip stages in order; `ingest` drives it over a source and commits with `BankWriter`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass

import numpy as np

from longwatch.errors import CorruptVideo
from longwatch.pipeline.config import PipelineConfig
from longwatch.pipeline.models.registry import ModelSet
from longwatch.pipeline.textqa import OCR_SEPARATOR


@dataclass(frozen=True)
class IngestProgress:
    """Reported after every committed clip; `eta` is None for live sources and unknown durations."""

    video_id: str
    clips_done: int
    t: float
    duration: float | None
    elapsed: float
    eta: float | None


@dataclass
class IngestReport:
    video_id: str
    clips_added: int
    clips_total: int
    resumed_from: int | None   # last committed clip index found before this run, None on a fresh start
    seconds: float
    complete: bool
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class ClipMemory:
    """Everything ingest commits for one clip; picklable, so workers can encode and one writer can commit."""

    record: object  # memory.records.ClipRecord
    vectors: dict[str, np.ndarray]
    tokens: dict  # kind -> torch.Tensor [N, D] in the store dtype
    source: str = ""
    info: dict = field(default_factory=dict)
    final: bool = False  # the last clip of a finite source: committing it completes the video


@dataclass
class ResumePoint:
    """An interrupted ingest's last committed clip, its stored memory [M, D] and caption."""

    last_clip: int
    memory: object | None  # torch.Tensor
    caption: str | None
    clips: int
    seen: dict = field(default_factory=dict)  # the caption's source clip and look, so reuse resumes exactly


def resume_point(bank, video_id: str) -> ResumePoint | None:
    """Where an interrupted ingest of `video_id` continues: after its last committed clip, with its state."""
    last = bank.last_clip(video_id)
    if last is None:
        return None
    records = bank.clips(video_id)
    record = records[-1]
    memory = bank.tokens([record.record_id], "memory")[0] if "memory" in record.tokens else None
    seen = {"caption_from": record.meta.get("caption_from", record.clip_index),
            "caption_look": record.meta["caption_look"]} if record.meta.get("caption_look") else {}
    return ResumePoint(last, memory, record.caption or None, len(records), seen)


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


@dataclass
class _Carry:
    """What one clip hands the next: the propagated-memory state, the last caption (VideoStreaming's context)
    and the OCR lane (its scene-change gate compares with the previous clip)."""

    state: object  # encoder.EncoderState; None for text-only answerers
    caption: str | None
    lane: object  # ocr.OcrLane; None when the config turns OCR off
    seen: dict = field(default_factory=dict)  # what the vision and caption stages looked at last (change.py)


@dataclass
class _Clip:
    """One clip while its stages run: what the stages produced so far."""

    tokens: dict = field(default_factory=dict)  # kind -> stored tensor [N, D]
    meta: dict = field(default_factory=dict)
    vision: object = None  # the answerer's tokens [t, h, w, D] (float32), when it sees
    caption: str = ""
    ocr_text: str = ""
    key: np.ndarray | None = None


class ClipEncoder:
    """The per-clip stages, chosen once from the models: vision tokens -> propagated memory -> caption and SVLM
    tokens -> on-screen text -> text embedding. A text-only answerer skips the first two; no captioner, the third."""

    def __init__(self, models: ModelSet, config: PipelineConfig, ocr_engine=None):
        self.models = models
        self.config = config
        self.ocr_engine = ocr_engine
        visual = not models.answerer.is_text_only
        self.encoder = None
        if visual:
            from longwatch.pipeline.encoder import StreamingEncoder

            self.encoder = StreamingEncoder(models.answerer.hidden_size, config.memory_grid,
                                            state_dtype=config.store_dtype)
        # Captions come from the small VLM, else from a visual answerer; the offline preset has neither.
        self.captioner = models.svlm or (models.answerer if visual else None)
        # Frames and clips whose picture did not change reuse the tokens and caption of the one they match
        # (change.py); off, every frame is encoded and every clip captioned (the baseline benchmarks compare with).
        self.reuse_unchanged = True
        # (timing name, stage) in the order they run; what these models cannot do is left out here, once.
        self.stages = [("vision", self._vision), ("encode", self._propagate)] if visual else []
        if self.captioner is not None:
            self.stages.append(("caption", self._caption))
        if config.ocr:
            self.stages.append(("ocr", self._counted_text))
        self.stages.append(("embed", self._text_key))

    def memories(self, source, video_id: str, start_clip: int = 0, resume: ResumePoint | None = None,
                 timings: dict[str, float] | None = None) -> Iterator[ClipMemory]:
        """Clip memories of `source` from clip `start_clip` on, ready for `BankWriter.commit`; touches no bank.

        The last memory of a finite source has `final=True` (one clip of look-ahead; live sources get none,
        so their clips are committed as soon as they are encoded).
        """
        timings = {} if timings is None else timings
        carry = _Carry(self.encoder.initial_state() if self.encoder is not None else None, None, self._ocr_lane())
        if resume is not None:
            carry.caption = resume.caption
            carry.seen.update(resume.seen)
            if self.encoder is not None and resume.memory is not None:
                carry.state = self.encoder.resume_state(resume.memory, resume.clips)
        cfg = self.config
        with opened(source) as src:
            info = src.info
            clips = iter(src.clips(cfg.clip_seconds, cfg.fps, cfg.max_side, start=start_clip * cfg.clip_seconds))
            pending: ClipMemory | None = None
            while True:
                t = time.perf_counter()
                try:
                    clip = next(clips, None)
                except CorruptVideo:
                    if pending is not None:
                        yield pending  # the file is damaged from here on: keep the clip decoded before it
                    raise
                timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - t
                if clip is None:
                    break
                if clip.index < start_clip:
                    continue  # a source that cannot seek exactly replays a little; those clips are committed
                memory = self.encode_clip(video_id, clip, carry, timings)
                memory.source, memory.info = info.source, info_dict(info)
                if info.is_live:
                    yield memory
                    continue
                if pending is not None:
                    yield pending
                pending = memory
            if pending is not None:
                pending.final = True
                yield pending

    def encode_clip(self, video_id: str, clip, carry: _Carry, timings: dict[str, float]) -> ClipMemory:
        """One clip through the stages in order, each timed under its name; advances `carry` to the next clip."""
        from longwatch.memory.records import ClipRecord

        out = _Clip(meta={"frames": len(clip.frames)})
        for name, stage in self.stages:
            t = time.perf_counter()
            stage(clip, out, carry)
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t
        carry.caption = out.caption or carry.caption
        record = ClipRecord(video_id, clip.index, float(clip.t0), float(clip.t1), caption=out.caption,
                            ocr_text=out.ocr_text, meta=out.meta)
        return ClipMemory(record, {"text": out.key}, out.tokens)

    # ---- the stages, in order; each reads the clip and what earlier stages left in `out` -------------------
    def _vision(self, clip, out: _Clip, carry: _Carry) -> None:
        out.vision = self._frame_tokens(self.models.answerer, "vision", clip, out)  # [t, h, w, D]

    def _frame_tokens(self, model, name: str, clip, out: _Clip):
        """`model`'s tokens [t, h, w, D] (float32) of the clip's frames; a frame that shows what an earlier frame
        of the same clip showed reuses its tokens (within a clip only, so a resumed ingest matches exactly)."""
        if not (self.reuse_unchanged and model.frames_independent):
            return model.encode_frames(clip.frames).float()
        from longwatch.pipeline.change import TokenReuse

        reuse = TokenReuse(lambda frames: model.encode_frames(frames).float())
        tokens = reuse.tokens(clip.frames, clip.times)
        out.meta[f"{name}_frames_reused"] = reuse.reused
        return tokens

    def _counted_text(self, clip, out: _Clip, carry: _Carry) -> None:
        """The on-screen text stage, noting how many of the clip's frames OCR read (the text gate skips the rest)."""
        before = carry.lane.stats.ocr_calls
        self._on_screen_text(clip, out, carry)
        out.meta["ocr_frames_read"] = carry.lane.stats.ocr_calls - before

    def _propagate(self, clip, out: _Clip, carry: _Carry) -> None:
        """Detail tokens (the clip pooled to `detail_hw`) and the memory propagated from the previous clip."""
        from longwatch.pipeline.encoder import pool_grid

        cfg, vis, store = self.config, out.vision, self._store_dtype()
        dgrid = (vis.shape[0], min(cfg.detail_hw[0], vis.shape[1]), min(cfg.detail_hw[1], vis.shape[2]))
        detail = pool_grid(vis, dgrid)
        memory, carry.state = self.encoder.step(vis, carry.state)
        out.tokens["detail"] = detail.reshape(-1, detail.shape[-1]).to(store)
        out.tokens["memory"] = memory.to(store)
        out.meta.update(detail_grid=list(dgrid), memory_grid=list(cfg.memory_grid), dim=int(vis.shape[-1]),
                        answerer=str(getattr(self.models.answerer, "name", "")))

    def _caption(self, clip, out: _Clip, carry: _Carry) -> None:
        """A caption with the previous one as context; with an SVLM, also its pooled tokens for re-scoring. A clip
        whose picture did not change since the clip last captioned keeps that caption (meta says which clip)."""
        from longwatch.pipeline.change import look, looks_same
        from longwatch.pipeline.encoder import pool_grid

        cfg = self.config
        same = self.captioner is self.models.answerer and out.vision is not None
        cap_tokens = out.vision if same else self._frame_tokens(self.captioner, "caption_tokens", clip, out)
        # Compared with the look of the clip the caption came from, not the previous clip, so drift adds up; the
        # look is stored with the clip so a resumed ingest decides exactly as an uninterrupted one.
        source = carry.seen.get("caption_look")
        if self.reuse_unchanged and source and all(looks_same(source, look(f)) for f in clip.frames):
            out.caption = carry.seen.get("caption", carry.caption or "")  # a resumed ingest has it as carry.caption
            out.meta["caption_from"] = carry.seen["caption_from"]
        else:
            out.caption = self.captioner.caption(None, carry.caption, cfg.caption_tokens, tokens=cap_tokens,
                                                 min_new_tokens=cfg.min_new_tokens)
            carry.seen.update(caption=out.caption, caption_from=clip.index, caption_look=look(clip.frames[-1]))
        out.meta["caption_look"] = carry.seen["caption_look"]
        if self.models.svlm is not None:
            sgrid = tuple(min(a, b) for a, b in zip(cfg.svlm_grid, cap_tokens.shape[:3]))
            svlm_tokens = pool_grid(cap_tokens, sgrid)
            out.tokens["svlm"] = svlm_tokens.reshape(-1, svlm_tokens.shape[-1]).to(self._store_dtype())
            out.meta["svlm_grid"] = list(sgrid)

    def _on_screen_text(self, clip, out: _Clip, carry: _Carry) -> None:
        spans = carry.lane.process(clip)
        out.ocr_text = OCR_SEPARATOR.join(dict.fromkeys(s.text for s in spans))
        if spans:  # seconds-precise ranges inside the clip, so answers cite when the text was visible
            out.meta["ocr_spans"] = [[max(s.t0, clip.t0), min(max(s.t1, s.t0), clip.t1), s.text] for s in spans]

    def _text_key(self, clip, out: _Clip, carry: _Carry) -> None:
        """The clip's retrieval key: caption and on-screen text embedded together."""
        key_text = " ".join(p for p in (out.caption, out.ocr_text) if p) or "(no text)"
        out.key = np.asarray(self.models.embedder.embed([key_text])[0], dtype=np.float32)

    def _store_dtype(self):
        import torch

        return getattr(torch, self.config.store_dtype)

    def _ocr_lane(self):
        if not self.config.ocr:
            return None
        from longwatch.pipeline.ocr import OcrEngine, OcrLane

        if self.ocr_engine is None:
            self.ocr_engine = OcrEngine()
        return OcrLane(self.ocr_engine)


def ingest(bank, clip_encoder: ClipEncoder, source, video_id: str,
           progress: Callable[[IngestProgress], None] | None = None) -> IngestReport:
    """Encode `source` (a VideoSource, or a spec for `open_source`) into `bank` as `video_id`.

    Resumes after the last committed clip when the bank already holds part of this video; memory is
    bounded because only the current clip and the carried state are held.
    """
    start_wall = time.perf_counter()
    clip_seconds = clip_encoder.config.clip_seconds
    resume = resume_point(bank, video_id)
    start = 0 if resume is None else resume.last_clip + 1
    writer = BankWriter(bank)
    timings: dict[str, float] = {}
    added = 0
    with opened(source) as src:
        info = src.info
        bank.add_video(video_id, info.source, info_dict(info))
        recorded = record_gaps(bank, video_id, ())  # the ranges already stored: a resumed run re-reads them
        try:
            for memory in clip_encoder.memories(src, video_id, start_clip=start, resume=resume, timings=timings):
                t = time.perf_counter()
                writer.commit(memory)
                timings["commit"] = timings.get("commit", 0.0) + time.perf_counter() - t
                added += 1
                record_gaps(bank, video_id, getattr(src, "gaps", ()), recorded)
                if progress is not None:
                    progress(_progress(video_id, added, memory.record.t1, info.duration,
                                       time.perf_counter() - start_wall, start * clip_seconds))
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
                        time.perf_counter() - start_wall, complete, timings)


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


def info_dict(info) -> dict:
    return asdict(info) if is_dataclass(info) else dict(info)


def _progress(video_id, added, t1, duration, elapsed, start) -> IngestProgress:
    eta = None
    done_media = t1 - start
    if duration and done_media > 0:
        eta = max(0.0, elapsed / done_media * (duration - t1))
    return IngestProgress(video_id, added, float(t1), duration, elapsed, eta)


@contextmanager
def opened(source):
    """A VideoSource as given (the caller closes it), or one opened here from a spec and closed here."""
    if hasattr(source, "clips"):
        yield source
        return
    from longwatch.pipeline.sources import open_source

    src = open_source(source)
    try:
        yield src
    finally:
        src.close()
