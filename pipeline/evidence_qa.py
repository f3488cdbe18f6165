"""Evidence that answers a question: hybrid hits from the bank's evidence timeline, judged supported or not.

A hit supports an answer when its meaning is close to the question's (dense cosine) and, unless it is very
close, when its own text mentions the question's subject (normalised content words; its context, the slide title
or table header, completes the match but never makes it alone). Questions asking for a number or a time need one
in the evidence, and a question naming a code ("gate D9", "Q3") only meets evidence holding it. A table row the
question names by its code also meets header words the question does not use ("town" for "City"), through a soft
word match (WordMatcher). A "who" question needs a name in the evidence, and a labelled fact ("Max team size: 3")
never answers a question that qualifies its label otherwise ("the minimum team size"). Nothing supported means the
answer says so, with no citations: a confident wrong answer is the worst outcome.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

import numpy as np

from longwatch.memory.records import EvidenceHit, EvidenceRecord
from longwatch.pipeline.answer import QuotedEvidence, format_span
from longwatch.pipeline.select import rrf
from longwatch.pipeline.textqa import (STOP, TEXT_WORDS, answer_kind, can_answer_kind, collect_lines,
                                       content_words, coverage, is_code, keys, normalised_words, question_stem, squash,
                                       stem, tokens, unglued, value_kind)

SEARCH_K = 20
# MiniLM cosine between a question and one piece of evidence. Calibrated on speech sentences, subtitle cues,
# slide bullets, table rows and real-footage OCR with questions phrased with and without the evidence's words
# (tests/test_answer_evidence.py holds the tuning set and two held-out sets).
SURE_DENSE = 0.62  # this close, the evidence answers even when it shares no word with the question
MID_DENSE = 0.50  # from here, evidence with one of the question's words, or the number a number question asks for
MIN_DENSE = 0.40  # from here, evidence that mentions half of the question's subject supports it
LOW_DENSE = 0.25  # from here, evidence that mentions all of the question's subject supports it
HALF = 0.5
# The soft match (WordMatcher), MiniLM cosines between single words: unrelated pairs sit near .2-.35, stand-ins
# ("town"/"city" .77, "due"/"deadline" .48, "identifier"/"code" .45) above.
WORD_UNRELATED = 0.25  # up to here no credit; a question word below it for every evidence word vetoes
WORD_STANDS_IN = 0.55  # from here, full credit
WORD_MATCH = 0.45  # a question word this close to a word of the evidence's text has a stand-in there
SOFT_SUPPORT = 0.85  # dense cosine + soft coverage (0..1) from which the soft match supports an answer
LABEL_WORDS = 5  # a label is a short noun phrase: "Max team size", "Lab contact"
# A bullet or sign that states one fact under a label: "Office hours: Tuesday", "· Max team size: 3", and without
# a colon when the value is one code: "Meeting room 176", "Course code ELE-418".
_LABELLED = re.compile(r"^[^A-Za-z]*([A-Za-z][A-Za-z .'/&-]{0,40}?)\s*(?::\s*(\S.*)|\s+([^\s:]*\d[^\s:]*))$")
COVERAGE_WEIGHT = 0.25  # rank bonus for mentioning the question's words (dense + lexical)
NEAR_BEST = 0.08  # quote every supporting hit within this of the best
MAX_QUOTES = 3
# The cross-encoder's logit below which a quote the rules accept is dropped as unrelated (MS MARCO scale; sigmoid
# 0.007). Chosen from held-out sets A and B (tests/test_paraphrase.py) as the highest value that refuses more absent
# facts there without losing an answered paraphrase (set C's figures were printed beside them, not used to choose).
UNRELATED_LOGIT = -5.0
CONTINUE_GAP = 1.5  # seconds: a segment starting this soon after one cut mid-sentence finishes its sentence
# How each kind of evidence is labelled wherever it is quoted or listed (answers, transcript, UI chips).
KIND_LABELS = {"speech": "Said", "subtitle": "Subtitle", "ocr": "On screen", "caption": "Caption"}
# Words that say where to look, not what about: "the cost table", "the budget slide", "in the lecture"; and
# "number", which says what kind of answer is wanted ("the meeting room number" is in "Meeting room 407").
_TOPIC_NOISE = content_words(" ".join(TEXT_WORDS) + " talk lecture table chart graph diagram figure number")


class WordMatcher:
    """Soft lexical match for questions phrased without the evidence's words ("town" for "City", "due" for
    "deadline"): each of the question's content words meets its most similar word of the evidence, by the cosine
    of the embedder's single-word vectors. Word vectors are cached in-process and embedded in one batch per call,
    so one ask costs a few milliseconds once its words are known."""

    def __init__(self, embedder, max_words: int = 50_000):
        self.embedder = embedder
        self.max_words = max_words
        self._vecs: dict[str, np.ndarray] = {}

    def vectors(self, words: Sequence[str]) -> dict[str, np.ndarray]:
        missing = [w for w in dict.fromkeys(words) if w not in self._vecs]
        if missing:
            if len(self._vecs) + len(missing) > self.max_words:
                self._vecs.clear()
            for w, v in zip(missing, np.asarray(self.embedder.embed(missing), np.float32)):
                self._vecs[w] = v
        return {w: self._vecs[w] for w in words}

    def best(self, asked: Sequence[str], evidence_words: Sequence[str]) -> list[float]:
        """Per asked word, the cosine of its most similar evidence word (1.0 for the same key, 0.0 for none)."""
        if not asked:
            return []
        ev = [w for w in dict.fromkeys(evidence_words) if not is_code(w)]
        vecs = self.vectors([*asked, *ev])
        ev_keys = {stem(w) for w in evidence_words}
        mat = np.stack([vecs[w] for w in ev]) if ev else np.zeros((0, 1), np.float32)
        return [1.0 if stem(w) in ev_keys else (float(np.max(mat @ vecs[w])) if ev and not is_code(w) else 0.0)
                for w in asked]


def soft_words(text: str) -> list[str]:
    """The words of a text as the soft match reads them: normalised (numbers, "q3"), stop words dropped."""
    return [w for w in normalised_words(text) if w not in STOP and len(w) > 1]


def asked_words(question: str) -> list[str]:
    """The question's subject as words for the soft match (not stemmed: single words embed better whole)."""
    return [w for w in dict.fromkeys(soft_words(question_stem(question))) if stem(w) not in _TOPIC_NOISE]


