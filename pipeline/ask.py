"""Ask: retrieve -> re-score -> allocate -> answer, from the bank only (a question never decodes video).

`Asker` scopes, embeds and retrieves; the strategy that does the rest is chosen once, from what the models offer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from longwatch.errors import BankError
from longwatch.pipeline.allocate import allocate, grid_for
from longwatch.pipeline.answer import (NEEDS_VISION, NOT_IN_TEXT, Answer, Citation, ClipUse, ContextItem,
                                       PromptBlock, build_blocks, cite, format_span, is_visual_question)
from longwatch.pipeline.config import PipelineConfig
from longwatch.pipeline.models.registry import ModelSet
from longwatch.pipeline.select import fuse_hits, is_whole_video_question, select_clips


@dataclass
class Query:
    """One question as the strategies see it: its embedding, the videos in scope and their clip records."""

    text: str
    vec: np.ndarray
    scope: list[str]
    records: dict[str, list]  # video -> memory.records.ClipRecord, in clip order
    whole: bool  # asks about the whole video ("summarize"): anchors spread over the timeline
    timings: dict[str, float]
    started: float  # perf_counter when retrieval began
    on_quotes: Callable[[list], None] | None = None  # called with the quotes as soon as they are known


Retrieve = Callable[[Query], list]
GENERIC_LINES = 12  # on-screen lines listed for "what text appears on screen?"
UNCHECKED_VISUAL = ("The model's reading names a number, code or name that nothing said, subtitled or shown as text "
                    "in the video states, so it is not shown; see the cited times.")
UNCHECKED_SUMMARY = ("Every sentence of the generated summary names something the video's speech, subtitles and "
                     "on-screen text do not state, so none is shown; see the cited times.")


class Asker:
    """Scope + question embedding + retrieval; hands the query to the strategy chosen for these models."""

    def __init__(self, bank, models: ModelSet, config: PipelineConfig):
        self.bank = bank
        self.embedder = models.embedder
        self.config = config
        self.strategy = choose_strategy(bank, models, config)

    def ask(self, question: str, videos: list[str] | None = None,
            on_quotes: Callable[[list], None] | None = None) -> Answer:
        """`on_quotes(quotes)` (answer.QuotedEvidence) runs as soon as the supporting quotes are known, before a
        language model writes its sentence, so a caller can show the evidence at once."""
        if not question or not question.strip():
            raise ValueError("ask() needs a non-empty question")
        # One snapshot for the whole answer: a writer in another process commits nothing we half-see.
        with self.bank.snapshot():
            timings: dict[str, float] = {}
            t = time.perf_counter()
            scope = self.scope(videos)
            vec = np.asarray(self.embedder.embed([question])[0], dtype=np.float32)
            timings["embed"] = time.perf_counter() - t
            t = time.perf_counter()
            records = {v: self.bank.clips(v) for v in scope}
            query = Query(question, vec, scope, records, is_whole_video_question(question), timings, t, on_quotes)
            return self.strategy.answer(query, self.retrieve)

    def scope(self, videos: list[str] | None) -> list[str]:
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

    def retrieve(self, query: Query) -> list:
        """Hybrid top-N from the bank, widened by temporal neighbours and storyline anchors (select_clips)."""
        cfg = self.config
        by_key = {(v, r.clip_index): r for v, rs in query.records.items() for r in rs}
        hits = self.bank.search(query.vec, cfg.top_n, space="text", videos=query.scope)
        ranked = fuse_hits([(h.record.video_id, h.record.clip_index, h.score) for h in hits], self.evidence_clips(query))
        cands = select_clips(ranked, {v: [r.clip_index for r in rs] for v, rs in query.records.items()},
                             neighbours=cfg.neighbours, anchors=anchors(cfg, query.whole),
                             max_candidates=cfg.max_candidates)
        return [by_key[(c.video, c.clip_index)] for c in cands]

    def evidence_clips(self, query: Query) -> list[tuple[str, int, float]]:
        """(video, clip, cosine) of the clips holding the best evidence hits: what was said or shown there."""
        from longwatch.pipeline.evidence_qa import fts_query, stored_videos

        stored = stored_videos(self.bank, query.scope)
        if not stored:
            return []
        hits = self.bank.search_evidence(query.vec, fts_query(query.text), k=self.config.top_n, videos=stored)
        return [(h.record.video_id, h.record.clip_index, float(h.dense or 0.0)) for h in hits]


def anchors(cfg: PipelineConfig, whole: bool) -> int:
    return cfg.anchors_whole if whole else cfg.anchors


def choose_strategy(bank, models: ModelSet, config: PipelineConfig):
    """The one place that looks at what the models offer."""
    if models.answerer.is_text_only:
        return TextOnlyAsk(bank, models, config)
    if models.svlm is not None:
        return SvlmVisualAsk(bank, models, config)
    return VisualAsk(bank, models, config)


class ClipAsk:
    """Answers from retrieved clips: re-score them, give each its visual tokens, generate, cite."""

    def __init__(self, bank, models: ModelSet, config: PipelineConfig):
        from longwatch.pipeline.evidence_qa import WordMatcher
        from longwatch.pipeline.models.reranker import load_cross_encoder

        self.bank = bank
        self.answerer = models.answerer
        self.embedder = models.embedder
        self.words = WordMatcher(models.embedder)  # word vectors cached for the life of this asker
        self.judge = load_cross_encoder() if config.cross_encoder else None  # its model loads at the first question
        self.scorer = models.svlm or models.answerer  # the SVLM is the cheaper judge of relevance when present
        self.config = config

    def answer(self, query: Query, retrieve: Retrieve) -> Answer:
        return self.answer_from_clips(query, retrieve(query))

    def answer_from_clips(self, query: Query, chosen: list) -> Answer:
        import torch

        cfg, timings = self.config, query.timings
        timings["retrieve"] = time.perf_counter() - query.started
        # The quotes depend on neither the clips' scores nor the reply: shown while the VLM scores and writes.
        t = time.perf_counter()
        evidence = self.evidence_for(query)
        if evidence and query.on_quotes is not None:
            from longwatch.pipeline.evidence_qa import quoted

            query.on_quotes(quoted(evidence))
        timings["evidence"] = time.perf_counter() - t
        t = time.perf_counter()
        items = [ContextItem(r.video_id, r.clip_index, r.t0, r.t1, r.caption, r.ocr_text, 0.0) for r in chosen]
        scores = self.rescore(query.text, chosen, items) if chosen else []
        for item, s in zip(items, scores):
            item.relevance = float(s)
        timings["relevance"] = time.perf_counter() - t
        t = time.perf_counter()
        used = self.give_tokens(chosen, items, scores) if chosen else 0
        timings["allocate"] = time.perf_counter() - t
        t = time.perf_counter()
        blocks = build_blocks(items)
        needs_vision = self.declines(query, items, scores)
        prefill = self.prefill(blocks, query.text)
        if needs_vision:
            text = NEEDS_VISION
        else:
            with torch.inference_mode():
                text = self.answerer.generate(blocks, query.text, max_new_tokens=cfg.answer_tokens,
                                              min_new_tokens=cfg.min_new_tokens)
        timings["answer"] = time.perf_counter() - t
        # A whole-video answer cites the best clip of each of n equal parts of the timeline.
        n_cite = max(cfg.max_citations, min(anchors(cfg, query.whole), 8)) if query.whole else cfg.max_citations
        citations = [] if needs_vision else cite(items, n_cite, spread=n_cite if query.whole else 0)
        quotes = []
        if query.whole and not needs_vision:
            text, quotes = self.grounded_summary(query, text, evidence)
        elif not needs_vision:
            text, quotes = self.grounded_reply(query, text, evidence)
            citations = [Citation(q.video, q.t0, q.t1, 1.0) for q in quotes] + citations
        return Answer(text=text, citations=citations, tokens_used=used, timings=timings,
                      clips_considered=len(items), budget=cfg.budget, needs_vision=needs_vision,
                      prefill_tokens=prefill, videos=list(query.scope),
                      clips=[ClipUse(i.video, i.t0, i.t1, i.relevance, i.n_tokens) for i in items], evidence=quotes)

    def timelines(self, query: Query) -> list:
        """All evidence of the videos in scope, video by video in time order."""
        from longwatch.pipeline.evidence_qa import timeline

        return [e for v in query.scope for e in timeline(self.bank, v, query.records[v])]

    def evidence_for(self, query: Query) -> list:
        """What a reply quotes: for the whole video, evidence spread over its timeline; else the supporting evidence."""
        from longwatch.pipeline.timeline import spread

        return spread(self.timelines(query)) if query.whole else self.supporting_evidence(query)[0]

    def grounded_summary(self, query: Query, generated: str, evidence: list) -> tuple[str, list]:
        """A generated summary keeps only its sentences whose numbers, codes and names the video's evidence
        states; quotes spread over the timeline (`evidence`) always follow, so every claim can be traced."""
        from longwatch.pipeline.evidence_qa import quote_lines, quoted
        from longwatch.pipeline.grounding import grounded

        quotes = quoted(evidence)
        kept = grounded(generated, [q.text for q in quotes], query.text, first_only=False, facts_only=True)
        if not kept and not quotes:
            kept = UNCHECKED_SUMMARY
        return "\n".join(p for p in (kept, quote_lines(quotes, len(query.scope) > 1)) if p), quotes

    def supporting_evidence(self, query: Query) -> tuple[list, list[float]]:
        """The timeline's evidence that supports an answer (the text path's rule), whole sentences, best first."""
        from longwatch.pipeline.evidence_qa import search, supporting, whole_sentences
        from longwatch.pipeline.textqa import question_stem

        stem = question_stem(query.text)
        qvec = query.vec if stem == query.text else np.asarray(self.embedder.embed([stem])[0], dtype=np.float32)
        hits = supporting(query.text, search(self.bank, self.embedder, query.text, qvec, query.scope, query.records),
                          self.words, self.judge)
        return whole_sentences(self.bank, [h.record for h in hits],
                               [float(min(1.0, max(0.0, h.dense or 0.0))) for h in hits])

    def grounded_reply(self, query: Query, generated: str, chosen: list) -> tuple[str, list]:
        """A VLM's answer to a specific question: its sentences that name no number, code or name, or only ones
        the supporting evidence (`chosen`) states, then that evidence quoted by kind and time. Nothing left of the
        reply: the quotes alone, or with none, a short statement that the reading could not be checked."""
        from longwatch.pipeline.evidence_qa import quote_lines, quoted
        from longwatch.pipeline.grounding import grounded

        quotes = quoted(chosen)
        kept = grounded(generated, [f"{e.text}\n{e.context}".strip() for e in chosen], query.text, first_only=False,
                        facts_only=True)
        if not kept and not quotes:
            kept = UNCHECKED_VISUAL
        return "\n".join(p for p in (kept, quote_lines(quotes, len(query.scope) > 1)) if p), quotes

    # ---- what the strategies change ------------------------------------------------------------------------
    def rescore(self, question: str, chosen: list, items: list[ContextItem]) -> list[float]:
        """Tempo's relevance prior per clip; text-only answerers judge the clips' text."""
        return self.judge_text(question, items)

    def judge_text(self, question: str, items: list[ContextItem]) -> list[float]:
        """Relevance from each clip's text alone, every clip judged on its own (no video label)."""
        return self.scorer.relevance(question, [block for i in items for block in build_blocks([i])])

    def give_tokens(self, chosen: list, items: list[ContextItem], scores: list[float]) -> int:
        """Put visual tokens on `items` and return their total; a text-only answerer reads none."""
        return 0

    def declines(self, query: Query, items: list[ContextItem], scores: list[float]) -> bool:
        """True: answer NEEDS_VISION instead of generating (the answerer cannot see what is asked)."""
        return False

    def prefill(self, blocks: list[PromptBlock], question: str) -> int | None:
        """Prompt length the answerer reads, when it tokenises prompts itself."""
        return None


