"""Questions the evidence timeline answers by itself: first/last appearance, counts, before/after, order, summaries.

The matching evidence is sorted by time and merged into appearances; answers are templates filled with the
user's own subject and the quoted times, and summaries are quotes spread over the timeline: nothing is generated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from longwatch.memory.records import EvidenceRecord
from longwatch.pipeline.answer import format_span
from longwatch.pipeline.textqa import MERGE_GAP, content_words, question_stem

ON_SCREEN = ("ocr", "caption")
SUMMARY_PARTS = 8  # equal parts of the timeline a summary quotes from
MAX_LISTED = 6  # appearances quoted for a count

_VERB = (r"(?:shown|mentioned|said|displayed|seen|discussed|presented|covered|introduced|named|brought up|"
         r"referred to|talked about|appear(?:ed|s)?|come up|came up|show up|showed up|occur(?:red|s)?)")
_ACT = (r"(?:mention|say|show|display|discuss|present|cover|introduce|name|bring up|refer to|talk about|"
        r"read out)(?:s|ed)?")
_WHERE = r"(?:in|during|of|from) (?:the|this) (?:lecture|video|talk|presentation|meeting|session|clip|film)"
_WHO = r"(?:the )?(?:\w+ )?"  # "the speaker", "she", "the lecturer"
_PATTERNS = [
    ("which_first", re.compile(r"^which (?:\w+ )?(?:came|comes|was \w+|is \w+|appeared|happened|did \w+ \w+)? ?"
                               rf"(?:first|earlier)\b(?: {_WHERE})?[,:]?\s*(?:the )?(.+?),? or (?:the )?(.+?)\W*$",
                               re.I)),
    ("which_first", re.compile(r"^(?:was|is|did|does) (?:the )?(.+?) (?:\w+ )?(?:before|earlier than) (?:the )?(.+?)"
                               r"\W*$", re.I)),
    ("count", re.compile(rf"^how (?:many times|often) (?:was|is|were|are|did|does|has|have)? ?(?:the )?(.+?) "
                         rf"(?:get |being |been )?{_VERB}\b", re.I)),
    ("count", re.compile(r"^how many times (?:does|did) (?:the )?(.+?) (?:appear|come up|occur)\b", re.I)),
    ("count", re.compile(rf"^how (?:many times|often) (?:did|does|do|has|have) {_WHO}{_ACT} (?:the )?(.+?)\W*$",
                         re.I)),
    ("first", re.compile(rf"^when (?:did|does|do) {_WHO}first {_ACT} (?:the )?(.+?)\W*$", re.I)),
    ("last", re.compile(rf"^when (?:did|does|do) {_WHO}last {_ACT} (?:the )?(.+?)\W*$", re.I)),
    ("first", re.compile(rf"^(?:when|at what time|at which point) (?:was|is|were|did|does) (?:the )?(.+?) "
                         rf"(?:first (?:get )?{_VERB}|{_VERB} (?:for )?the first time|first)\b", re.I)),
    ("last", re.compile(rf"^(?:when|at what time|at which point) (?:was|is|were|did|does) (?:the )?(.+?) "
                        rf"(?:last (?:get )?{_VERB}|{_VERB} (?:for )?the (?:last|final) time|last)\b", re.I)),
    ("before", re.compile(r"^what (?:came|comes|was \w+|is \w+|happened|happens|was) (?:right |just |immediately )?"
                          r"before (?:the )?(.+?)\W*$", re.I)),
    ("after", re.compile(r"^what (?:came|comes|was \w+|is \w+|happened|happens|was) (?:right |just |immediately )?"
                         r"(?:after|next after|following) (?:the )?(.+?)\W*$", re.I)),
    ("order", re.compile(rf"^in what order (?:were|are|did|do) (?:the )?(.+?) (?:get )?{_VERB}\W*$", re.I)),
]


@dataclass(frozen=True)
class TimelineQuestion:
    """What a timeline question asks (`kind`) about which subjects, in the user's words."""

    kind: str  # first | last | count | before | after | which_first | order
    subjects: tuple[str, ...]
    seen: str | None = None  # "screen" (shown, displayed), "speech" (said, mentioned) or None (either)


_SCREEN_VERBS = re.compile(r"\b(shown|shows?|displayed|display|seen|on screen|on the slide)\b", re.I)
_SPEECH_VERBS = re.compile(r"\b(said|says?|spoken|speak\w*|talk\w*|discuss\w*)\b", re.I)  # "mentioned": either


def _subject(text: str) -> str:
    """The subject as the user named it, without articles or "in the lecture"."""
    text = re.sub(rf"^{_WHERE}[,:]?\s*|\s*{_WHERE}$", "", text.strip(" \"'"), flags=re.I)
    return re.sub(r"^(?:the|a|an)\s+", "", text.strip(" \"',:"), flags=re.I)


def _seen(stem: str) -> str | None:
    screen, speech = bool(_SCREEN_VERBS.search(stem)), bool(_SPEECH_VERBS.search(stem))
    return "screen" if screen and not speech else "speech" if speech and not screen else None


def parse(question: str) -> TimelineQuestion | None:
    """The timeline question in `question`, or None for any other kind of question."""
    stem = " ".join(question_stem(question).split())
    for kind, pattern in _PATTERNS:
        m = pattern.search(stem)
        if m:
            subjects = tuple(_subject(s) for s in m.groups())
            if kind == "order":
                subjects = tuple(_subject(s) for s in re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+",
                                                               subjects[0]) if s.strip())
                if len(subjects) < 2:
                    return None
            if all(content_words(s) for s in subjects):
                return TimelineQuestion(kind, subjects, _seen(stem))
    return None