def topic(question: str) -> set[str]:
    """The question's subject: its content words, without words that only say where to look ("screen")."""
    return content_words(question_stem(question)) - _TOPIC_NOISE


def fts_query(question: str) -> str:
    """The question for the bank's full-text side, plus the normalised forms its words stand for ("third
    quarter" also searches "q3", "twenty five" also "25"), so codes and numbers written either way match."""
    stem = question_stem(question)
    raw = tokens(stem)
    # Stop words would only fill the full-text list with rows that share "the" or "what" with the question.
    words = [w for w in raw if w not in STOP] or raw
    extra = [k for k in keys(stem) if k not in raw and is_code(k)]
    return " ".join(dict.fromkeys([*words, *extra]))


def legacy_timeline(video: str, records: Sequence) -> list[EvidenceRecord]:
    """Evidence of a bank ingested before the timeline existed: its clips' OCR lines and captions."""
    starts = [r.t0 for r in records]

    def clip_of(t: float) -> int:
        return records[max(0, bisect.bisect_right(starts, t) - 1)].clip_index

    out = [EvidenceRecord(-1 - i, video, clip_of(t0), "ocr", t0, t1, text, "", {})
           for i, (t0, t1, text) in enumerate(collect_lines(video, records))]
    out += [EvidenceRecord(-1 - len(out) - i, video, r.clip_index, "caption", r.t0, r.t1, r.caption.strip(), "", {})
            for i, r in enumerate(records) if r.caption and r.caption.strip()]
    return sorted(out, key=lambda e: (e.t0, e.kind, -e.evidence_id))


def timeline(bank, video: str, records: Sequence) -> list[EvidenceRecord]:
    """All of a video's evidence in time order; an old bank's clips stand in when it stores none."""
    return bank.evidence(video) or legacy_timeline(video, records)


def local_search(embedder, qvec: np.ndarray, question: str, evidence: Sequence[EvidenceRecord],
                 k: int = SEARCH_K) -> list[EvidenceHit]:
    """The bank's hybrid search over evidence it does not store (old banks): exact dense top-k fused by RRF
    with a lexical list ranked by how many of the question's words each piece mentions."""
    if not evidence:
        return []
    vecs = np.asarray(embedder.embed([unglued(f"{e.context} {e.text}".strip()) for e in evidence]), np.float32)
    dense = vecs @ np.asarray(qvec, np.float32)
    words = content_words(question_stem(question))
    lexical = [coverage(words, f"{e.context} {e.text}") for e in evidence]
    dense_order = list(np.argsort(-dense, kind="stable")[:k])
    lex_order = [i for i in sorted(range(len(evidence)), key=lambda i: -lexical[i]) if lexical[i] > 0][:k]
    lex_rank = {i: r + 1 for r, i in enumerate(lex_order)}
    fused = rrf([[int(i) for i in dense_order], lex_order])
    best = sorted(fused, key=lambda i: -fused[i])[:k]
    return [EvidenceHit(evidence[i], fused[i], float(dense[i]), lex_rank.get(i)) for i in best]


