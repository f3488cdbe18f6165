"""The Pipeline: ingest a video once into the memory bank, then answer any number of questions from it.

Ingest is one loop over clips with explicit state (resumable); ask never decodes video, it reads the bank.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass

import numpy as np

from longwatch.errors import BankError, CorruptVideo
from longwatch.pipeline.allocate import allocate, grid_for
from longwatch.pipeline.answer import (NEEDS_VISION, NOT_IN_TEXT, Answer, Citation, ClipUse, ContextItem,
                                       build_blocks, cite, format_span, is_visual_question)
from longwatch.pipeline.config import PipelineConfig
from longwatch.pipeline.select import is_whole_video_question, select_clips
from longwatch.pipeline.textqa import OCR_SEPARATOR

__all__ = ["Pipeline", "PipelineConfig", "BankWriter", "ClipMemory", "ResumePoint", "IngestProgress", "IngestReport"]


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


class Pipeline:
    """Ties models, encoder, bank, selection and ATA together. Holds no per-video state between calls."""

    def __init__(self, bank, models, config: PipelineConfig | None = None, ocr_engine=None):
        self.bank = bank
        self.models = models
        self.config = config or PipelineConfig()
        self.ocr_engine = ocr_engine
        self._lines = None  # textqa.LineIndex, built on the first text-only question
        self.visual = not getattr(models.answerer, "is_text_only", False)
        self.encoder = None
        if self.visual:
            from longwatch.pipeline.encoder import StreamingEncoder

            self.encoder = StreamingEncoder(models.answerer.hidden_size, self.config.memory_grid,
                                            state_dtype=self.config.store_dtype)
        # Captions come from the small VLM, else from a visual answerer; the offline preset has neither.
        self.captioner = models.svlm or (models.answerer if self.visual else None)

    # ---- ingest -----------------------------------------------------------------------------------------
    @staticmethod
    def writer(bank) -> BankWriter:
        """The committing half of ingest, for drivers that encode elsewhere (batch workers, Ray actors)."""
        return BankWriter(bank)

    @staticmethod
    def resume_point(bank, video_id: str) -> ResumePoint | None:
        """Where an interrupted ingest of `video_id` continues: after its last committed clip, with its state."""
        last = bank.last_clip(video_id)
        if last is None:
            return None
        records = bank.clips(video_id)
        record = records[-1]
        memory = bank.tokens([record.record_id], "memory")[0] if "memory" in record.tokens else None
        return ResumePoint(last, memory, record.caption or None, len(records))

    def ingest(self, source, video_id: str, progress: Callable[[IngestProgress], None] | None = None
               ) -> IngestReport:
        """Encode `source` (a VideoSource, or a spec for `open_source`) into the bank as `video_id`.

        Resumes after the last committed clip when the bank already holds part of this video; memory is
        bounded because only the current clip and the carried state are held.
        """
        start_wall = time.perf_counter()
        resume = self.resume_point(self.bank, video_id)
        start = 0 if resume is None else resume.last_clip + 1
        writer = BankWriter(self.bank)
        timings: dict[str, float] = {}
        added = 0
        with _opened(source) as src:
            info = src.info
            self.bank.add_video(video_id, info.source, _info_dict(info))
            recorded = {(g.t0, g.t1) for g in self.bank.gaps(video_id)}  # a resumed run re-reads some damage
            try:
                for memory in self.encode(src, video_id, start_clip=start, resume=resume, timings=timings):
                    t = time.perf_counter()
                    writer.commit(memory)
                    timings["commit"] = timings.get("commit", 0.0) + time.perf_counter() - t
                    added += 1
                    _record_gaps(self.bank, video_id, src, recorded)
                    if progress is not None:
                        progress(_progress(video_id, added, memory.record.t1, info.duration,
                                           time.perf_counter() - start_wall, start * self.config.clip_seconds))
            except CorruptVideo:
                # Damage that ends the file: every clip before it is committed (encode yields them first) and the
                # lost tail is a recorded gap. Nothing decodable at all is still an error.
                _record_gaps(self.bank, video_id, src, recorded)
                if self.bank.last_clip(video_id) is None:
                    raise
            _record_gaps(self.bank, video_id, src, recorded)
            complete = not info.is_live
            if complete:
                self.bank.mark_complete(video_id)
        return IngestReport(video_id, added, len(self.bank.clips(video_id)),
                            None if resume is None else resume.last_clip, time.perf_counter() - start_wall,
                            complete, timings)

    def encode(self, source, video_id: str, start_clip: int = 0, resume: ResumePoint | None = None,
               timings: dict[str, float] | None = None) -> Iterator[ClipMemory]:
        """Clip memories of `source` from clip `start_clip` on, ready for `BankWriter.commit`; touches no bank.

        The last memory of a finite source has `final=True` (one clip of look-ahead; live sources get none,
        so their clips are committed as soon as they are encoded).
        """
        timings = {} if timings is None else timings
        if start_clip > 0 and resume is None:
            if self.bank is None:
                raise ValueError(f"encode({video_id!r}, start_clip={start_clip}) needs resume=Pipeline.resume_point("
                                 "bank, video_id) to continue the propagated memory; pass it from the bank's owner")
            resume = self.resume_point(self.bank, video_id)
        state = self.encoder.initial_state() if self.encoder is not None else None
        prev_caption = None
        if resume is not None:
            prev_caption = resume.caption
            if self.encoder is not None and resume.memory is not None:
                state = self.encoder.resume_state(resume.memory, resume.clips)
        lane = self._ocr_lane()
        cfg = self.config
        with _opened(source) as src:
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
                memory, state, prev_caption = self._encode_clip(video_id, clip, state, prev_caption, lane, timings)
                memory.source, memory.info = info.source, _info_dict(info)
                if info.is_live:
                    yield memory
                    continue
                if pending is not None:
                    yield pending
                pending = memory
            if pending is not None:
                pending.final = True
                yield pending

    def _ocr_lane(self):
        if not self.config.ocr:
            return None
        from longwatch.pipeline.ocr import OcrEngine, OcrLane

        if self.ocr_engine is None:
            self.ocr_engine = OcrEngine()
        return OcrLane(self.ocr_engine)

    def _encode_clip(self, video_id, clip, state, prev_caption, lane, timings):
        import torch

        from longwatch.memory.records import ClipRecord
        from longwatch.pipeline.encoder import pool_grid

        def lap(stage: str, t: float) -> float:
            now = time.perf_counter()
            timings[stage] = timings.get(stage, 0.0) + now - t
            return now

        cfg = self.config
        store = getattr(torch, cfg.store_dtype)
        tokens: dict[str, torch.Tensor] = {}
        meta: dict = {"frames": len(clip.frames)}
        caption = ""
        t = time.perf_counter()
        if self.visual:
            vis = self.models.answerer.encode_frames(clip.frames).float()  # [t, h, w, D]
            t = lap("vision", t)
            dgrid = (vis.shape[0], min(cfg.detail_hw[0], vis.shape[1]), min(cfg.detail_hw[1], vis.shape[2]))
            detail = pool_grid(vis, dgrid)
            memory, state = self.encoder.step(vis, state)
            tokens["detail"] = detail.reshape(-1, detail.shape[-1]).to(store)
            tokens["memory"] = memory.to(store)
            meta.update(detail_grid=list(dgrid), memory_grid=list(cfg.memory_grid), dim=int(vis.shape[-1]),
                        answerer=str(getattr(self.models.answerer, "name", "")))
            t = lap("encode", t)
        if self.captioner is not None:
            same = self.captioner is self.models.answerer and self.visual
            cap_tokens = vis if same else self.captioner.encode_frames(clip.frames).float()
            caption = self.captioner.caption(None, prev_caption, cfg.caption_tokens, tokens=cap_tokens,
                                             min_new_tokens=cfg.min_new_tokens)
            if self.models.svlm is not None:
                sgrid = tuple(min(a, b) for a, b in zip(cfg.svlm_grid, cap_tokens.shape[:3]))
                svlm_tokens = pool_grid(cap_tokens, sgrid)
                tokens["svlm"] = svlm_tokens.reshape(-1, svlm_tokens.shape[-1]).to(store)
                meta["svlm_grid"] = list(sgrid)
            t = lap("caption", t)
        ocr_text = ""
        if lane is not None:
            spans = lane.process(clip)
            ocr_text = OCR_SEPARATOR.join(dict.fromkeys(s.text for s in spans))
            if spans:  # seconds-precise ranges inside the clip, so answers cite when the text was visible
                meta["ocr_spans"] = [[max(s.t0, clip.t0), min(max(s.t1, s.t0), clip.t1), s.text] for s in spans]
            t = lap("ocr", t)
        key_text = " ".join(p for p in (caption, ocr_text) if p) or "(no text)"
        vec = np.asarray(self.models.embedder.embed([key_text])[0], dtype=np.float32)
        lap("embed", t)
        record = ClipRecord(video_id, clip.index, float(clip.t0), float(clip.t1), caption=caption,
                            ocr_text=ocr_text, meta=meta)
        return ClipMemory(record, {"text": vec}, tokens), state, (caption or prev_caption)

    # ---- ask --------------------------------------------------------------------------------------------
    def ask(self, question: str, videos: list[str] | None = None) -> Answer:
        """Answer from the bank only (no decoding): retrieve, re-score, allocate, pool, generate, cite."""
        import torch

        from longwatch.pipeline.models.base import PromptBlock

        cfg = self.config
        if not question or not question.strip():
            raise ValueError("ask() needs a non-empty question")
        timings: dict[str, float] = {}
        t = time.perf_counter()
        scope = self._scope(videos)
        qvec = np.asarray(self.models.embedder.embed([question])[0], dtype=np.float32)
        timings["embed"] = time.perf_counter() - t

        t = time.perf_counter()
        records = {v: self.bank.clips(v) for v in scope}
        whole = is_whole_video_question(question)
        if not self.visual and not whole:
            return self._ask_from_lines(question, qvec, records, scope, timings, t)
        by_key = {(v, r.clip_index): r for v, rs in records.items() for r in rs}
        hits = self.bank.search(qvec, cfg.top_n, space="text", videos=scope)
        anchors = cfg.anchors_whole if whole else cfg.anchors
        cands = select_clips([(h.record.video_id, h.record.clip_index, h.score) for h in hits],
                             {v: [r.clip_index for r in rs] for v, rs in records.items()},
                             neighbours=cfg.neighbours, anchors=anchors, max_candidates=cfg.max_candidates)
        chosen = [by_key[(c.video, c.clip_index)] for c in cands]
        timings["retrieve"] = time.perf_counter() - t

        t = time.perf_counter()
        items = [ContextItem(r.video_id, r.clip_index, r.t0, r.t1, r.caption, r.ocr_text, 0.0) for r in chosen]
        scores = self._relevance(question, chosen, items, PromptBlock) if chosen else []
        for item, s in zip(items, scores):
            item.relevance = float(s)
        timings["relevance"] = time.perf_counter() - t

        t = time.perf_counter()
        used = 0
        if self.visual and chosen:
            self._check_space(chosen)
            # ATA counts "frames" as stored time steps (Qwen's temporal patches merge two frames into one).
            seen = [i for i, r in enumerate(chosen) if "detail_grid" in r.meta]
            alloc = allocate([scores[i] for i in seen], cfg.budget, [chosen[i].meta["detail_grid"][0] for i in seen],
                             cfg.min_tpf, cfg.max_tpf)
            for i, n in zip(seen, alloc):
                if n > 0:
                    items[i].tokens = self._pooled(chosen[i], n)
                    used += items[i].n_tokens
        timings["allocate"] = time.perf_counter() - t

        t = time.perf_counter()
        text_only = not self.visual
        nothing_textual = all(not (i.caption.strip() or i.ocr_text.strip()) for i in items)
        # Text-only answerers refuse visual questions that no stored text supports instead of inventing;
        # a whole-video question is still answerable from whatever text the video carries.
        unsupported = nothing_textual or (not whole and max(scores, default=0.0) < 0.5)
        needs_vision = text_only and unsupported and (whole or is_visual_question(question))
        blocks = build_blocks(items, PromptBlock)
        prefill = None
        if hasattr(self.models.answerer, "build_prompt"):
            prefill = int(self.models.answerer.build_prompt(blocks, question).input_ids.shape[1])
        if needs_vision:
            text = NEEDS_VISION
        else:
            with torch.inference_mode():
                text = self.models.answerer.generate(blocks, question, max_new_tokens=cfg.answer_tokens,
                                                     min_new_tokens=cfg.min_new_tokens)
        timings["answer"] = time.perf_counter() - t
        # A whole-video answer cites the best clip of each of n equal parts of the timeline.
        n_cite = max(cfg.max_citations, min(anchors, 8)) if whole else cfg.max_citations
        citations = [] if needs_vision else cite(items, n_cite, spread=n_cite if whole else 0)
        return Answer(text=text, citations=citations, tokens_used=used, timings=timings,
                      clips_considered=len(items), budget=cfg.budget, needs_vision=needs_vision,
                      prefill_tokens=prefill, videos=list(scope),
                      clips=[ClipUse(i.video, i.t0, i.t1, i.relevance, i.n_tokens) for i in items])

    def _ask_from_lines(self, question, qvec, records, scope, timings, t) -> Answer:
        """Text-only answerers: quote the on-screen lines that match, or say that none does.

        A 135M LM handed whole clips invents facts and times; handed only the matching lines it rephrases
        them, and the quoted lines with their times stay in the answer as the evidence.
        """
        import torch

        from longwatch.pipeline.models.base import PromptBlock
        from longwatch.pipeline.textqa import LineIndex, asks_for_any_text, grounded, question_stem, quote

        cfg = self.config
        if self._lines is None:
            self._lines = LineIndex(self.models.embedder)
        stem = question_stem(question)
        if stem != question:  # listed options and instructions dilute the match with the on-screen line
            qvec = np.asarray(self.models.embedder.embed([stem])[0], dtype=np.float32)
        evidence = self._lines.evidence(question, qvec, records)
        generic = not evidence and asks_for_any_text(question)
        if generic:
            evidence = self._lines.all_lines(records)
        timings["retrieve"] = time.perf_counter() - t
        t = time.perf_counter()
        needs_vision = not evidence and is_visual_question(question)
        multi = len(records) > 1
        if not evidence:
            text = NEEDS_VISION if needs_vision else NOT_IN_TEXT
        elif generic:
            text = "Text on screen:\n" + quote(evidence, multi)
        else:
            blocks = [PromptBlock(format_span(*line.spans[0]) + " ", text_after=f"On-screen text: {line.text}\n")
                      for line in sorted(evidence, key=lambda l: (l.video, l.t0))]
            with torch.inference_mode():
                # Only the first sentence can survive `grounded`, so a sentence's worth of tokens is enough.
                reply = self.models.answerer.generate(blocks, question, max_new_tokens=min(cfg.answer_tokens, 40),
                                                      min_new_tokens=cfg.min_new_tokens)
            reply = grounded(reply, evidence, question)  # a small LM's aside must not add facts
            text = (reply + "\n" if reply else "") + quote(evidence, multi)
        timings["answer"] = time.perf_counter() - t
        citations = [Citation(line.video, a, b, float(min(1.0, max(0.0, line.score))))
                     for line in evidence for a, b in line.spans[:3]][: max(cfg.max_citations, 1) * 2]
        return Answer(text=text, citations=citations, tokens_used=0, timings=timings,
                      clips_considered=sum(len(r) for r in records.values()), budget=cfg.budget,
                      needs_vision=needs_vision, prefill_tokens=None, videos=list(scope),
                      clips=[ClipUse(c.video, c.t0, c.t1, c.score, 0) for c in citations])

    def _scope(self, videos: list[str] | None) -> list[str]:
        known = [v.video_id for v in self.bank.videos() if v.clips > 0]
        if videos is None:
            if not known:
                raise BankError("the memory bank holds no ingested clips yet; ingest a video before asking")
            return sorted(known)
        missing = sorted(set(videos) - set(known))
        if missing:
            raise BankError(f"unknown or empty video(s) {missing} in this bank; known: {sorted(known)}. "
                            "Ingest them first or check the ids with `longwatch videos`")
        return sorted(set(videos))

    def _check_space(self, chosen) -> None:
        """Stored tokens live in the embedding space of the answerer that ingested them."""
        mine = self.models.answerer.hidden_size
        for r in chosen:
            dim = r.meta.get("dim")
            if dim is not None and dim != mine:
                raise BankError(f"video {r.video_id!r} was ingested with answerer {r.meta.get('answerer')!r} "
                                f"({dim}-d tokens) but this pipeline answers with "
                                f"{getattr(self.models.answerer, 'name', '?')!r} ({mine}-d); open the bank with the "
                                "same preset, or delete and re-ingest the video")

    def _relevance(self, question, chosen, items, block_cls) -> list[float]:
        """Tempo's relevance prior over what the bank stores: SVLM tokens + text, else memory tokens or text."""
        scorer = self.models.svlm or self.models.answerer
        kind = None
        if self.models.svlm is not None and all("svlm" in r.tokens for r in chosen):
            kind, grid_key = "svlm", "svlm_grid"
        elif self.visual and self.models.svlm is None:
            kind, grid_key = "memory", "memory_grid"
        stored = self.bank.tokens([r.record_id for r in chosen], kind) if kind else [None] * len(chosen)
        blocks = []
        for item, record, tok in zip(items, chosen, stored):
            if tok is not None:
                tok = tok.float().reshape(*record.meta[grid_key], -1)
            head = ContextItem(item.video, item.clip_index, item.t0, item.t1, item.caption, item.ocr_text, 0.0, tok)
            blocks.extend(build_blocks([head], block_cls))
        return scorer.relevance(question, blocks)

    def _pooled(self, record, n: int):
        """The clip's stored tokens pooled to at most n: the propagated memory when n fits in it, else detail."""
        from longwatch.pipeline.encoder import pool_grid

        mgrid = tuple(record.meta["memory_grid"])
        dgrid = tuple(record.meta["detail_grid"])
        kind, grid = ("memory", mgrid) if n <= int(np.prod(mgrid)) else ("detail", dgrid)
        stored = self.bank.tokens([record.record_id], kind)[0].float().reshape(*grid, -1)
        return pool_grid(stored, grid_for(n, grid))


def _record_gaps(bank, video_id: str, source, recorded: set) -> None:
    """Add the source's newly found gaps (time it could not decode) to the bank, once each."""
    for gap in getattr(source, "gaps", ()):
        if (gap.t0, gap.t1) not in recorded:
            bank.add_gap(video_id, gap.t0, gap.t1, gap.reason)
            recorded.add((gap.t0, gap.t1))


def _info_dict(info) -> dict:
    return asdict(info) if is_dataclass(info) else dict(info)


def _progress(video_id, added, t1, duration, elapsed, start) -> IngestProgress:
    eta = None
    done_media = t1 - start
    if duration and done_media > 0:
        eta = max(0.0, elapsed / done_media * (duration - t1))
    return IngestProgress(video_id, added, float(t1), duration, elapsed, eta)


@contextmanager
def _opened(source):
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
