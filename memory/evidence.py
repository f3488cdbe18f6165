"""The evidence timeline: speech segments, subtitle cues, on-screen rows and captions with their times, searched
by meaning (exact cosine over their vectors) and by words (SQLite FTS5 bm25), the two lists fused by rank.

RecordStore.commit_clips writes the rows (tables `evidence`, `evidence_vec`, `evidence_fts`, see store.SCHEMA)
with their clip; this module only reads them, inside the caller's snapshot.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3

import numpy as np

from longwatch.memory.records import EVIDENCE_KINDS, BankInputError, EvidenceHit, EvidenceRecord
from longwatch.memory.recordstore import RecordStore

RRF_K = 60  # reciprocal rank fusion: score = sum over lists of 1 / (RRF_K + rank)
MAX_QUERY_WORDS = 64  # a pasted paragraph is still one bounded FTS query
# A query word: letters and digits, kept together across "." ":" "," between them ("4.2M", "9:30", "1,200").
_WORD = re.compile(r"[^\W_]+(?:[.:,][^\W_]+)*")
_CHUNK = 500  # ids per `IN (...)` query, under SQLite's bound-parameter limit

_RECORD_SQL = ("SELECT e.id, v.video_id, c.clip_index, e.kind, e.t0, e.t1, e.text, e.context, e.meta "
               "FROM evidence e JOIN videos v ON v.vid = e.vid JOIN clips c ON c.id = e.clip_id")


def fts_query(text: str) -> str | None:
    """User text as an FTS5 query: each word (see _WORD) one quoted phrase, the phrases OR'ed; None without words.

    Only letters, digits and the separators inside a number reach FTS5, each word quoted, so `"`, `*`, `NEAR`,
    `OR`, `-`, `(`, `:` never act as syntax. A quoted word is split by the same tokenizer as the indexed text,
    so "4.2M" or "9:30" match as the phrase of their parts, in order.
    """
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))[:MAX_QUERY_WORDS]
    return " OR ".join(f'"{w}"' for w in words) or None


def _record(row) -> EvidenceRecord:
    eid, video_id, clip_index, kind, t0, t1, text, context, meta = row
    return EvidenceRecord(eid, video_id, clip_index, kind, t0, t1, text, context, json.loads(meta))


def _kinds(kinds) -> list[str] | None:
    if kinds is None:
        return None
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    unknown = [k for k in kinds if k not in EVIDENCE_KINDS]
    if unknown:
        raise BankInputError(f"evidence kinds {unknown} are unknown; use some of {EVIDENCE_KINDS}")
    return kinds


def _time_range(time_range) -> tuple[float, float] | None:
    if time_range is None:
        return None
    try:
        t0, t1 = (float(t) for t in time_range)
    except (TypeError, ValueError):
        raise BankInputError(f"time_range {time_range!r} must be (t0, t1) in seconds") from None
    if not (t0 <= t1 and not math.isnan(t0 + t1)):
        raise BankInputError(f"time_range {time_range!r} must be (t0, t1) with t0 <= t1, in seconds")
    return t0, t1


class EvidenceVectors:
    """Every evidence vector of the bank in one float32 matrix, with each row's id, video, kind and times beside it.

    Not a FAISS space (VectorIndexes): evidence searches are nearly always scoped (a video, some kinds, a time
    range) and report the exact cosine of every hit, lexical-only hits included. A boolean mask over these
    columns plus one matrix product does both exactly, in milliseconds at 50k rows, and a hit's row is found by
    binary search on its id. Kept as of the caller's snapshot: rows with a higher id are appended (ids only
    grow), a delete anywhere (the bank's delete count) reloads it. Loaded on the first evidence search, not at open.
    """

    def __init__(self):
        self.deletes = -1
        self.n = 0
        self._columns(0, 0)

    def _columns(self, capacity: int, dim: int) -> None:
        self.ids = np.zeros(capacity, np.int64)
        self.vids = np.zeros(capacity, np.int64)
        self.kinds = np.zeros(capacity, np.int8)
        self.t0 = np.zeros(capacity, np.float64)
        self.t1 = np.zeros(capacity, np.float64)
        self.vecs = np.zeros((capacity, dim), np.float32)

    def sync(self, db: sqlite3.Connection, deletes: int, dim: int) -> None:
        """Catch up with the snapshot `db` is in."""
        if deletes != self.deletes or dim != self.vecs.shape[1]:
            self.deletes, self.n = deletes, 0
            self._columns(0, dim)
        after = int(self.ids[self.n - 1]) if self.n else 0
        cur = db.execute("SELECT e.id, e.vid, e.kind, e.t0, e.t1, x.vec FROM evidence e JOIN evidence_vec x "
                         "ON x.id = e.id WHERE e.id > ? ORDER BY e.id", (after,))
        while rows := cur.fetchmany(20_000):
            self._append(rows, dim)

    def _append(self, rows: list, dim: int) -> None:
        n, m = self.n, len(rows)
        if n + m > len(self.ids):  # grow by doubling: a live writer's many small batches stay linear overall
            old = (self.ids, self.vids, self.kinds, self.t0, self.t1, self.vecs)
            self._columns(max(2 * len(self.ids), n + m, 1024), dim)
            for new, col in zip((self.ids, self.vids, self.kinds, self.t0, self.t1, self.vecs), old):
                new[:n] = col[:n]
        ids, vids, kinds, t0, t1, blobs = zip(*rows)
        self.ids[n:n + m], self.vids[n:n + m], self.t0[n:n + m], self.t1[n:n + m] = ids, vids, t0, t1
        self.kinds[n:n + m] = [EVIDENCE_KINDS.index(k) for k in kinds]
        self.vecs[n:n + m] = np.frombuffer(b"".join(blobs), np.float32).reshape(m, dim)
        self.n = n + m

    def scope(self, vids: list[int] | None, kinds: list[str] | None,
              time_range: tuple[float, float] | None) -> np.ndarray:
        """Row positions of the evidence in those videos, of those kinds, overlapping time_range."""
        n, mask = self.n, np.ones(self.n, bool)
        if vids is not None:
            mask &= np.isin(self.vids[:n], vids)
        if kinds is not None:
            mask &= np.isin(self.kinds[:n], [EVIDENCE_KINDS.index(k) for k in kinds])
        if time_range is not None:
            mask &= (self.t1[:n] >= time_range[0]) & (self.t0[:n] <= time_range[1])
        return np.flatnonzero(mask)

    def top(self, q: np.ndarray, rows: np.ndarray, k: int) -> list[int]:
        """Ids of the k rows (of `rows`) with the highest inner product with q, best first."""
        if len(rows) == self.n:
            scores = self.vecs[:self.n] @ q  # the whole bank: no gathered copy of the matrix
        else:
            scores = self.vecs[rows] @ q
        best = np.argpartition(-scores, k - 1)[:k] if len(scores) > k else np.arange(len(scores))
        best = best[np.lexsort((self.ids[rows[best]], -scores[best]))]
        return [int(i) for i in self.ids[rows[best]]]

    def cosines(self, q: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Exact inner product of q with the vectors of those ids held here."""
        pos = np.searchsorted(self.ids[:self.n], ids)
        out = {}
        for i, p in zip(ids, pos):
            if p < self.n and self.ids[p] == i:
                out[i] = float(self.vecs[p] @ q)
        return out


class EvidenceTimeline:
    """Evidence reads of one bank: hybrid search, a video's timeline, counts. The caller holds the snapshot."""

    def __init__(self, records: RecordStore):
        self.records = records
        self.vectors = EvidenceVectors()
        self._tables = False

    def _exists(self) -> bool:
        """False for a bank written before evidence existed that no writer has opened since (a reader sees none)."""
        if not self._tables:
            self._tables = self.records.db.execute(
                "SELECT 1 FROM sqlite_master WHERE name='evidence_vec'").fetchone() is not None
        return self._tables

    def _vids(self, videos) -> list[int] | None:
        if videos is None:
            return None
        return [self.records.vid(v) for v in ([videos] if isinstance(videos, str) else videos)]

    def search(self, vec, text: str, k: int, videos, kinds, time_range) -> list[EvidenceHit]:
        """Top-k evidence in scope: dense top-k and FTS5 bm25 top-k fused by reciprocal rank, best first."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise BankInputError(f"k must be a positive integer, got {k!r}")
        if text is not None and not isinstance(text, str):
            raise BankInputError(f"query text must be a str, got {type(text).__name__}")
        vids, kinds, time_range = self._vids(videos), _kinds(kinds), _time_range(time_range)
        dim = self.records.evidence_dim() if self._exists() else None
        q = self._query(vec, dim)
        if dim is None:
            return []
        self.vectors.sync(self.records.db, self.records.deletes(), dim)
        rows = self.vectors.scope(vids, kinds, time_range)
        if not len(rows):
            return []
        dense = self.vectors.top(q, rows, int(k))
        lexical = self._lexical(fts_query(text or ""), vids, kinds, time_range, int(k))
        fused: dict[int, float] = {}
        for ranked in (dense, lexical):
            for rank, eid in enumerate(ranked, 1):
                fused[eid] = fused.get(eid, 0.0) + 1.0 / (RRF_K + rank)
        cosines = self.vectors.cosines(q, list(fused))
        best = sorted((i for i in fused if i in cosines), key=lambda i: (-fused[i], -cosines[i], i))[:int(k)]
        found = self._records(best)
        lexical_rank = {eid: rank for rank, eid in enumerate(lexical, 1)}
        return [EvidenceHit(found[i], fused[i], cosines[i], lexical_rank.get(i)) for i in best if i in found]

    def _query(self, vec, dim: int | None) -> np.ndarray:
        """The query as a unit float32 [D], so inner products are cosines."""
        try:
            q = np.asarray(vec, dtype=np.float32).reshape(-1) if vec is not None else None
        except (TypeError, ValueError) as e:
            raise BankInputError(f"query vector is not numeric ({e})") from e
        if q is None or q.size == 0 or (dim is not None and q.size != dim):
            raise BankInputError(f"query vector has {0 if q is None else q.size} values; this bank's evidence "
                                 f"vectors are {dim}-d. Embed the question with the ingest's text embedder.")
        norm = float(np.linalg.norm(q))
        if not math.isfinite(norm) or norm == 0:
            raise BankInputError("query vector is zero, NaN or inf; cannot rank evidence by cosine")
        return q / norm

    def _lexical(self, match: str | None, vids, kinds, time_range, k: int) -> list[int]:
        """Evidence ids in scope matching any query word, best bm25 first (at most k)."""
        if match is None:
            return []
        sql = ("SELECT e.id FROM evidence_fts JOIN evidence e ON e.id = evidence_fts.rowid "
               "WHERE evidence_fts MATCH ?")
        sql, args = self._where(sql, [match], vids, kinds, time_range)
        return [i for (i,) in self.records.db.execute(f"{sql} ORDER BY bm25(evidence_fts) LIMIT ?", [*args, k])]

    @staticmethod
    def _where(sql: str, args: list, vids, kinds, time_range) -> tuple[str, list]:
        if vids is not None:
            sql += f" AND e.vid IN ({','.join('?' * len(vids))})"
            args += vids
        if kinds is not None:
            sql += f" AND e.kind IN ({','.join('?' * len(kinds))})"
            args += kinds
        if time_range is not None:
            sql += " AND e.t1 >= ? AND e.t0 <= ?"
            args += list(time_range)
        return sql, args

    def _records(self, ids: list[int]) -> dict[int, EvidenceRecord]:
        out = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            for row in self.records.db.execute(f"{_RECORD_SQL} WHERE e.id IN ({','.join('?' * len(chunk))})",
                                               chunk):
                out[row[0]] = _record(row)
        return out

    def timeline(self, video_id: str, kinds, time_range) -> list[EvidenceRecord]:
        """All of a video's evidence (optionally some kinds, overlapping a time range) by t0, then kind, then id."""
        vid, kinds, time_range = self.records.vid(video_id), _kinds(kinds), _time_range(time_range)
        if not self._exists():
            return []
        sql, args = self._where(f"{_RECORD_SQL} WHERE e.vid = ?", [vid], None, kinds, time_range)
        return [_record(row) for row in self.records.db.execute(f"{sql} ORDER BY e.t0, e.kind, e.id", args)]

    def counts(self, video_id: str | None = None) -> dict[str, int]:
        """Evidence per kind (every kind, zeros included) of one video, or of the whole bank."""
        out = dict.fromkeys(EVIDENCE_KINDS, 0)
        if video_id is not None:
            vid = self.records.vid(video_id)
        if not self._exists():
            return out
        sql, args = "SELECT kind, count(*) FROM evidence", []
        if video_id is not None:
            sql, args = sql + " WHERE vid = ?", [vid]
        out.update(dict(self.records.db.execute(f"{sql} GROUP BY kind", args).fetchall()))
        return out
