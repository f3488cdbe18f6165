"""Clip encoding: the per-clip stages of ingest, run in order over a source, producing clip memories.

`ClipEncoder.memories` touches no bank: `ingest.ingest` commits what it yields (and workers may encode for one
writer), so this module is the whole of "what a clip becomes" and `ingest` the whole of "how it gets stored".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass

import numpy as np

from longwatch.errors import CorruptVideo
from longwatch.pipeline.config import PipelineConfig
from longwatch.pipeline.models.registry import ModelSet
from longwatch.pipeline.textqa import OCR_SEPARATOR


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
    """An interrupted ingest's last committed clip, its stored memory [M, D] and caption; `t1` is where that clip
    ended and `speech_until` where its last committed speech segment did (evidence before them is in the bank)."""

    last_clip: int
    memory: object | None  # torch.Tensor
    caption: str | None
    clips: int
    t1: float = 0.0
    speech_until: float | None = None
    seen: dict = field(default_factory=dict)  # the caption's source clip and look, so reuse resumes exactly


@dataclass
class _Carry:
    """What one clip hands the next: the propagated-memory state, the last caption (VideoStreaming's context)
    and the OCR lane (its scene-change gate compares with the previous clip)."""

    state: object  # encoder.EncoderState; None for text-only answerers
    caption: str | None
    lane: object  # ocr.OcrLane; None when the config turns OCR off
    feed: object = None  # evidence_feed.EvidenceFeed: the source's speech and subtitles, taken clip by clip
    seen: dict = field(default_factory=dict)  # what the vision and caption stages looked at last (change.py)


@dataclass
class _Clip:
    """One clip while its stages run: what the stages produced so far."""

    tokens: dict = field(default_factory=dict)  # kind -> stored tensor [N, D]
    meta: dict = field(default_factory=dict)
    vision: object = None  # the answerer's tokens [t, h, w, D] (float32), when it sees
    caption: str = ""
    ocr_text: str = ""
    evidence: list = field(default_factory=list)  # memory.records.Evidence of this clip, in time order
    key: np.ndarray | None = None
    evidence_vectors: np.ndarray | None = None  # [len(evidence), D]


class ClipEncoder:
    """The per-clip stages, chosen once from the models: vision tokens -> propagated memory -> caption and SVLM
    tokens -> on-screen text -> text embedding. A text-only answerer skips the first two; no captioner, the third."""

    def __init__(self, models: ModelSet, config: PipelineConfig, ocr_engine=None):
        self.models = models
        self.config = config
        self.ocr_engine = ocr_engine
        self.speech_lane = None
        if config.speech:  # the model loads when the first file with audio is transcribed
            from longwatch.pipeline.speech import SpeechConfig, SpeechLane

            self.speech_lane = SpeechLane(SpeechConfig(model=config.speech_model))
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
                 timings: dict[str, float] | None = None, subtitles: list | None = None,
                 lanes: dict[str, str] | None = None) -> Iterator[ClipMemory]:
        """Clip memories of `source` from clip `start_clip` on, ready for `BankWriter.commit`; touches no bank.

        The last memory of a finite source has `final=True` (one clip of look-ahead; live sources get none,
        so their clips are committed as soon as they are encoded) and takes the speech and subtitles left.
        `subtitles`: subtitle files to read instead of the sidecars beside a file. `lanes` is filled with what
        each evidence lane did (IngestReport.lanes).
        """
        from longwatch.pipeline.evidence_feed import open_feed

        timings = {} if timings is None else timings
        carry = _Carry(self.encoder.initial_state() if self.encoder is not None else None, None, self._ocr_lane())
        if resume is not None:
            carry.caption = resume.caption
            carry.seen.update(resume.seen)
            if self.encoder is not None and resume.memory is not None:
                carry.state = self.encoder.resume_state(resume.memory, resume.clips)
        cfg = self.config
        start = resume.t1 if resume is not None and start_clip > 0 else start_clip * cfg.clip_seconds
        with opened(source) as src, open_feed(src, cfg, self.speech_lane, start,
                                              resume.speech_until if resume else None, subtitles, timings) as feed:
            info, carry.feed = src.info, feed
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
                if lanes is not None:
                    lanes.update(carry.feed.lanes)
                if info.is_live:
                    yield memory
                    continue
                if pending is not None:
                    yield pending
                pending = memory
            if pending is not None:
                pending.final = True
                self._add_evidence(pending, carry.feed.take(None), timings)
                if lanes is not None:
                    lanes.update(carry.feed.lanes)
                yield pending

    def encode_clip(self, video_id: str, clip, carry: _Carry, timings: dict[str, float]) -> ClipMemory:
        """One clip through the stages in order, each timed under its name; advances `carry` to the next clip."""
        from longwatch.memory.records import ClipRecord

        out = _Clip(meta={"frames": len(clip.frames)})
        if carry.feed is not None:  # speech and subtitles starting in this clip (transcription timed as "speech")
            out.evidence = carry.feed.take(float(clip.t1))
        for name, stage in self.stages:
            t = time.perf_counter()
            stage(clip, out, carry)
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t
        carry.caption = out.caption or carry.caption
        record = ClipRecord(video_id, clip.index, float(clip.t0), float(clip.t1), caption=out.caption,
                            ocr_text=out.ocr_text, meta=out.meta, evidence=out.evidence)
        vectors = {"text": out.key}
        if out.evidence:
            vectors["evidence"] = out.evidence_vectors
        return ClipMemory(record, vectors, out.tokens)

    def _add_evidence(self, memory: ClipMemory, evidence: list, timings: dict[str, float]) -> None:
        """Append `evidence` (the final clip's share of what is left) to an encoded clip, embedded in one batch."""
        if not evidence:
            return
        t = time.perf_counter()
        vectors = np.asarray(self.models.embedder.embed([evidence_text(e) for e in evidence]), dtype=np.float32)
        timings["embed"] = timings.get("embed", 0.0) + time.perf_counter() - t
        memory.record.evidence = [*memory.record.evidence, *evidence]
        if "evidence" in memory.vectors:
            vectors = np.concatenate([memory.vectors["evidence"], vectors])
        memory.vectors["evidence"] = vectors

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
        """The clip's on-screen rows (titles and table headers as their context) as text and as evidence."""
        from longwatch.pipeline.evidence_feed import screen_evidence

        spans = carry.lane.process(clip)
        out.ocr_text = OCR_SEPARATOR.join(dict.fromkeys(s.text for s in spans))
        if spans:  # seconds-precise ranges inside the clip, so answers cite when the text was visible
            out.meta["ocr_spans"] = [[max(s.t0, clip.t0), min(max(s.t1, s.t0), clip.t1), s.text] for s in spans]
        out.evidence += screen_evidence(spans, float(clip.t0), float(clip.t1))

    def _text_key(self, clip, out: _Clip, carry: _Carry) -> None:
        """The clip's retrieval key (caption and on-screen text together) and its evidence's vectors, one batch.

        The evidence is the clip's caption and screen rows plus the speech and subtitles starting in it."""
        from longwatch.memory.records import Evidence

        if out.caption and out.caption != carry.caption:  # a caption repeated by the next clips is one piece
            out.evidence.append(Evidence("caption", float(clip.t0), float(clip.t1), out.caption))
        out.evidence.sort(key=lambda e: (e.t0, e.kind))
        key_text = " ".join(p for p in (out.caption, out.ocr_text) if p) or "(no text)"
        vectors = np.asarray(self.models.embedder.embed([key_text, *map(evidence_text, out.evidence)]),
                             dtype=np.float32)
        out.key, out.evidence_vectors = vectors[0], vectors[1:]

    def _store_dtype(self):
        import torch

        return getattr(torch, self.config.store_dtype)

    def _ocr_lane(self):
        if not self.config.ocr:
            return None
        from longwatch.pipeline.ocr import OcrEngine, OcrLane
        from longwatch.pipeline.ocr_layout import screen_rows

        if self.ocr_engine is None:
            self.ocr_engine = OcrEngine()
        return OcrLane(self.ocr_engine, arrange=screen_rows)


def evidence_text(evidence) -> str:
    """What an Evidence's vector embeds: its context (slide title, table header) before its text."""
    return f"{evidence.context} {evidence.text}".strip()


def info_dict(info) -> dict:
    return asdict(info) if is_dataclass(info) else dict(info)


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
