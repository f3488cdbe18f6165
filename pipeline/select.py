"""Adaptive memory selection: which stored clips a question gets to see before relevance re-scoring.

FAISS hits, their temporal neighbours, and storyline anchors spread evenly over each video's timeline.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009); the bank's evidence search uses the same

# Questions about the whole video need the storyline, not the few clips nearest to the question's words.
_WHOLE_VIDEO = re.compile(
    r"\b(summari[sz]e|summary|overview|overall|storyline|plot|gist|recap|whole|entire|throughout|"
    r"from (the )?(start|beginning) to (the )?end|main (events|points|topics|parts)|what happens|"
    r"(what|which) (topics|subjects)|topics (are |were )?(covered|discussed)|"
    r"what is (this|the) video about|how does (it|the video) (end|progress|develop)|chronolog|timeline|"
    r"sequence of events|in order)\b",
    re.IGNORECASE,
)


def is_whole_video_question(question: str) -> bool:
    """True for questions whose answer spans the timeline ("summarize the video", "what happens overall?")."""
    return bool(_WHOLE_VIDEO.search(question))


@dataclass(frozen=True)
class Candidate:
    """A clip put forward for relevance scoring; `reasons` ⊆ {"hit", "neighbour", "anchor"}."""

    video: str
    clip_index: int
    reasons: frozenset[str]
    retrieval_score: float  # inner product with the question embedding; 0.0 when not retrieved


def rrf(orders: Sequence[Sequence[Hashable]], k: int = RRF_K) -> dict[Hashable, float]:
    """Reciprocal rank fusion of ranked lists (best first): key -> sum of 1 / (k + rank)."""
    fused: dict[Hashable, float] = {}
    for order in orders:
        for rank, key in enumerate(order, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return fused


def fuse_hits(*lists: Sequence[tuple[str, int, float]]) -> list[tuple[str, int, float]]:
    """Clip hits from several searches (clip vectors, evidence timeline) as one list, best first by RRF; each
    clip keeps the best score any search gave it."""
    fused = rrf([list(dict.fromkeys((v, c) for v, c, _ in hits)) for hits in lists])
    best: dict[tuple[str, int], float] = {}
    for hits in lists:
        for v, c, s in hits:
            best[(v, c)] = max(best.get((v, c), s), s)
    return [(v, c, best[(v, c)]) for v, c in sorted(fused, key=lambda key: (-fused[key], key))]


def anchor_positions(n_clips: int, n_anchors: int) -> list[int]:
    """Positions (into a video's ordered clip list) of `n_anchors` anchors at the centres of equal segments."""
    if n_clips <= 0 or n_anchors <= 0:
        return []
    a = min(n_anchors, n_clips)
    # The centre of segment i, but never before the segment's first whole clip (integer arithmetic).
    return [max(-(-i * n_clips // a), (2 * i + 1) * n_clips // (2 * a)) for i in range(a)]


def select_clips(hits: Sequence[tuple[str, int, float]], timelines: Mapping[str, Sequence[int]], *,
                 neighbours: int = 1, anchors: int = 4, max_candidates: int = 48) -> list[Candidate]:
    """Candidates for one question, ordered by (video, clip_index).

    Args:
        hits: (video, clip_index, score) from the vector search, best first.
        timelines: for every video in scope, its stored clip indices in ascending order (gaps allowed:
            neighbours are the adjacent *stored* clips, so a live stream's dropped window is skipped).
        neighbours: clips taken on each side of every hit (events straddle clip boundaries).
        anchors: storyline anchors per video, spread evenly over its clips.
        max_candidates: cap on the total; hits come first, then anchors, then neighbours, because
            relevance scoring costs one small-VLM pass per candidate.
    """
    if neighbours < 0 or anchors < 0 or max_candidates < 1:
        raise ValueError(f"need neighbours >= 0, anchors >= 0, max_candidates >= 1; got "
                         f"{neighbours}, {anchors}, {max_candidates}")
    position = {v: {c: p for p, c in enumerate(clips)} for v, clips in timelines.items()}
    reasons: dict[tuple[str, int], set[str]] = {}
    scores: dict[tuple[str, int], float] = {}
    order: list[tuple[str, int]] = []

    def put(key: tuple[str, int], why: str) -> None:
        if key not in reasons:
            if len(order) >= max_candidates:
                return
            reasons[key] = set()
            order.append(key)
        reasons[key].add(why)

    kept_hits = [(v, c, s) for v, c, s in hits if v in position and c in position[v]]
    for v, c, s in kept_hits:
        put((v, c), "hit")
        scores[(v, c)] = max(scores.get((v, c), s), s)
    for v in sorted(timelines):
        for p in anchor_positions(len(timelines[v]), anchors):
            put((v, timelines[v][p]), "anchor")
    for step in range(1, neighbours + 1):
        for v, c, _ in kept_hits:
            p = position[v][c]
            for q in (p - step, p + step):
                if 0 <= q < len(timelines[v]):
                    put((v, timelines[v][q]), "neighbour")

    return [Candidate(v, c, frozenset(reasons[(v, c)]), scores.get((v, c), 0.0)) for v, c in sorted(order)]