@dataclass
class Appearance:
    """One stretch of time in which a subject was said or shown, with the evidence that shows it."""

    t0: float
    t1: float
    records: list[EvidenceRecord]

    @property
    def span(self) -> str:
        return format_span(self.t0, self.t1)


def appearances(matches: Sequence[EvidenceRecord]) -> list[Appearance]:
    """Matching evidence in time order, merged where it overlaps in time or, on screen, follows within MERGE_GAP
    (one slide read in several clips is one showing; two separate sentences are two mentions)."""
    out: list[Appearance] = []
    for r in sorted(matches, key=lambda r: (r.video_id, r.t0, r.kind, r.evidence_id)):
        last = out[-1] if out else None
        screen = last is not None and r.kind in ON_SCREEN and all(x.kind in ON_SCREEN for x in last.records)
        if last is not None and last.records[0].video_id == r.video_id and (
                r.t0 < last.t1 or (screen and r.t0 - last.t1 <= MERGE_GAP)):
            last.t1 = max(last.t1, r.t1)
            last.records.append(r)
        else:
            out.append(Appearance(r.t0, r.t1, [r]))
    return out


Matcher = Callable[[str], list[EvidenceRecord]]


def answer(tq: TimelineQuestion, evidence: Sequence[EvidenceRecord], matches: Matcher,
           ) -> tuple[str, list[EvidenceRecord]] | None:
    """(answer text, quoted evidence) from the timeline, or None when no subject appears in it."""
    found = {s: appearances(matches(s)) for s in tq.subjects}
    subject = tq.subjects[0]
    shown = found[subject]
    if tq.kind in ("first", "last", "count", "before", "after") and not shown:
        return None
    if tq.kind in ("first", "last"):
        a = shown[0] if tq.kind == "first" else shown[-1]
        when = "first" if tq.kind == "first" else "last"
        return f'"{subject}" {when} comes up at {a.span}.', a.records[:2]
    if tq.kind == "count":
        n = len(shown)
        listed = ", ".join(a.span for a in shown[:MAX_LISTED]) + (", …" if n > MAX_LISTED else "")
        return (f'"{subject}" comes up {n} time{"s" if n != 1 else ""}: {listed}.',
                [a.records[0] for a in shown[:MAX_LISTED]])
    if tq.kind in ("before", "after"):
        return _neighbour(tq.kind, subject, shown[0], evidence)
    present = [(s, found[s][0]) for s in tq.subjects if found[s]]
    if not present:
        return None
    present.sort(key=lambda sa: (sa[1].records[0].video_id, sa[1].t0))
    missing = [s for s in tq.subjects if not found[s]]
    text = ", then ".join(f'"{s}" ({a.span})' for s, a in present)
    text = (f"{text[0].upper()}{text[1:]} comes first." if len(present) == 1 else f"In time order: {text}.")
    if missing:
        text += " " + "; ".join(f'"{s}" does not come up in what was said or shown.' for s in missing)
    return text, [a.records[0] for _, a in present]


def _neighbour(kind: str, subject: str, first: Appearance, evidence: Sequence[EvidenceRecord],
               ) -> tuple[str, list[EvidenceRecord]] | None:
    """The evidence just before (or after) the subject's first appearance, of the same sort (screen or speech)."""
    screen = all(r.kind in ON_SCREEN for r in first.records)
    own = {r.evidence_id for r in first.records}
    same = [r for r in evidence if r.video_id == first.records[0].video_id and r.evidence_id not in own
            and (r.kind in ON_SCREEN) == screen and r.kind != "caption"]
    if kind == "before":
        side = [r for r in same if r.t1 <= first.t0 + 1e-6 or r.t0 < first.t0 - MERGE_GAP]
        pick = [r for r in side if r.t0 == max(x.t0 for x in side)] if side else []
    else:
        side = [r for r in same if r.t0 >= first.t1 - 1e-6 or r.t0 > first.t0 + MERGE_GAP]
        pick = [r for r in side if r.t0 == min(x.t0 for x in side)] if side else []
    if not pick:
        where = "nothing was said or shown before it" if kind == "before" else "nothing was said or shown after it"
        return f'"{subject}" comes up at {first.span}; {where}.', first.records[:1]
    return f'{"Before" if kind == "before" else "After"} "{subject}" ({first.span}) came:', pick[:2]


def spread(evidence: Sequence[EvidenceRecord], parts: int = SUMMARY_PARTS) -> list[EvidenceRecord]:
    """Evidence spread over the timeline for a summary: in each of `parts` equal parts of each video, the first
    line shown on screen (a slide's title leads its rows) and the most informative thing said or subtitled.
    Captions are written by a model: quoted only where a part has nothing else. No text is quoted twice."""
    chosen: list[EvidenceRecord] = []
    seen: set[str] = set()
    for video in sorted({r.video_id for r in evidence}):
        own = [r for r in evidence if r.video_id == video and len(content_words(r.text)) > 0]
        if not own:
            continue
        lo, hi = min(r.t0 for r in own), max(r.t1 for r in own)
        width = max(hi - lo, 1e-9) / parts
        for part in range(parts):
            inside = [r for r in own if min(int((r.t0 - lo) / width), parts - 1) == part
                      and r.text.casefold() not in seen]
            screen = [r for r in inside if r.kind == "ocr"]
            spoken = sorted((r for r in inside if r.kind in ("speech", "subtitle")),
                            key=lambda r: (-len(content_words(r.text)), r.t0))
            picks = screen[:1] + spoken[:1] or [r for r in inside if r.kind == "caption"][:1]
            for r in picks:
                seen.add(r.text.casefold())
                chosen.append(r)
    return sorted(chosen, key=lambda r: (r.video_id, r.t0, r.kind))