def stored_videos(bank, scope: Sequence[str]) -> list[str]:
    """The videos in scope whose evidence the bank stores (a bank made before the timeline stores none)."""
    return [v for v in scope if sum(bank.evidence_counts(v).values()) > 0]


def search(bank, embedder, question: str, qvec: np.ndarray, scope: Sequence[str], records: dict[str, list],
           k: int = SEARCH_K) -> list[EvidenceHit]:
    """Hybrid hits over the videos in scope, best first: the bank's evidence, or an old bank's clip text."""
    stored = stored_videos(bank, scope)
    hits = list(bank.search_evidence(qvec, fts_query(question), k=k, videos=stored)) if stored else []
    old = [e for v in scope if v not in stored for e in legacy_timeline(v, records.get(v, []))]
    if old:
        hits = sorted(hits + local_search(embedder, qvec, question, old, k), key=lambda h: -h.score)
    return hits


def judged(question: str, hit: EvidenceHit, words: WordMatcher | None = None) -> tuple[float, float] | None:
    """How well one hit answers the question (dense + lexical) and the share of the question's subject it
    mentions; None when it does not support an answer. With `words`, a question phrased without the evidence's
    words can still be supported by the soft match (see `soft_support`)."""
    subject, asked = topic(question), question_stem(question)
    r = hit.record
    wanted = answer_kind(asked)
    if not can_answer_kind(wanted, r.text, given=normalised_words(asked)):
        return None
    # Text that answers "who" names someone past its first word (a capital there only starts the sentence or the
    # label: "Fire drill: Wednesday" names no one); a speech segment or cue cut mid-sentence may name them in the
    # next one, and an on-screen line is whole as read. A caption describes ("a man points at the chart"), which
    # answers "who" without a name. ("Where" is often answered without a name: "under the oak tree".)
    if value_kind(asked) == "person" and r.kind != "caption" and not (
            r.kind in ("speech", "subtitle") and _cut_short(r.text)) and not can_answer_kind(
            "person", r.text.split(maxsplit=1)[-1]):
        return None
    row = f"{r.context} {r.text}"
    whole = coverage(subject, row)
    if not names_the_codes(subject, row) or (r.kind != "speech" and not names_the_names(question, row)):
        return None
    # A labelled fact answers for its label only: "What is the minimum team size?" is not "Max team size: 3".
    labelled = label_and_value(r.text)
    if labelled and qualified_otherwise(asked, labelled[0], set(keys(row))):
        return None
    # The context (title, header) completes a row's words but never supports it alone: a row that states none of
    # the question's subject is another row of the same table.
    own = coverage(subject, r.text) > 0
    dense = float(hit.dense if hit.dense is not None else 0.0)
    # Meaning and an answer of the right kind, with no word of the question: still one of its words needs a
    # stand-in in the text ("rocket" for "launch"); "cafeteria" finds none in "The menu session starts at 6".
    kind_only = wanted is not None and (words is None or max(words.best(asked_words(question) or [""],
                                                                        soft_words(r.text)) or [0.0]) >= WORD_MATCH)
    if (dense >= SURE_DENSE or (dense >= MID_DENSE and (own or kind_only))
            or (own and dense >= MIN_DENSE and whole >= HALF) or (own and dense >= LOW_DENSE and whole >= 1.0)):
        return dense + COVERAGE_WEIGHT * whole, whole
    soft = soft_support(question, r, dense, words) if words is not None else None
    return None if soft is None else (dense + COVERAGE_WEIGHT * soft, soft)


def names_the_codes(subject: set[str], text: str) -> bool:
    """False when the question names codes or numbers ("gate D9", "lab 5") and the evidence holds none of them:
    it is about another row, gate or room, however close its meaning. Ordinals are no codes: "the second floor"
    is said as "second floor", "Phase 2" or "2nd floor", and a recogniser may split it from its sentence."""
    codes = {k for k in subject if is_code(k) and not re.fullmatch(r"\d+(?:st|nd|rd|th)", k)}
    return not codes or bool(codes & set(keys(text)))


