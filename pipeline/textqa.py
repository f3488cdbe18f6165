"""Answers from on-screen text lines, for answerers that read text only (the offline preset).

A clip's stored OCR text is split back into lines; each distinct line is embedded once per video and
matched against the question. A line that matches is quoted with its time ranges; nothing that
matches means the answer says so, with no citations, instead of letting a small LM invent one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from longwatch.pipeline.answer import format_span

# Thresholds on MiniLM cosine similarity between the question and one line. Measured on V-NIAH
# haystacks: lines stating the asked fact score 0.5–0.9, the best line for a question about
# something absent 0.18–0.42. Between MIN and SURE a line also has to share a content word.
MIN_SCORE = 0.45
SURE_SCORE = 0.60
NEAR_BEST = 0.08  # evidence = lines within this of the best match
COVERAGE_WEIGHT = 0.2  # rank bonus for a line that mentions all of the question's content words
MAX_EVIDENCE = 3
OCR_SEPARATOR = " | "  # how the ingest joins a clip's text spans
MERGE_GAP = 1.0  # seconds: one line seen again this soon is one appearance

_STOP = set("""a an the is are was were be been being of in on at to for from by with about into over under and or
not no do does did doing done what which who whom whose when where why how this that these those there here it its
they them their he she his her you your we our i me my any some all each every much many more most other such
can could would should will shall may might must have has had having as if than then so very just also only
video clip time please tell show say says said""".split())
# Words that ask for text in general ("what text appears on screen?") rather than for a fact.
_TEXT_WORDS = {"text", "texts", "written", "writing", "write", "words", "word", "caption", "captions", "title",
               "titles", "screen", "onscreen", "appear", "appears", "appeared", "shown", "displayed", "display",
               "read", "visible", "sign", "signs", "slide", "slides", "label", "labels", "banner", "ticker", "see"}


def content_words(text: str) -> set[str]:
    """Lower-case word stems that carry meaning (stop words dropped, plural/verb 's' trimmed)."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in words if w not in _STOP}


def topic_coverage(topic: set[str], line: str) -> float:
    """Fraction of the question's content words the line mentions; OCR often drops spaces ("Thelaunch is at"),
    so words of four letters or more also count when found inside the line with its spaces removed."""
    if not topic:
        return 0.0
    words = content_words(line)
    squashed = re.sub(r"[^a-z0-9]+", "", line.lower())
    return sum(1 for w in topic if w in words or (len(w) >= 4 and w in squashed)) / len(topic)


def unglued(text: str) -> str:
    """Text for the embedder: letter runs of six or more split into words ("meetingmoved toroom" -> "meeting
    moved to room"). PP-OCR drops spaces between tight words, and glued words embed as noise. Display keeps
    the text as read."""
    from longwatch import optional

    if not optional.installed("wordninja"):
        return text
    import wordninja
    return re.sub(r"[A-Za-z]{6,}", lambda m: " ".join(wordninja.split(m.group())) or m.group(), text)


def question_stem(question: str) -> str:
    """The question without a multiple-choice tail ("Options: (A) …", "Answer with the letter")."""
    return re.split(r"\n\s*(?:options?:|\(?[A-H][.)]\s)", question, maxsplit=1, flags=re.IGNORECASE)[0].strip()


def asks_for_any_text(question: str) -> bool:
    """True for generic questions about on-screen text, with no topic of their own."""
    words = content_words(question)
    trimmed = {w[:-1] if w.endswith("s") else w for w in _TEXT_WORDS}
    return bool(words & (_TEXT_WORDS | trimmed)) and not (words - _TEXT_WORDS - trimmed)


@dataclass
class TextLine:
    """One distinct on-screen line of one video, with every time range it is visible in."""

    video: str
    text: str
    spans: list[tuple[float, float]] = field(default_factory=list)
    score: float = 0.0

    @property
    def t0(self) -> float:
        return self.spans[0][0]

    def label(self) -> str:
        return ", ".join(format_span(a, b) for a, b in self.spans[:3])


