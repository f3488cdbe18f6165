"""Benchmark annotation files exactly as their authors ship them: LVBench, Video-MME (JSON and parquet), MLVU,
LongVideoBench; each bad row reported with its file and row, good rows kept, letters never guessed."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longwatch.app.benchfiles import QuestionFileError, load_question_file
from longwatch.app.mcq import is_correct, predicted_letter

# Row shapes as in the authors' files (see the sources listed in app/benchfiles.py).
LVBENCH = [
    {"key": "4LVJ3nO0f_c", "type": "documentary", "video_info": {"duration_minutes": 68.3, "fps": 30.0},
     "qa": [
         {"uid": 117, "question": "How many people attended?\n(A) 1636\n(B) 1640\n(C) 1620\n(D) 1700",
          "answer": "D", "question_type": ["key information retrieval"], "time_reference": "01:08:06-01:08:24"},
         {"uid": 118, "question": "What is the dog doing?\n(A) sleeping\n(B) running\n(C) eating\n(D) barking",
          "answer": "B", "question_type": ["entity recognition", "event understanding"],
          "time_reference": "00:15-00:19, 02:03-02:10"},
         {"uid": 119, "question": "Which team won?\n(A) red\n(B) blue", "answer": "E",
          "question_type": ["reasoning"], "time_reference": "00:10-00:20"},
         {"uid": 120, "question": "Who speaks first?", "answer": "A", "question_type": ["reasoning"],
          "time_reference": "00:10-00:20"},
     ]},
    {"key": "Kp5u1vFv3Z0", "type": "sports", "video_info": {"duration_minutes": 3.0},
     "qa": [{"uid": 121, "question": "Who scores?\n(A) #7\n(B) #9\n(C) #10\n(D) #3", "answer": "(C)",
             "question_type": ["entity recognition"], "time_reference": "00:01:10-00:01:20"}]},
]
# Video-MME's evaluation/output_test_template.json: nested per video, trailing commas included.
VIDEOMME_TEMPLATE = """[
    {
        "video_id": "001",
        "duration": "short",
        "domain": "Knowledge",
        "sub_category": "Humanity & History",
        "questions": [
            {
                "question_id": "001-1",
                "task_type": "Counting Problem",
                "question": "Which kind of the decoration has the largest number?",
                "options": ["A. Apples.", "B. Candles.", "C. Berries.", "D. The three kinds are of the same number."],
                "answer": "C",
                "response": "C. Berries.",
            },
            {
                "question_id": "001-2",
                "task_type": "Information Synopsis",
                "question": "What is the genre of this video?",
                "options": ["A. A news report.", "B. A documentary."],
                "answer": "F",
                "response": "D.",
            }
        ]
    }
]
"""
MLVU = [
    {"video": "movie101_66.mp4", "duration": 246, "question": "What color is the main male character in the video?",
     "candidates": ["Yellow", "Red", "Green", "Blue"], "answer": "Yellow", "question_type": "plotQA"},
    {"video": "movie101_63.mp4", "duration": 748, "question": "What kind of vehicle is the man riding?",
     "candidates": ["Camel cart", "Donkey cart", "Horse carriage", "Ox cart"], "answer": "Oxcart",
     "question_type": "plotQA"},
    {},
    {"video": "xiaoliyu_6.mp4", "duration": 4000, "question": "How did the jellyfish leave the mire?",
     "candidates": ["Carried by the shrimp", "Carried by the turtle"], "answer": "Carried by the turtle",
     "question_type": "plotQA"},
]
LVB = [
    {"id": "86CxyhFV9MI_0", "video_id": "86CxyhFV9MI", "video_path": "86CxyhFV9MI.mp4", "duration": 23.1,
     "duration_group": 60, "question": "What is the man in the red hat holding?",
     "candidates": ["a cup", "a phone", "a book", "a dog"], "correct_choice": 3, "question_category": "S2O",
     "topic_category": "NP-News"},
    {"id": "x_1", "video_id": "x", "video_path": "x.mp4", "duration": 500.0, "duration_group": 600,
     "question": "Where?", "candidates": ["here", "there"], "correct_choice": 2, "question_category": "T3O"},
    {"id": "t_2", "video_id": "t", "video_path": "t.mp4", "duration": 3000.0, "duration_group": 3600,
     "question": "Test split row?", "candidates": ["yes", "no"], "question_category": "E2O"},
]


def write(path, text):
    path.write_text(text)
    return path


def test_lvbench_jsonl_options_from_the_question_text_and_several_ranges(tmp_path):
    path = write(tmp_path / "video_info.meta.jsonl", "".join(json.dumps(r) + "\n" for r in LVBENCH))
    loaded = load_question_file(path)
    assert loaded.format == "lvbench"
    q117, q118, q121 = loaded.questions
    assert q117.question == "How many people attended?" and q117.options == ("1636", "1640", "1620", "1700")
    assert q117.answer == "D" and q117.video == "4LVJ3nO0f_c" and q117.duration == ">=60 min"
    assert q117.time_references == ((4086.0, 4104.0),) and q117.task_types == ("key information retrieval",)
    assert q118.time_references == ((15.0, 19.0), (123.0, 130.0))
    assert q118.task_types == ("entity recognition", "event understanding")
    assert q121.answer == "C" and q121.time_references == ((70.0, 80.0),) and q121.duration == "<4 min"
    bad = {b.row: b.problem for b in loaded.bad_rows}
    assert set(bad) == {"line 1 qa[2]", "line 1 qa[3]"}
    assert "'E' is not one of the option letters A-B" in bad["line 1 qa[2]"]
    assert "no '(A) …' option lines" in bad["line 1 qa[3]"]


def test_letter_d_trap_an_lvbench_answer_is_scored_by_its_letter_only(tmp_path):
    """Read as free text, answer "D" was "correct" for any response containing a 'd'."""
    q = load_question_file(write(tmp_path / "lv.jsonl", json.dumps(LVBENCH[0]) + "\n")).questions[0]
    assert "(D) 1700" in q.prompt() and q.prompt().endswith("Answer with the option's letter.")
    for wrong in ("I do not know, the dog distracted me", "Answer: B", "1640 people", "D or A"):
        assert is_correct(q, wrong) is False, wrong
    assert predicted_letter("I do not know, the dog distracted me", q.options) is None
    for right in ("D", "(D)", "The answer is D.", "D. 1700", "About 1700 people attended."):
        assert is_correct(q, right) is True, right


def test_videomme_template_json_with_trailing_commas(tmp_path):
    loaded = load_question_file(write(tmp_path / "videomme.json", VIDEOMME_TEMPLATE))
    assert loaded.format == "videomme"
    (q,) = loaded.questions
    assert q.id == "001-1" and q.video == "001" and q.answer == "C" and q.duration == "short"
    assert q.options[:3] == ("Apples.", "Candles.", "Berries.") and q.task_types == ("Counting Problem",)
    assert is_correct(q, "There are more berries than anything") is True  # the option's closing '.' is not quoted
    (bad,) = loaded.bad_rows
    assert bad.row == "item 1 questions[1]" and "'F'" in bad.problem


def test_videomme_parquet_flat_rows_use_videoID(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pip install pyarrow")
    import pyarrow.parquet as pq

    rows = [{"video_id": "001", "duration": "medium", "domain": "Knowledge", "sub_category": "History",
             "url": "https://www.youtube.com/watch?v=fFjv93ACGo8", "videoID": "fFjv93ACGo8", "question_id": "001-1",
             "task_type": "Counting Problem", "question": "How many?", "options": ["A. 1.", "B. 4.", "C. 2.", "D. 3."],
             "answer": "D"},
            {"video_id": "002", "duration": "long", "domain": "Sports", "sub_category": "Football", "url": "",
             "videoID": "abc", "question_id": "002-1", "task_type": "OCR Problems", "question": "Which?",
             "options": ["A. x", "B. y"], "answer": ""}]
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    loaded = load_question_file(path)
    assert loaded.format == "videomme"
    (q,) = loaded.questions
    assert q.video == "fFjv93ACGo8" and q.extra["aliases"] == ("001",) and q.options == ("1.", "4.", "2.", "3.")
    assert q.answer == "D" and q.duration == "medium"
    assert [(b.row, "answer ''" in b.problem) for b in loaded.bad_rows] == [("row 2", True)]


def test_parquet_without_pyarrow_is_a_typed_error_naming_the_package(tmp_path, monkeypatch):
    path = write(tmp_path / "v.parquet", "PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what a user without pyarrow meets: an ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(QuestionFileError, match=r"pip install 'longwatch\[bench\]'"):
        load_question_file(path)


def test_mlvu_answer_text_keyed_to_its_candidate_and_bad_answer_not_rekeyed(tmp_path):
    loaded = load_question_file(write(tmp_path / "1_plotQA.json", json.dumps(MLVU, indent=4)))
    assert loaded.format == "mlvu"
    first, last = loaded.questions
    assert first.id == "1_plotQA-1" and first.video == "movie101_66" and first.answer == "A"
    assert first.extra["video_file"] == "movie101_66.mp4" and first.task_types == ("plotQA",)
    assert first.duration == "4-15 min" and first.options == ("Yellow", "Red", "Green", "Blue")
    assert last.answer == "B" and last.duration == ">=60 min" and last.id == "1_plotQA-4"
    bad = {b.row: b.problem for b in loaded.bad_rows}
    assert set(bad) == {"item 2", "item 3"}  # "Oxcart" is not a candidate; an empty row
    assert "'Oxcart' is not among its candidates" in bad["item 2"] and bad["item 3"] == "empty row"


def test_mlvu_open_ended_rows_load_without_options(tmp_path):
    rows = [{"video": "217.mp4", "duration": 480.0, "question": "Please summarize this video.",
             "answer": "Waves lap against the rocks.", "question_type": "summary"}]
    (q,) = load_question_file(write(tmp_path / "9_summary.json", json.dumps(rows))).questions
    assert not q.is_multiple_choice and q.answer == "Waves lap against the rocks." and q.prompt() == q.question


def test_longvideobench_json_zero_based_choice_and_test_rows_unscored(tmp_path):
    loaded = load_question_file(write(tmp_path / "lvb_val.json", json.dumps(LVB)))
    assert loaded.format == "longvideobench"
    q, test_row = loaded.questions
    assert q.id == "86CxyhFV9MI_0" and q.video == "86CxyhFV9MI" and q.answer == "D" and q.duration == "15-60 s"
    assert q.task_types == ("S2O",) and test_row.answer is None and test_row.duration == "15-60 min"
    assert is_correct(test_row, "A") is None
    ((row, problem),) = [(b.row, b.problem) for b in loaded.bad_rows]
    assert row == "item 2" and "correct_choice 2 is not a 0-based index into its 2 candidates" in problem


def test_longvideobench_parquet_options_columns(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pip install pyarrow")
    import pyarrow.parquet as pq

    row = {k: v for k, v in LVB[0].items() if k != "candidates"}
    row |= {"option0": "a cup", "option1": "a phone", "option2": "a book", "option3": "a dog", "option4": "N/A"}
    path = tmp_path / "validation-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    (q,) = load_question_file(path).questions
    assert q.options == ("a cup", "a phone", "a book", "a dog") and q.answer == "D"


@pytest.mark.parametrize("text,match", [
    ('[{"video": "a.mp4", "question": "q", ', "JSON array that does not parse"),
    ("\x00\x01\x02", r"no usable question in 1 row\(s\) .*line 1: not JSON"),
    ('{"id": 1, "name": "x"}', "not a question file we know"),
    ("[{}, null]", r"no usable question in 2 row\(s\) .*item 1: empty row; .*item 2: empty row"),
    ("[]", "holds no rows"),
])
def test_unusable_files_are_typed_errors(tmp_path, text, match):
    with pytest.raises(QuestionFileError, match=match):
        load_question_file(write(tmp_path / "f.json", text))


KEYS = ["key", "qa", "uid", "video_info", "duration_minutes", "question", "answer", "question_type", "time_reference",
        "video_id", "videoID", "questions", "question_id", "task_type", "options", "duration", "video", "candidates",
        "id", "video_path", "duration_group", "correct_choice", "option0", "option1", "prompt", "question_category"]
VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 5000) | st.floats(allow_nan=False)
                      | st.sampled_from(["", "A", "(B)", "short", "00:10-00:20", "Q?\n(A) x\n(B) y", "x.mp4", "N/A"]),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner,
                                                                                   max_size=6), max_leaves=12)


TEMPLATES = [LVBENCH[1], MLVU[0], LVB[0],
             {"videoID": "abc", "video_id": "001", "duration": "short", "question_id": "001-1", "task_type": "OCR",
              "question": "Which?", "options": ["A. x", "B. y"], "answer": "A"},
             {"video_id": "001", "duration": "long", "questions": [{"question_id": "001-1", "task_type": "OCR",
                                                                    "question": "Which?", "options": ["A. x", "B. y"],
                                                                    "answer": "B"}]},
             {"id": "q", "video": "v", "question": "Which?", "options": ["x", "y"], "answer": "A",
              "time_reference": "00:01-00:02", "task_type": "t", "duration": 30}]


@st.composite
def mutated_rows(draw):
    """A well-formed row of some format with a few values (top level or in its first nested question) replaced."""
    row = json.loads(json.dumps(draw(st.sampled_from(TEMPLATES))))
    row |= draw(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3))
    for nested in ("qa", "questions"):
        if isinstance(row.get(nested), list) and row[nested] and isinstance(row[nested][0], dict):
            row[nested][0] |= draw(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3))
    return row


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(mutated_rows(), min_size=1, max_size=3), jsonl=st.booleans())
def test_any_row_values_give_questions_or_a_typed_error_never_a_crash(tmp_path, rows, jsonl):
    path = tmp_path / "f.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) if jsonl else json.dumps(rows))
    try:
        loaded = load_question_file(path)
    except QuestionFileError:
        return
    for q in loaded.questions:
        assert q.question and (q.answer is None or not q.options or q.answer in "ABCDEFGH"[: len(q.options)])
        assert all(0 <= t0 <= t1 for t0, t1 in q.time_references)
