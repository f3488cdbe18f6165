"""The pure rules behind text answers: word normalisation, grounding of generated sentences, timeline questions,
and the OCR lines of banks ingested before the evidence timeline.

Users rely on these to find facts asked in other words and never to be shown a sentence that changes a fact.
"""

from __future__ import annotations

import pytest

from longwatch.memory.records import ClipRecord, EvidenceRecord
from longwatch.pipeline.evidence_qa import fts_query, quote_lines, quoted
from longwatch.pipeline.grounding import grounded
from longwatch.pipeline.textqa import (answer_kind, asks_for_any_text, can_answer_kind, collect_lines, content_words,
                                       coverage, keys, tokens)
from longwatch.pipeline.timeline import appearances, parse


def clips(*texts, seconds=4.0, spans=None):
    out = []
    for i, text in enumerate(texts):
        meta = {} if spans is None or spans[i] is None else {"ocr_spans": spans[i]}
        out.append(ClipRecord("v", i, i * seconds, (i + 1) * seconds, ocr_text=text, meta=meta))
    return out


def test_collect_lines_keeps_each_appearance_and_merges_adjacent_clips():
    records = clips("HELLO | EXIT 3", "EXIT 3", "", "hello")
    assert collect_lines("v", records) == [(0.0, 4.0, "HELLO"), (0.0, 8.0, "EXIT 3"), (12.0, 16.0, "hello")]


def test_collect_lines_prefers_the_lanes_precise_spans():
    records = clips("THANKS", "THANKS", spans=[[[3.0, 4.0, "THANKS"]], [[4.0, 6.0, "THANKS"]]])
    assert collect_lines("v", records) == [(3.0, 6.0, "THANKS")]


@pytest.mark.parametrize("asked, evidence", [
    ("How much did the third quarter cost?", "Q3 | 4.2M  (Quarter | Cost)"),
    ("What was the quarter 2 revenue?", "Q2 revenue"),
    ("Who was in first place?", "1st place: Ana"),
    ("How many people attended, twenty five?", "25 people attended"),
    ("What was moved in Sept?", "The server was moving in September"),
    ("Which costs are rising?", "Travel cost rises"),
    ("How much is 4.2 million?", "4.2M"),
])
def test_words_written_differently_meet(asked, evidence):
    assert coverage(content_words(asked), evidence) == 1.0, (keys(asked), keys(evidence))


def test_a_second_of_time_is_not_an_ordinal():
    assert "2nd" not in keys("wait 30 seconds") and "2nd" in keys("the second slide")


def test_fts_query_adds_the_normalised_codes():
    assert fts_query("How much did the third quarter cost?") == "third quarter cost q3"
    assert fts_query("What is the flight QX2207?\nOptions:\n(A) x") == "flight qx2207"


@pytest.mark.parametrize("question, expect", [
    ("What text appears on the screen?", True), ("What is written on the slide?", True),
    ("What does the end screen say?", True), ("What text is shown at the start?", True),
    ("What does the sign say about the budget?", False), ("What is the vault code?", False)])
def test_generic_text_questions(question, expect):
    assert asks_for_any_text(question) is expect


def test_answer_kinds():
    assert answer_kind("How much did it cost?") == "number" and answer_kind("When does it open?") == "when"
    assert answer_kind("Who is the speaker?") is None
    assert answer_kind("What is the meeting room number?") == "number"  # "number" asks for one, it is no topic
    assert tokens("Exam length:60 minutes") == ["exam", "length", "60", "minutes"]  # OCR dropped the space
    assert tokens("Q3 | 4.2M at 9:30, v2.1") == ["q3", "4.2m", "at", "9:30", "v2.1"]
    # The number a question names is not its answer: "platform 6" does not say what the repairs cost.
    assert not can_answer_kind("number", "Platform 6 closed for repairs", given=["platform", "6", "cost"])
    assert can_answer_kind("number", "Platform 6 repairs cost 40,000", given=["platform", "6", "cost"])