def collect_lines(video: str, records: Sequence) -> list[TextLine]:
    """Distinct OCR lines of a video's clip records (in clip order), with the time ranges they are visible in.

    Ranges come from the OCR lane's spans (`meta["ocr_spans"]`) when the record has them, else the clip's
    own range; ranges closer than MERGE_GAP seconds are merged.
    """
    lines: dict[str, TextLine] = {}
    for r in records:
        spans = (r.meta or {}).get("ocr_spans")
        if spans is None:
            spans = [(r.t0, r.t1, raw) for raw in (r.ocr_text or "").split(OCR_SEPARATOR)]
        for t0, t1, raw in spans:
            text = " ".join(str(raw).split())
            if len(text) < 2:
                continue
            line = lines.setdefault(text.lower(), TextLine(video, text))
            if line.spans and t0 - line.spans[-1][1] <= MERGE_GAP:
                line.spans[-1] = (line.spans[-1][0], max(line.spans[-1][1], float(t1)))
            else:
                line.spans.append((float(t0), float(t1)))
    return list(lines.values())


def grounded(reply: str, evidence: Sequence[TextLine], question: str) -> str:
    """The reply's first sentence when it says nothing the evidence does not: every number in it appears in
    the evidence, and most of its content words come from the evidence or the question. Else ""."""
    first = re.split(r"(?<=[.!?])\s", reply.strip(), maxsplit=1)[0].strip()
    if not first:
        return ""
    source = " ".join(l.text for l in evidence)
    squashed = re.sub(r"[^a-z0-9]+", "", source.lower())
    if any(n not in squashed for n in re.findall(r"\d+", first)):
        return ""
    words = content_words(first)
    # The question's wording may be echoed, not its listed options: those are claims, not evidence.
    known = content_words(source) | content_words(question_stem(question))
    supported = [w for w in words if w in known or (len(w) >= 4 and w in squashed)]
    return first if words and len(supported) >= 0.7 * len(words) else ""


class LineIndex:
    """Embeddings of each video's distinct lines, rebuilt only when the video gained clips."""

    def __init__(self, embedder):
        self.embedder = embedder
        self._cache: dict[str, tuple[int, list[TextLine], np.ndarray]] = {}

    def lines(self, video: str, records: Sequence) -> tuple[list[TextLine], np.ndarray]:
        cached = self._cache.get(video)
        if cached is not None and cached[0] == len(records):
            return cached[1], cached[2]
        lines = collect_lines(video, records)
        vecs = (np.asarray(self.embedder.embed([unglued(l.text) for l in lines]), dtype=np.float32) if lines
                else np.zeros((0, getattr(self.embedder, "dim", 384)), np.float32))
        self._cache[video] = (len(records), lines, vecs)
        return lines, vecs

    def all_lines(self, records_by_video: dict[str, Sequence], limit: int = 12) -> list[TextLine]:
        """Every distinct line in time order (for "what text appears?"), at most `limit`."""
        lines = [l for v, rs in records_by_video.items() for l in self.lines(v, rs)[0]]
        return sorted(lines, key=lambda l: (l.video, l.t0))[:limit]

    def evidence(self, question: str, qvec: np.ndarray, records_by_video: dict[str, Sequence]) -> list[TextLine]:
        """The lines that support an answer, best first; empty when nothing on screen matches."""
        scored: list[TextLine] = []
        for video, records in records_by_video.items():
            lines, vecs = self.lines(video, records)
            if not lines:
                continue
            for line, s in zip(lines, vecs @ qvec):
                scored.append(TextLine(line.video, line.text, line.spans, float(s)))
        if not scored:
            return []
        topic = content_words(question_stem(question))
        keep = [l for l in scored if l.score >= SURE_SCORE
                or (l.score >= MIN_SCORE and topic_coverage(topic, l.text) > 0)]
        if not keep:
            return []
        # Rank by similarity plus how many of the question's words a line mentions (dense + lexical), so a
        # distractor that shares one word ("TEAM MEETING") loses to the line that answers ("meeting moved to room").
        rank = {id(l): l.score + COVERAGE_WEIGHT * topic_coverage(topic, l.text) for l in keep}
        keep.sort(key=lambda l: (-rank[id(l)], l.video, l.t0))
        best = rank[id(keep[0])]
        return [l for l in keep if rank[id(l)] >= best - NEAR_BEST][:MAX_EVIDENCE]


def quote(lines: Sequence[TextLine], multi_video: bool) -> str:
    """`On screen [00:12:01–00:12:06]: "THE VAULT CODE IS 4719"`, one line each."""
    return "\n".join(f"On screen {'in ' + l.video + ' ' if multi_video else ''}{l.label()}: \"{l.text}\""
                     for l in lines)
