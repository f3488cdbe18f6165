"""The evidence timeline in the bank: speech, subtitle, on-screen and caption evidence committed with its clip,
found by meaning and by exact words (codes, numbers), filtered, deleted with its video, read by other processes.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from longwatch.memory import BankInputError, ClipRecord, Evidence, MemoryBank
from longwatch.memory.store import DB

D = 16


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=D).astype(np.float32)
    return v / np.linalg.norm(v)


def clip(video: str, i: int, evidence: list[Evidence], seed: int = 0) -> tuple:
    """Clip i (4 s long) carrying `evidence`, each entry with its own random unit vector."""
    vectors = {"text": unit(10_000 + i), "evidence": np.stack([unit(seed + j) for j in range(len(evidence))])
               if evidence else np.zeros((0, D), np.float32)}
    return ClipRecord(video, i, 4.0 * i, 4.0 * i + 4, caption=f"clip {i}", evidence=evidence), vectors, None


LECTURE = [  # (clip, evidence) of a short lecture; the vectors are random, so only words can find a code
    (0, [Evidence("speech", 0.5, 3.0, "Welcome to the quarterly review", meta={"language": "en"}),
         Evidence("ocr", 1.0, 4.0, "Q3 | cost | 4.2M", context="Quarterly costs | quarter | cost | revenue",
                  meta={"table": True})]),
    (1, [Evidence("subtitle", 4.2, 6.0, "Flight QX2207 now boarding at gate 9"),
         Evidence("speech", 5.0, 7.5, "We meet at 9:30 in room 175")]),
    (2, [Evidence("caption", 8.0, 12.0, "A man points at a chart"),
         Evidence("ocr", 9.0, 11.0, "The password is tangerine 42")]),
]


@pytest.fixture
def bank(tmp_path):
    with MemoryBank(tmp_path / "bank") as bank:
        bank.add_video("lecture")
        bank.add_many([clip("lecture", i, ev, seed=100 * i) for i, ev in LECTURE])
        yield bank


def texts(found) -> list[str]:
    """The quoted texts of search hits or timeline records."""
    return [getattr(x, "record", x).text for x in found]


def test_evidence_is_committed_with_its_clip_and_read_in_time_order(bank):
    timeline = bank.evidence("lecture")
    assert [(e.t0, e.kind) for e in timeline] == [(0.5, "speech"), (1.0, "ocr"), (4.2, "subtitle"),
                                                 (5.0, "speech"), (8.0, "caption"), (9.0, "ocr")]
    table = timeline[1]
    assert (table.clip_index, table.text, table.context, table.meta) == (
        0, "Q3 | cost | 4.2M", "Quarterly costs | quarter | cost | revenue", {"table": True})
    assert bank.evidence_counts("lecture") == {"speech": 2, "subtitle": 1, "ocr": 2, "caption": 1}
    assert bank.stats()["evidence"] == {"speech": 2, "subtitle": 1, "ocr": 2, "caption": 1}
    assert all(c.evidence == [] for c in bank.clips("lecture"))  # cheap reads: evidence only on request
    assert texts(bank.evidence("lecture", kinds="speech", time_range=(4, 100))) == ["We meet at 9:30 in room 175"]


@pytest.mark.parametrize("query, expected", [
    ("What is the flight number? QX2207", "Flight QX2207 now boarding at gate 9"),
    ("How much was 4.2M", "Q3 | cost | 4.2M"),
    ("when: 9:30", "We meet at 9:30 in room 175"),
    ("tangerine 42?", "The password is tangerine 42"),
    ("room 175", "We meet at 9:30 in room 175"),
])
def test_codes_and_numbers_are_found_by_their_words_where_meaning_misses(bank, query, expected):
    caption = unit(200)  # the query's meaning is the caption's: meaning alone ranks the caption first
    assert bank.search_evidence(caption, "", k=1)[0].record.text == "A man points at a chart"
    found = {h.record.text: h for h in bank.search_evidence(caption, query, k=3)}
    assert found[expected].lexical_rank == 1 and found[expected].score >= 1 / 61
    hits = bank.search_evidence(unit(999), query, k=3)
    stored = dict(zip([e.text for _, ev in LECTURE for e in ev],
                      [unit(100 * i + j) for i, ev in LECTURE for j in range(len(ev))]))
    for h in hits:  # the cosine of every hit is exact, lexical-only hits included
        assert h.dense == pytest.approx(float(stored[h.record.text] @ unit(999)), abs=1e-5)


def test_meaning_alone_finds_evidence_and_the_fused_order_is_best_first(bank):
    hits = bank.search_evidence(unit(201), "", k=20)  # the vector of the password row, no words
    assert hits[0].record.text == "The password is tangerine 42" and hits[0].dense == pytest.approx(1.0, abs=1e-5)
    assert hits[0].lexical_rank is None and len(hits) == 6
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    both = bank.search_evidence(unit(201), "password", k=20)[0]  # ranked first by both lists: RRF 2/(60+1)
    assert both.record.text == "The password is tangerine 42" and both.score == pytest.approx(2 / 61)
    assert len(bank.search_evidence(unit(201), "", k=2)) == 2


def test_context_is_searched_but_not_quoted(bank):
    hit = [h for h in bank.search_evidence(unit(999), "revenue", k=3) if h.lexical_rank == 1][0]
    assert hit.record.text == "Q3 | cost | 4.2M" and "revenue" not in hit.record.text


@pytest.mark.parametrize("hostile", ['"', '"QX2207', "QX2207*", "NEAR(room 175)", "room OR", "-room",
                                     "text:room", "AND", "(", "^", "room NOT 175", "«Ω» 漢字 ‽", "*", "", "   ",
                                     "' ; DROP TABLE evidence; --", "x" * 5000, " ".join(["room"] * 500)])
def test_user_text_never_acts_as_query_syntax(bank, hostile):
    hits = bank.search_evidence(unit(999), hostile, k=5)
    assert len(hits) == 5  # dense always answers; the words never raise
    assert bank.evidence_counts("lecture")["speech"] == 2


@pytest.mark.parametrize("query", ["QX2207*", '"QX2207', "qx2207", "NEAR(QX2207", "-QX2207", "QX2207:"])
def test_operators_in_user_text_are_plain_characters(bank, query):
    hits = bank.search_evidence(unit(999), query, k=5)
    assert [h.record.text for h in hits if h.lexical_rank] == ["Flight QX2207 now boarding at gate 9"]


def test_kinds_videos_and_time_filter_both_lists(bank):
    bank.add_video("other")
    bank.add(*clip("other", 0, [Evidence("speech", 0.0, 2.0, "Flight QX2207 was cancelled")], seed=7))
    assert {h.record.video_id for h in bank.search_evidence(unit(1), "QX2207", k=10)} == {"lecture", "other"}
    only = bank.search_evidence(unit(1), "QX2207", k=10, videos=["other"])
    assert texts(only) == ["Flight QX2207 was cancelled"]
    subtitle = bank.search_evidence(unit(1), "QX2207", k=10, kinds=["subtitle"])
    assert texts(subtitle) == ["Flight QX2207 now boarding at gate 9"]
    late = bank.search_evidence(unit(1), "QX2207 password", k=10, videos="lecture", time_range=(8.5, 20))
    assert set(texts(late)) == {"A man points at a chart", "The password is tangerine 42"}
    assert late[0].record.text == "The password is tangerine 42"
    assert bank.search_evidence(unit(1), "QX2207", videos=[]) == []
    for bad in ({"kinds": ["audio"]}, {"time_range": (5, 1)}, {"videos": ["missing"]}, {"k": 0}):
        with pytest.raises(BankInputError):
            bank.search_evidence(unit(1), "QX2207", **bad)
    with pytest.raises(BankInputError, match="16-d"):
        bank.search_evidence(np.ones(8, np.float32), "QX2207")


def test_delete_removes_evidence_text_index_and_vectors(bank, tmp_path):
    bank.add_video("other")
    bank.add(*clip("other", 0, [Evidence("speech", 0.0, 2.0, "Flight QX2207 was cancelled")], seed=7))
    bank.search_evidence(unit(1), "QX2207")  # loads the vectors before the delete
    assert bank.delete("lecture") == 3
    assert texts(bank.search_evidence(unit(1), "QX2207 password", k=10)) == ["Flight QX2207 was cancelled"]
    db = sqlite3.connect(tmp_path / "bank" / DB)
    assert db.execute("SELECT count(*) FROM evidence_vec").fetchone()[0] == 1
    assert db.execute("SELECT rowid FROM evidence_fts WHERE evidence_fts MATCH 'password'").fetchall() == []
    db.execute("INSERT INTO evidence_fts(evidence_fts) VALUES ('integrity-check')")  # raises if index != rows
    db.close()
    bank.add_video("lecture")  # re-added under a new row id: none of the old evidence comes back
    assert bank.evidence("lecture") == [] and bank.evidence_counts("lecture")["ocr"] == 0


@pytest.mark.parametrize("evidence, vectors, message", [
    ([Evidence("audio", 0, 1, "x")], [unit(1)], "kind 'audio'"),
    ([Evidence("speech", 2, 1, "x")], [unit(1)], "t0 <= t1"),
    ([Evidence("speech", float("nan"), 1, "x")], [unit(1)], "t0 <= t1"),
    ([Evidence("speech", 0, 1, b"x")], [unit(1)], "text must be a str"),
    ([Evidence("speech", 0, 1, "x", context=None)], [unit(1)], "context must be a str"),
    ([Evidence("speech", 0, 1, "x", meta={"f": object()})], [unit(1)], "not JSON"),
    (["x"], [unit(1)], "expected an Evidence"),
    ([Evidence("speech", 0, 1, "x")], None, "no vectors"),
    ([Evidence("speech", 0, 1, "x")], [unit(1), unit(2)], "shape"),
    ([], [unit(1)], "shape"),
    ([Evidence("speech", 0, 1, "x")], [np.full(D, np.nan, np.float32)], "NaN"),
    ([Evidence("speech", 0, 1, "x")], [np.ones(8, np.float32) / 8 ** 0.5], "16-d"),
    ([Evidence("speech", 0, 1, "x")], [2 * unit(1)], "L2-normalised"),
])
def test_invalid_evidence_is_refused_with_nothing_written(bank, evidence, vectors, message):
    before = (bank.stats()["clips"], bank.stats()["evidence"])
    good = clip("lecture", 3, [Evidence("speech", 12, 13, "fine")], seed=5)
    vecs = {"text": unit(3)} if vectors is None else {"text": unit(3), "evidence": np.stack(vectors)}
    with pytest.raises(BankInputError, match=message):
        bank.add_many([good, (ClipRecord("lecture", 4, 16, 20, evidence=evidence), vecs, None)])
    assert (bank.stats()["clips"], bank.stats()["evidence"]) == before and bank.last_clip("lecture") == 2


def test_a_refused_commit_leaves_neither_clip_nor_evidence(bank):
    before = bank.stats()["evidence"]
    with pytest.raises(BankInputError, match="already in the bank"):  # refused inside the SQLite transaction
        bank.add_many([clip("lecture", 3, [Evidence("speech", 12, 13, "QX9999 new")], seed=5),
                       clip("lecture", 1, [Evidence("speech", 4, 5, "QX9999 again")], seed=6)])
    assert bank.stats()["evidence"] == before and bank.last_clip("lecture") == 2
    assert all(h.lexical_rank is None for h in bank.search_evidence(unit(1), "QX9999"))


def test_a_reader_sees_the_writers_new_evidence_on_its_next_query(bank, tmp_path):
    with MemoryBank(tmp_path / "bank", readonly=True) as reader:
        assert reader.evidence_counts("lecture")["speech"] == 2
        assert reader.search_evidence(unit(1), "QX2207")[0].record.kind == "subtitle"
        bank.add(*clip("lecture", 3, [Evidence("speech", 12.0, 14.0, "The code is ZK-48")], seed=5))
        hit = reader.search_evidence(unit(5), "ZK-48", k=1)[0]
        assert (hit.record.text, hit.record.clip_index, hit.lexical_rank) == ("The code is ZK-48", 3, 1)
        assert hit.dense == pytest.approx(1.0, abs=1e-5)
        bank.delete("lecture")
        assert reader.search_evidence(unit(5), "ZK-48") == [] and reader.stats()["evidence"]["speech"] == 0


def test_a_bank_from_before_evidence_is_read_empty_and_upgraded_by_its_writer(tmp_path):
    root = tmp_path / "bank"
    with MemoryBank(root) as bank:
        bank.add_video("old")
        bank.add(ClipRecord("old", 0, 0, 4, caption="old clip"), {"text": unit(1)})
    db = sqlite3.connect(root / DB)  # what main's schema wrote: no evidence tables at all
    db.executescript("DROP TRIGGER evidence_fts_add; DROP TRIGGER evidence_fts_drop; DROP TABLE evidence_fts; "
                     "DROP TABLE evidence_vec; DROP TABLE evidence;")
    db.close()
    with MemoryBank(root, readonly=True) as reader:
        assert reader.evidence("old") == [] and reader.search_evidence(unit(1), "anything") == []
        assert reader.evidence_counts("old")["speech"] == 0 and reader.stats()["evidence"]["ocr"] == 0
        assert [c.caption for c in reader.clips("old")] == ["old clip"]
        with MemoryBank(root) as writer:  # the writer's open adds the tables; the open reader then sees evidence
            writer.add(*clip("old", 1, [Evidence("subtitle", 4, 6, "Now with subtitles")], seed=3))
            assert texts(writer.search_evidence(unit(3), "subtitles")) == ["Now with subtitles"]
            assert texts(reader.search_evidence(unit(3), "subtitles")) == ["Now with subtitles"]
            assert texts(reader.evidence("old")) == ["Now with subtitles"]