def names_the_names(question: str, text: str) -> bool:
    """False when the question names something by a capitalised word past its first ("the Marketing team", "the
    school in Oakdale") and the evidence holds none of them: like a code, a name picks the row. Only for text read
    or subtitled as written; a recogniser misspells names ("Alescope"), so speech is not held to it."""
    names = {w.lower() for w in question_stem(question).split()[1:] if w[:1].isupper()} - STOP - {"i"}
    names = {n for w in names for n in tokens(w)}
    if not names:
        return True
    written, squashed = set(keys(text)), squash(text)
    return any(stem(n) in written or n in squashed for n in names)


def _credit(similarity: float) -> float:
    """A word's share of the soft match: 0 up to an unrelated pair's cosine, 1 from a stand-in's."""
    return float(np.clip((similarity - WORD_UNRELATED) / (WORD_STANDS_IN - WORD_UNRELATED), 0.0, 1.0))


def soft_support(question: str, r: EvidenceRecord, dense: float, words: WordMatcher) -> float | None:
    """The soft coverage of the question's subject by `r` when it supports an answer, else None.

    The evidence's own text must hold one of the question's codes exactly ("Q1" of "the first quarter's"): a
    table row or line named by the question. The other words are then credited by their most similar evidence
    word, the header's included ("town" meets "City"); none may be unrelated to all of it, and the dense cosine
    plus the soft coverage must clear SOFT_SUPPORT. Without such an anchor single-word cosines cannot tell a
    stand-in ("due"/"deadline" .48) from a neighbour ("goalkeeper"/"striker" .63, "hotel"/"room" .55), and an
    absent fact would be answered."""
    asked = asked_words(question)
    anchors = [w for w in asked if is_code(w)]
    if not anchors or not any(w in set(soft_words(r.text)) for w in anchors) or len(asked) < 2:
        return None
    best = words.best(asked, soft_words(f"{r.context} {r.text}"))
    if min(best) < WORD_UNRELATED:
        return None
    soft = sum(_credit(b) for b in best) / len(best)
    return soft if dense + soft >= SOFT_SUPPORT else None


def label_and_value(text: str) -> tuple[str, str] | None:
    """("Office hours", "Tuesday") of a bullet or sign that states one fact under a label; None for other text."""
    m = _LABELLED.match(text.strip())
    if m is None:
        return None
    label, coded = m.group(1).strip(" .-"), m.group(3)
    # Without a colon, "The lab door PIN is 4010" is a sentence, not a label: a label is a noun phrase.
    if not 0 < len(label.split()) <= LABEL_WORDS or (coded and any(w in STOP for w in tokens(label))):
        return None
    return label, (m.group(2) or coded).strip()


def qualified_otherwise(question: str, label: str, row: set[str]) -> bool:
    """True when a word of a fact's label stands in the question after a content word the row (keys) lacks: the
    question's noun phrase is another one ("deputy mayor" beside "Mayor: ...", "minimum team size" beside "Max
    team size: 3"). English puts modifiers first; the word after a label word is often the question's verb."""
    label_keys = set(keys(label))
    words = [None if w in STOP else k for w, k in zip(normalised_words(question), keys(question))]
    return any(k in label_keys and i > 0 and words[i - 1] is not None and words[i - 1] not in row
               and words[i - 1] not in label_keys for i, k in enumerate(words))


def supporting(question: str, hits: Sequence[EvidenceHit], words: WordMatcher | None = None,
               judge=None) -> list[EvidenceHit]:
    """The hits that answer the question, best first (at most MAX_QUOTES, all near the best); [] for none.

    A caption is written by a model: it never stands alone as the support for a number, code or name. With a
    cross-encoder (`judge`, pipeline/models/reranker.py), a hit the rules accept is still dropped when the
    cross-encoder, reading question and quote together, finds it unrelated (see UNRELATED_LOGIT).
    """
    scored = [(j, h) for h in hits if (j := judged(question, h, words)) is not None]
    if judge is not None:
        # Table rows are left to the rules: they are named by their codes, and MS MARCO's cross-encoder, trained
        # on prose, scores "Q3 | 423 | Atlanta" under a header as unrelated to "How many were sold in the third
        # quarter?".
        prose = [i for i, (_, h) in enumerate(scored) if not h.record.meta.get("table")]
        logits = judge.score(question, [judge_passage(scored[i][1].record) for i in prose])
        unrelated = {i for i, logit in zip(prose, logits) if logit < UNRELATED_LOGIT}
        scored = [jh for i, jh in enumerate(scored) if i not in unrelated]
    scored.sort(key=lambda jh: (-jh[0][0], jh[1].record.video_id, jh[1].record.t0))
    if not scored:
        return []
    (best, best_whole), _ = scored[0]
    # When the best names all of the question's subject, its siblings that name part of it (the other rows of one
    # table: "Q2 | 3.8M" beside "Q3 | 4.2M") are not answers, however close their meaning.
    chosen = [h for (s, whole), h in scored if s >= best - NEAR_BEST and whole >= best_whole][:MAX_QUOTES]
    if all(h.record.kind == "caption" for h in chosen):
        chosen = [h for h in chosen if not states_facts(h.record.text)]
    return chosen


