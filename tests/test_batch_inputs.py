"""Batch inputs: question files in the LVBench / Video-MME / MLVU shapes, answer scoring, video discovery."""

from __future__ import annotations

import json

import pytest

from longwatch.app.api import video_id_for
from longwatch.app.batch import discover_videos
from longwatch.app.benchfiles import QuestionFileError, load_question_file
from longwatch.app.benchfiles import load_questions
from longwatch.app.mcq import is_correct, predicted_letter


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_load_questions_normalises_benchmark_styles(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [
        {"id": "vmme-1", "video": "lecture", "question": "What colour is the slide?",
         "options": ["A. red", "B. blue", "C. green", "D. black"], "answer": "B"},                     # Video-MME
        {"question_id": 7, "question": "Which city is named?", "candidates": ["Paris", "Rome"],
         "answer": "Rome", "time_reference": "00:01:02-00:01:10"},                                     # MLVU
        {"question": "What is the vault code?", "answer": "4-7-1-9", "time_reference": [12.5, 16]},  # free text
    ])
    q1, q2, q3 = load_questions(path)
    assert q1.options == ("red", "blue", "green", "black") and q1.answer == "B" and q1.video == "lecture"
    assert "(B) blue" in q1.prompt() and q1.prompt().startswith("What colour")
    assert q2.id == "7" and q2.answer == "B" and q2.time_reference == (62.0, 70.0) and q2.video is None
    assert q3.id == "q3" and not q3.is_multiple_choice and q3.time_reference == (12.5, 16.0)


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_kept(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "a", "question": "x"}),
        json.dumps({"id": "a", "question": "y"}),                         # id used twice
        json.dumps({"id": "b"}),                                          # no question
        json.dumps({"id": "c", "question": "x", "time_reference": "soon"}),
        "not json",
        "{}",                                                             # an empty row
        json.dumps({"id": "d", "question": "Which?", "options": ["x", "y"], "answer": "zebra"}),  # not an option
        json.dumps({"id": "e", "question": "last"}),
    ]) + "\n")
    loaded = load_question_file(path)
    assert [q.id for q in loaded.questions] == ["a", "e"]
    problems = {b.row: b.problem for b in loaded.bad_rows}
    assert set(problems) == {"line 2", "line 3", "line 4", "line 5", "line 6", "line 7"}
    assert "used twice" in problems["line 2"] and "needs a 'question'" in problems["line 3"]
    assert "time reference" in problems["line 4"] and problems["line 5"].startswith("not JSON")
    assert problems["line 6"] == "empty row" and "neither an option letter" in problems["line 7"]
    assert all(b.file == str(path) for b in loaded.bad_rows)


def test_a_file_without_one_good_row_is_a_typed_error(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"id": "a", "question": "Which?", "answer": "D"}, {"question": ""}])
    with pytest.raises(QuestionFileError, match=r"q.jsonl: no usable question in 2 row\(s\).*line 1: answer 'D' "
                                                r"looks like an option letter but the row has no options"):
        load_questions(path)
    with pytest.raises(QuestionFileError, match="not a question file we know"):
        load_questions(write_jsonl(tmp_path / "ids.jsonl", [{"id": "a"}, {"id": "b"}]))
    with pytest.raises(QuestionFileError, match="no such question file"):
        load_questions(tmp_path / "absent.jsonl")


@pytest.mark.parametrize("text,expect", [
    ("(C)", "C"), ("C", "C"), ("Answer: B", "B"), ("The answer is (A) since", "A"), ("B. blue", "B"),
    ("I think it is blue.", "B"), ("A cat appears", None), ("red or blue", None),
    ("", None), ("I do not know", None), ("blued", None), ("bored", None),   # no letter hunting inside words
    ("The answer is: C", "C"), ("**B**", "B"), ("I pick **(A)** here", "A"), ("Answered quickly", None),
])
def test_predicted_letter(text, expect):
    assert predicted_letter(text, ("red", "blue", "green")) == expect


def test_is_correct_free_text_and_missing_reference(tmp_path):
    q_free, q_none = load_questions(write_jsonl(tmp_path / "q.jsonl", [
        {"question": "code?", "answer": "4-7-1-9"}, {"question": "anything?"}]))
    assert is_correct(q_free, "The vault code is 4-7-1-9 [00:12:01]") is True
    assert is_correct(q_free, "I could not find it") is False
    assert is_correct(q_none, "whatever") is None


def test_discover_videos_folder_glob_list_and_id_collisions(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for rel in ["a/talk.mp4", "b/talk.mp4", "a/notes.txt", "a/x y.webm"]:
        (tmp_path / rel).write_bytes(rel.encode())  # different bytes: different videos
    listing = tmp_path / "list.txt"
    listing.write_text("# archive\nb/talk.mp4\nmissing.mp4\n")
    from_dir = discover_videos([tmp_path / "a"])
    assert [j.name for j in from_dir] == ["talk", "x-y"]
    assert [j.video_id for j in from_dir] == [video_id_for(tmp_path / "a/talk.mp4"), video_id_for(tmp_path / "a/x y.webm")]
    both = discover_videos([str(tmp_path / "*" / "talk.mp4")])
    assert len({j.video_id for j in both}) == 2 and all(j.video_id.startswith("talk-") for j in both)
    assert len({j.name for j in both}) == 2 and all(j.name.startswith("talk-") for j in both)
    (tmp_path / "c").mkdir()
    (tmp_path / "c/talk.mp4").write_bytes((tmp_path / "a/talk.mp4").read_bytes())
    assert len(discover_videos([tmp_path / "a/talk.mp4", tmp_path / "c/talk.mp4"])) == 1  # a copy is one video
    listed = discover_videos([listing])
    assert [j.path for j in listed] == [str(tmp_path / "b/talk.mp4"), str(tmp_path / "missing.mp4")]
    assert len(discover_videos([tmp_path / "a", tmp_path / "a/talk.mp4"])) == 2  # duplicates collapse