class VisualAsk(ClipAsk):
    """A VLM answerer without an SVLM: it re-scores clips from their propagated memory, then reads ATA's tokens."""

    def rescore(self, question, chosen, items):
        return self.scorer.relevance(question, self._scored_blocks(chosen, items, "memory", "memory_grid"))

    def _scored_blocks(self, chosen, items, kind, grid_key) -> list[PromptBlock]:
        """One block per clip, alone (no video label), with its stored `kind` tokens reshaped to their grid."""
        stored = self.bank.tokens([r.record_id for r in chosen], kind)
        heads = [ContextItem(i.video, i.clip_index, i.t0, i.t1, i.caption, i.ocr_text, 0.0,
                             tok.float().reshape(*r.meta[grid_key], -1))
                 for i, r, tok in zip(items, chosen, stored)]
        return [block for head in heads for block in build_blocks([head])]

    def give_tokens(self, chosen, items, scores):
        """ATA over the clips that have visual tokens, each pooled to its share of the budget."""
        cfg = self.config
        self._check_space(chosen)
        # ATA counts "frames" as stored time steps (Qwen's temporal patches merge two frames into one).
        seen = [i for i, r in enumerate(chosen) if "detail_grid" in r.meta]
        alloc = allocate([scores[i] for i in seen], cfg.budget, [chosen[i].meta["detail_grid"][0] for i in seen],
                         cfg.min_tpf, cfg.max_tpf)
        used = 0
        for i, n in zip(seen, alloc):
            if n > 0:
                items[i].tokens = self._pooled(chosen[i], n)
                used += items[i].n_tokens
        return used

    def prefill(self, blocks, question):
        return int(self.answerer.build_prompt(blocks, question).input_ids.shape[1])

    def _check_space(self, chosen) -> None:
        """Stored tokens live in the embedding space of the answerer that ingested them."""
        mine = self.answerer.hidden_size
        for r in chosen:
            dim = r.meta.get("dim")
            if dim is not None and dim != mine:
                raise BankError(f"video {r.video_id!r} was ingested with answerer {r.meta.get('answerer')!r} "
                                f"({dim}-d tokens) but this pipeline answers with "
                                f"{getattr(self.answerer, 'name', '?')!r} ({mine}-d); open the bank with the "
                                "same preset, or delete and re-ingest the video")

    def _pooled(self, record, n: int):
        """The clip's stored tokens pooled to at most n: the propagated memory when n fits in it, else detail."""
        from longwatch.pipeline.encoder import pool_grid

        mgrid = tuple(record.meta["memory_grid"])
        dgrid = tuple(record.meta["detail_grid"])
        kind, grid = ("memory", mgrid) if n <= int(np.prod(mgrid)) else ("detail", dgrid)
        stored = self.bank.tokens([record.record_id], kind)[0].float().reshape(*grid, -1)
        return pool_grid(stored, grid_for(n, grid))