def judge_passage(r: EvidenceRecord) -> str:
    """A quote as the cross-encoder reads it: its context (the slide title) before its text, with the words OCR
    glued split apart ("Thevault codeis 2-3-8-3" scores as unrelated to "What is the vault code?")."""
    return unglued(f"{r.context.strip()}. {r.text}" if r.context.strip() else r.text)


def _cut_short(text: str) -> bool:
    """A speech segment or cue that stops mid-sentence ("My name is Dr.", "We will come back to it in a later")."""
    return not re.search(r"[.!?][\"”’')]?$", text.strip()) or bool(re.search(r"\b(?:[DdMm]rs?|Ms|Prof|St)\.$", text))


def whole_sentences(bank, records: Sequence[EvidenceRecord], scores: Sequence[float],
                    ) -> tuple[list[EvidenceRecord], list[float]]:
    """`records` with the neighbouring segments that finish their sentences: speech recognisers and subtitle
    files split sentences ("My name is Dr." | "Laura Turner."), and half a sentence can drop the fact asked for."""
    out: list[EvidenceRecord] = []
    out_scores: list[float] = []
    for r, score in zip(records, scores):
        group = [r]
        if r.kind in ("speech", "subtitle") and r.evidence_id >= 0:
            near = bank.evidence(r.video_id, kinds=[r.kind], time_range=(r.t0 - CONTINUE_GAP, r.t1 + CONTINUE_GAP))
            before = [e for e in near if e.t1 <= r.t0 + 1e-6 and e.evidence_id != r.evidence_id]
            after = [e for e in near if e.t0 >= r.t1 - 1e-6 and e.evidence_id != r.evidence_id]
            if before and r.text[:1].islower() and _cut_short(before[-1].text):
                group.insert(0, before[-1])
            if after and _cut_short(r.text):
                group.append(after[0])
        for e in group:
            if all(e.evidence_id != o.evidence_id for o in out):
                out.append(e)
                out_scores.append(score)
    return out, out_scores


def states_facts(text: str) -> bool:
    """True when a text holds a number, a code or a name (a capitalised word past its first)."""
    words = text.split()
    return any(is_code(w) for w in tokens(text)) or any(w[:1].isupper() for w in words[1:])


def quoted(records: Sequence[EvidenceRecord]) -> list[QuotedEvidence]:
    """The quotes of `records`; a table row keeps its header row beside it (the last part of its context, which
    the OCR lane writes as "Slide title. Header | row")."""
    return [QuotedEvidence(r.kind, r.video_id, r.t0, r.t1, r.text,
                           re.split(r"\n|\. ", r.context.strip())[-1].strip() if r.meta.get("table") else "")
            for r in records]


def quote_lines(quotes: Sequence[QuotedEvidence], multi_video: bool) -> str:
    """One line per quote: `Said [00:12:03–00:12:09]: "…"`, `On screen in v2 [..]: "Q3 | 4.2M" (Quarter | Cost)`;
    the same text of one kind and video seen again is one line listing its times."""
    groups: dict[tuple[str, str, str], list[QuotedEvidence]] = {}
    for q in quotes:
        groups.setdefault((q.kind, q.video, q.text), []).append(q)
    lines = []
    for (kind, video, text), same in groups.items():
        spans = ", ".join(format_span(q.t0, q.t1) for q in sorted(same, key=lambda q: q.t0)[:3])
        header = f" ({same[0].context})" if same[0].context else ""
        lines.append(f"{KIND_LABELS.get(kind, kind)}{' in ' + video if multi_video else ''} {spans}: \"{text}\"{header}")
    return "\n".join(lines)