def test_grounded_keeps_faithful_rephrasing_only():
    ev = ["The vault code is 6-4-3-8"]
    q = "What is the vault code?"
    assert grounded("The vault code is 6-4-3-8. It opens the old door.", ev, q) == "The vault code is 6-4-3-8."
    assert grounded("The vault code is 6438.", ev, q) == "The vault code is 6438."
    assert grounded("The vault code is 1234.", ev, q) == ""
    assert grounded("The vault code is 6-4-3.", ev, q) == ""
    assert grounded("The vault code is a code of the National Institute of Crypto-Laws.", ev, q) == ""
    assert grounded("The vault code is 6-4-3-8 and", ev, q) == ""  # cut off by the token limit
    assert grounded("", ev, q) == ""
    mcq = "What is the password?\nOptions:\n(A) TULIP\n(B) COBALT\nAnswer with the option's letter."
    cobalt = ["THE PASSWORD IS COBALT"]
    assert grounded("The password is TULIP.", cobalt, mcq) == ""  # an option is not evidence
    assert grounded("The password is COBALT.", cobalt, mcq) == "The password is COBALT."


@pytest.mark.parametrize("reply, shown", [
    ("The password is tangerine.", False),  # drops the 42 of "tangerine 42": a changed fact
    ("The password is tangerine 42.", True),
    ("The password is \"tangerine 42\".", True),
    ("The password is Tangerine 42 from Lisbon.", False),  # a name the quote never states
])
def test_a_sentence_must_keep_the_whole_code_of_its_quote(reply, shown):
    assert (grounded(reply, ["The secret password is tangerine 42"], "What is the password?") != "") is shown


@pytest.mark.parametrize("reply, shown", [
    ("The chef's secret spice is anise.", False),  # "star anise" is another spice: the stated value is cut
    ("The chef's secret spice is star anise.", True),
    ("The secret spice is star anise.", True),  # the question's words may go; the value may not
])
def test_a_sentence_must_keep_the_whole_value_its_quote_states(reply, shown):
    """V-NIAH on real footage (seed 8): SmolLM2 wrote "anise" for the needle's "star anise"."""
    quote = ["The chef's secret spice is star anise"]
    assert (grounded(reply, quote, "What is the chef's secret spice?") != "") is shown


def test_a_sentence_may_not_add_to_the_value_its_quote_states():
    question = "What is the chef's secret spice?"
    assert grounded("The chef's secret spice is star anise.", ["The chef's secret spice is anise"], question) == ""
    assert grounded("The secret spice is anise.", ["The chef's secret spice is anise"], question) != ""


def test_grounding_reads_numbers_names_and_glued_ocr_across_spellings():
    q = "How much did the third quarter cost?"
    assert grounded("The third quarter cost 4.2 million.", ["Q3 | 4.2M\nQuarter | Cost"], q)
    assert not grounded("The third quarter cost 4.3 million.", ["Q3 | 4.2M\nQuarter | Cost"], q)
    keynote = ["The keynote speaker will be Doctor Amara Okafor from the University of Ghana."]
    assert grounded("The keynote is by Amara Okafor.", keynote, "Who is giving the keynote?")
    assert not grounded("The keynote is by Amara Mensah.", keynote, "Who is giving the keynote?")
    assert grounded("The keynote is by Amara.", keynote, "Who is giving the keynote?") == ""  # half a name
    contact = ["·Lab contact: Dr. Moreau"]
    assert grounded("The lab contact is Dr. Moreau.", contact, "Who is the lab contact?")
    assert not grounded("The lab contact is Dr.", contact, "Who is the lab contact?")
    room = "Which room did the meeting move to?"
    assert grounded("The meeting moved to room 851.", ["The meetingmoved toroom 851"], room)
    assert not grounded("Flight QX22 is boarding.", ["Flight QX2207 now boarding"], "What flight is boarding?")


def test_summary_grounding_checks_facts_only():
    quotes = ["Budget overview", "We will hire five engineers before the summer."]
    text = "The talk covers the budget and hiring. It says 5 engineers join Acme."
    assert grounded(text, quotes, "Summarize.", first_only=False, facts_only=True) == \
        "The talk covers the budget and hiring."