class SvlmVisualAsk(VisualAsk):
    """A VLM answerer with the small VLM: the SVLM re-scores clips from the tokens it stored at ingest (Tempo)."""

    def rescore(self, question, chosen, items):
        if all("svlm" in r.tokens for r in chosen):
            return self.scorer.relevance(question, self._scored_blocks(chosen, items, "svlm", "svlm_grid"))
        # Clips ingested without an SVLM (a bank made by another preset) carry no SVLM tokens: judge their text.
        return self.judge_text(question, items)


class TextOnlyAsk(ClipAsk):
    """A text-only answerer (the offline preset): answers from the evidence timeline (what is said, subtitled and
    shown as text), quoting it by kind and time. Nothing that supports an answer means it says so, with no
    citations; a visual question no evidence supports is declined, not invented."""

    def answer(self, query: Query, retrieve: Retrieve) -> Answer:
        from longwatch.pipeline import timeline

        asked = timeline.parse(query.text)
        if asked is not None:
            found = self.answer_timeline(query, asked)
            if found is not None:
                return found
        if query.whole:
            return self.answer_summary(query)
        return self.answer_from_evidence(query)

    def answer_from_evidence(self, query: Query) -> Answer:
        """Quote the evidence that supports an answer, or say that none does.

        A 135M LM handed whole clips invents facts and times; handed only the supporting quotes it rephrases
        them, its sentence is shown only when it keeps every fact of the quotes, and the quotes always follow.
        """
        import torch

        from longwatch.pipeline.evidence_qa import quoted
        from longwatch.pipeline.grounding import grounded
        from longwatch.pipeline.textqa import asks_about_the_end, asks_for_any_text

        cfg, question = self.config, query.text
        chosen, scores = self.supporting_evidence(query)
        generic = not chosen and asks_for_any_text(question)
        if generic:  # "what text appears on screen?": the first (or, asked about the end, last) lines shown
            shown = [e for e in self.timelines(query) if e.kind == "ocr"]
            chosen = shown[-GENERIC_LINES:] if asks_about_the_end(question) else shown[:GENERIC_LINES]
            scores = [1.0] * len(chosen)
        query.timings["retrieve"] = time.perf_counter() - query.started
        t = time.perf_counter()
        reply = ""
        if chosen and not generic:
            if query.on_quotes is not None:  # the quotes are the answer; the sentence only restates them
                query.on_quotes(quoted(chosen))
            blocks = [PromptBlock(format_span(e.t0, e.t1) + " ", text_after=f"{e.context} {e.text}".strip() + "\n")
                      for e in sorted(chosen, key=lambda e: (e.video_id, e.t0))]
            with torch.inference_mode():
                # Only the first sentence can be shown, so a sentence's worth of tokens is enough.
                reply = self.answerer.generate(blocks, question, max_new_tokens=min(cfg.answer_tokens, 40),
                                               min_new_tokens=cfg.min_new_tokens)
            reply = grounded(reply, [f"{e.text}\n{e.context}".strip() for e in chosen], question)
        query.timings["answer"] = time.perf_counter() - t
        return self.quoting(query, chosen, scores, reply, "Text on screen:" if generic else "")

    def answer_timeline(self, query: Query, asked) -> Answer | None:
        """First/last/count/before/after/order answered from the timeline itself; None when no subject is in it."""
        from longwatch.pipeline import timeline
        from longwatch.pipeline.evidence_qa import topic
        from longwatch.pipeline.textqa import coverage, squash

        evidence = self.timelines(query)

        def matches(subject: str) -> list:
            words, glued = topic(subject), squash(subject)
            # OCR drops the spaces of tight titles ("RobotArms"): the whole subject found glued also counts.
            found = [e for e in evidence if e.kind != "caption" and (coverage(words, f"{e.context} {e.text}") >= 1.0
                                                                      or (len(glued) >= 6 and glued in squash(e.text)))]
            # "shown" asks for the screen, "said" for speech and subtitles; either, when only the other has it.
            kinds = {"screen": ("ocr",), "speech": ("speech", "subtitle")}.get(asked.seen, ())
            return [e for e in found if e.kind in kinds] or found

        found = timeline.answer(asked, evidence, matches)
        query.timings["retrieve"] = time.perf_counter() - query.started
        if found is None:
            return None
        text, quoted = found
        return self.quoting(query, quoted, [1.0] * len(quoted), text, "")

    def answer_summary(self, query: Query) -> Answer:
        """Whole-video questions: quotes spread over the timeline, every sentence a quote with its time."""
        from longwatch.pipeline.timeline import spread

        chosen = spread(self.timelines(query))
        query.timings["retrieve"] = time.perf_counter() - query.started
        head = "From what the video says and shows, in time order:" if chosen else ""
        return self.quoting(query, chosen, [1.0] * len(chosen), "", head)

    def quoting(self, query: Query, chosen: list, scores: list[float], lead: str, head: str) -> Answer:
        """The answer: `lead` (a grounded sentence or a timeline statement), then the quotes, one a line; citations
        are the quotes' time ranges. No quote: the question is refused with no citations."""
        from longwatch.pipeline.evidence_qa import quote_lines, quoted

        quotes = quoted(chosen)
        needs_vision = not quotes and is_visual_question(query.text)
        if not quotes:
            text = NEEDS_VISION if needs_vision else NOT_IN_TEXT
        else:
            text = "\n".join(p for p in (lead, head, quote_lines(quotes, len(query.scope) > 1)) if p)
        citations = [Citation(q.video, q.t0, q.t1, s) for q, s in zip(quotes, scores)]
        return Answer(text=text, citations=citations, tokens_used=0, timings=query.timings,
                      clips_considered=sum(len(r) for r in query.records.values()), budget=self.config.budget,
                      needs_vision=needs_vision, prefill_tokens=None, videos=list(query.scope),
                      clips=[ClipUse(c.video, c.t0, c.t1, c.score, 0) for c in citations], evidence=quotes)
