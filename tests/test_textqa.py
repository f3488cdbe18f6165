"""Answering from on-screen text lines: line collection, retrieval with the real MiniLM embedder, grounding.

The offline preset relies on these rules to quote what the video shows and to say so when it shows nothing.
"""

from __future__ import annotations

import pytest

from longwatch.memory.records import ClipRecord
from longwatch.pipeline.textqa import (LineIndex, TextLine, asks_for_any_text, collect_lines, grounded,
                                       quote)


def clips(*texts, seconds=4.0, spans=None):
    out = []
    for i, text in enumerate(texts):
        meta = {} if spans is None or spans[i] is None else {"ocr_spans": spans[i]}
        out.append(ClipRecord("v", i, i * seconds, (i + 1) * seconds, ocr_text=text, meta=meta))
    return out


def test_collect_lines_dedups_and_merges_adjacent_clips():
    records = clips("HELLO | EXIT 3", "EXIT 3", "", "hello")
    lines = {l.text: l.spans for l in collect_lines("v", records)}
    assert lines == {"HELLO": [(0.0, 4.0), (12.0, 16.0)], "EXIT 3": [(0.0, 8.0)]}


def test_collect_lines_prefers_the_lanes_precise_spans():
    records = clips("THANKS", "THANKS", spans=[[[3.0, 4.0, "THANKS"]], [[4.0, 6.0, "THANKS"]]])
    (line,) = collect_lines("v", records)
    assert line.spans == [(3.0, 6.0)] and line.label() == "[00:00:03\u201300:00:06]"


@pytest.mark.parametrize("question,expect", [
    ("What text appears on the screen?", True), ("What is written on the slide?", True),
    ("What does the sign say about the budget?", False), ("What is the vault code?", False)])
def test_generic_text_questions(question, expect):
    assert asks_for_any_text(question) is expect


@pytest.fixture(scope="module")
def index():
    from longwatch.pipeline.models.text import TextEmbedder

    return LineIndex(TextEmbedder())


HAYSTACK = clips("TEAM MEETING | City News", "Parking level 9 isfull", "The vault code is 4-7-1-9",
                 "Room 337 is closed for cleaning", "The meetingmoved toroom 851", "TEAM MEETING")


def ask(index, question):
    qvec = index.embedder.embed([question])[0]
    return index.evidence(question, qvec, {"v": HAYSTACK})


def test_evidence_finds_the_line_that_answers(index):
    (best, *_) = ask(index, "What is the vault code?")
    assert best.text == "The vault code is 4-7-1-9" and best.spans == [(8.0, 12.0)]


def test_glued_ocr_words_still_beat_a_one_word_distractor(index):
    (best, *_) = ask(index, "Which room did the meeting move to?")
    assert best.text == "The meetingmoved toroom 851"


@pytest.mark.parametrize("question", ["What is the dog's name?", "Which team scored the winning goal?",
                                      "How tall is the radio mast?", "What song is playing on the radio?"])
def test_nothing_on_screen_means_no_evidence(index, question):
    assert ask(index, question) == []


def test_embeddings_are_cached_until_the_video_grows(index):
    first = index.lines("w", HAYSTACK[:3])[1]
    assert index.lines("w", HAYSTACK[:3])[1] is first
    assert len(index.lines("w", HAYSTACK)[0]) > len(collect_lines("w", HAYSTACK[:3]))


def test_grounded_keeps_faithful_rephrasing_only():
    ev = [TextLine("v", "The vault code is 6-4-3-8", [(0.0, 4.0)])]
    q = "What is the vault code?"
    assert grounded("The vault code is 6-4-3-8. It opens the old door.", ev, q) == "The vault code is 6-4-3-8."
    assert grounded("The vault code is 1234.", ev, q) == ""
    assert grounded("The vault code is a code of the National Institute of Crypto-Laws.", ev, q) == ""
    assert grounded("", ev, q) == ""
    mcq = "What is the password?\nOptions:\n(A) TULIP\n(B) COBALT\nAnswer with the option's letter."
    cobalt = [TextLine("v", "THE PASSWORD IS COBALT", [(12.0, 18.0)])]
    assert grounded("The password is TULIP.", cobalt, mcq) == ""  # an option is not evidence
    assert grounded("The password is COBALT.", cobalt, mcq) == "The password is COBALT."


def test_all_lines_and_quote_read_in_time_order(index):
    lines = index.all_lines({"v": HAYSTACK}, limit=3)
    assert [l.text for l in lines] == ["TEAM MEETING", "City News", "Parking level 9 isfull"]
    assert quote(lines[:1], multi_video=True) == 'On screen in v [00:00:00\u201300:00:04], [00:00:20\u201300:00:24]: "TEAM MEETING"'