@pytest.mark.parametrize("question, kind, subjects", [
    ("When was the vault code first shown?", "first", ("vault code",)),
    ("When did the launch window come up for the first time?", "first", ("launch window",)),
    ("When was the keynote speaker last mentioned?", "last", ("keynote speaker",)),
    ("How many times was the budget mentioned?", "count", ("budget",)),
    ("What came after the roadmap?", "after", ("roadmap",)),
    ("What was shown before the Quarterly Costs slide?", "before", ("Quarterly Costs slide",)),
    ("Which came first, the roadmap or the quarterly costs?", "which_first", ("roadmap", "quarterly costs")),
    ("Was the roadmap shown before the offices?", "which_first", ("roadmap", "offices")),
    ("In what order were the roadmap, the offices and the costs shown?", "order", ("roadmap", "offices", "costs")),
    ("Which came first in the lecture, Soil Mechanics or Materials Testing?", "which_first",
     ("Soil Mechanics", "Materials Testing")),
    ("How many times did the speaker mention the pineapple?", "count", ("pineapple",)),
    ("When did she first talk about soil?", "first", ("soil",)),
    ("How often was the pineapple mentioned in the video?", "count", ("pineapple",)),
])
def test_timeline_questions_are_recognised(question, kind, subjects):
    asked = parse(question)
    assert asked is not None and asked.kind == kind and asked.subjects == subjects


def test_timeline_questions_know_whether_they_ask_for_the_screen_or_for_speech():
    assert parse("When was the cost table first shown?").seen == "screen"
    assert parse("When did she first talk about soil?").seen == "speech"
    assert parse("How many times was the budget mentioned?").seen is None


@pytest.mark.parametrize("question", ["What is the vault code?", "When does the launch window open?",
                                      "How many offices are in Lisbon?", "Summarize the video."])
def test_other_questions_are_not_timeline_questions(question):
    assert parse(question) is None


def ev(i, kind, t0, t1, text="x"):
    return EvidenceRecord(i, "v", 0, kind, t0, t1, text, "", {})


def test_appearances_merge_one_showing_but_count_separate_sentences():
    shown = [ev(1, "ocr", 0, 4), ev(2, "ocr", 4.5, 8), ev(3, "speech", 6, 9), ev(4, "speech", 9, 12),
             ev(5, "ocr", 30, 34)]
    assert [(a.t0, a.t1) for a in appearances(shown)] == [(0, 9), (9, 12), (30, 34)]


def test_quote_lines_read_one_line_per_quote_with_kind_time_and_header():
    records = [ev(1, "speech", 723, 729, "We meet at 9:30"), ev(2, "subtitle", 730, 731, "[music]"),
               EvidenceRecord(3, "w", 0, "ocr", 12, 16, "Q3 | 4.2M", "Costs. Quarter | Cost", {"table": True}),
               ev(4, "caption", 40, 44, "A man points at a chart"), ev(5, "speech", 800, 802, "We meet at 9:30")]
    assert quote_lines(quoted(records), multi_video=True).splitlines() == [
        'Said in v [00:12:03\u201300:12:09], [00:13:20\u201300:13:22]: "We meet at 9:30"',
        'Subtitle in v [00:12:10\u201300:12:11]: "[music]"',
        'On screen in w [00:00:12\u201300:00:16]: "Q3 | 4.2M" (Quarter | Cost)',
        'Caption in v [00:00:40\u201300:00:44]: "A man points at a chart"']


def test_a_caption_never_stands_alone_for_a_name_or_number():
    from longwatch.memory.records import EvidenceHit
    from longwatch.pipeline.evidence_qa import supporting

    def hit(i, kind, text, dense):
        return EvidenceHit(ev(i, kind, 10.0 * i, 10.0 * i + 4, text), 0.03, dense, 1)

    q = "Who is pointing at the chart?"
    assert supporting(q, [hit(1, "caption", "Doctor Okafor points at the chart", 0.8)]) == []
    assert [h.record.kind for h in supporting(q, [hit(1, "caption", "A man points at the chart", 0.8)])] == ["caption"]
    both = supporting(q, [hit(1, "caption", "Doctor Okafor points at the chart", 0.8),
                          hit(2, "speech", "Doctor Okafor will point at the chart now", 0.78)])
    assert {h.record.kind for h in both} == {"caption", "speech"}


def test_a_row_whose_header_alone_names_the_subject_does_not_answer():
    from longwatch.memory.records import EvidenceHit
    from longwatch.pipeline.evidence_qa import supporting

    other_row = EvidenceRecord(1, "v", 0, "ocr", 49, 52, "Q3 | 531 | Portland | 6.2M",
                               "Project Numbers. Quarter | Units | City | Cost", {"table": True})
    assert supporting("Which city is listed for Q1?", [EvidenceHit(other_row, 0.03, 0.45, 1)]) == []
    assert supporting("Which city is listed for Q3?", [EvidenceHit(other_row, 0.03, 0.45, 1)])
