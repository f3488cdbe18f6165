"""`longwatch ask` and `videos` beside a running `longwatch ingest`, and `ask --questions` with one model load.

The ingest is a real second process; it is frozen (SIGSTOP) once it has committed a clip, so the committed range
stays fixed while the readers run, then resumed to finish normally. Models come from the tiny preset.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest

from longwatch.app import cli


@pytest.fixture(scope="module")
def long_sample(tmp_path_factory):
    from longwatch.samples.videos import make_sample

    path = tmp_path_factory.mktemp("videos") / "lecture.mp4"
    make_sample(path, 20.0, fps=4.0, size=(160, 90), texts=[(0.0, 4.0, "HELLO")])
    return path


def _longwatch(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "longwatch", *argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _first_commit(root, proc: subprocess.Popen, timeout: float) -> None:
    """Return as soon as the ingest has committed a clip: a bare SQLite count every 5 ms, so that the ingest
    (tens of ms per clip with the tiny preset) is frozen near its start, far from the video's end."""
    from longwatch.memory.store import DB, MARKER

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"ingest ended before its first clip: {proc.communicate(timeout=10)}"
        assert time.monotonic() < deadline, "no clip committed in time"
        if (root / MARKER).exists():  # written once the new bank's tables are committed
            with closing(sqlite3.connect(f"file:{root / DB}?mode=ro", uri=True, timeout=10)) as db:
                if db.execute("SELECT count(*) FROM clips").fetchone()[0]:
                    return
        time.sleep(0.005)


def test_ask_and_list_answer_from_committed_clips_while_ingest_runs(tmp_path, bank_args, long_sample):
    from longwatch.memory import MemoryBank

    root = tmp_path / "bank"
    ingest = subprocess.Popen([sys.executable, "-m", "longwatch", "--json", "ingest", str(long_sample), "--id",
                               "lecture", "--no-progress", *bank_args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        _first_commit(root, ingest, timeout=120)
        os.kill(ingest.pid, signal.SIGSTOP)  # frozen wherever it is, writer lock held, maybe mid-commit
        with MemoryBank(root, readonly=True) as bank:
            clips = bank.clips("lecture")
        assert [c.clip_index for c in clips] == list(range(len(clips)))
        end = clips[-1].t1
        assert end < 20.0, "the ingest should still be running"

        asked = _longwatch("--json", "ask", "What does the card say?", *bank_args)
        assert asked.returncode == 0, asked.stderr
        assert "another process" in asked.stderr and "Traceback" not in asked.stderr
        answer = json.loads(asked.stdout)
        assert answer["text"] and answer["citations"]
        for c in answer["citations"]:  # every citation lies inside what was committed when it asked
            assert c["video"] == "lecture" and 0 <= c["t0"] < c["t1"] <= end + 1e-6, (c, end)

        listed = _longwatch("--json", "videos", *bank_args)
        assert listed.returncode == 0, listed.stderr
        (video,) = json.loads(listed.stdout)["videos"]
        assert video["video_id"] == "lecture" and video["clips"] == len(clips) and not video["complete"]

        removed = _longwatch("--json", "videos", "rm", "lecture", *bank_args)
        assert removed.returncode == 5 and "Traceback" not in removed.stderr
        error = json.loads(removed.stdout)
        assert error["error"] == "BankBusy" and "needs the bank to itself" in error["message"]

        os.kill(ingest.pid, signal.SIGCONT)
        out, err = ingest.communicate(timeout=120)
        assert ingest.returncode == 0, err
        (done,) = json.loads(out)["videos"]
        assert done["complete"] and done["clips"] == 10
    finally:
        if ingest.poll() is None:
            os.kill(ingest.pid, signal.SIGCONT)
            ingest.kill()
            ingest.communicate(timeout=10)


@pytest.fixture
def ingested(bank_args, tmp_path, capsys):
    from longwatch.samples.videos import make_sample

    path = tmp_path / "talk.mp4"
    make_sample(path, 4.0, fps=10.0, size=(320, 180), texts=[(0.0, 2.0, "HELLO")])
    assert cli.main(["--json", "ingest", str(path), "--id", "talk", "--no-progress", *bank_args]) == 0
    capsys.readouterr()
    return bank_args


def test_ask_many_questions_loads_the_models_once(ingested, tmp_path, capsys, monkeypatch):
    import longwatch.pipeline.models as models

    loads = []
    real = models.load_preset
    monkeypatch.setattr(models, "load_preset", lambda *a, **k: loads.append(a) or real(*a, **k))
    questions = ["What does the card say?", "", "   ", "What color is the background?", "Who is speaking?"]
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(questions) + "\n")

    assert cli.main(["--json", "ask", "--questions", str(path), *ingested]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # one JSON object per line
    assert [r["question"] for r in rows] == [q for q in questions if q.strip()]
    for r in rows:
        assert r["text"] and all(c["video"] == "talk" and 0 <= c["t0"] < c["t1"] <= 4.0 + 1e-6
                                 for c in r["citations"])
    assert len(loads) == 1

    monkeypatch.setattr(sys, "stdin", io.StringIO("What does the card say?\nWhat is shown?\n"))
    assert cli.main(["ask", "--questions", "-", *ingested]) == 0
    text = capsys.readouterr().out
    assert text.count("Sources: ") == 2 and "Q1: What does the card say?" in text and "Q2: What is shown?" in text
    assert len(loads) == 2  # one more command, one more load

    assert cli.main(["ask", "What does the card say?", *ingested]) == 0  # a single question still works
    assert capsys.readouterr().out.count("Sources: ") == 1


@pytest.mark.parametrize("content, found", [(None, "not found"), ("", "an empty file"), ("\n  \n\n", "blank lines"),
                                            (b"\xff\xfequestion", "not UTF-8"), (b"\0" * (5 << 20), "too large")])
def test_unusable_questions_files_are_typed_errors_before_models_load(bank_args, tmp_path, capsys, content, found):
    path = tmp_path / "questions.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert cli.main(["--json", "ask", "--questions", str(path), *bank_args]) == 2
    out, err = capsys.readouterr()
    error = json.loads(out)
    assert error["error"] == "QuestionFileError" and found in error["message"] and str(path) in error["message"]
    assert "Traceback" not in err and not (tmp_path / "bank").exists()  # refused before the bank or models


def test_a_questions_file_error_from_the_real_command_has_no_traceback(bank_args, tmp_path):
    missing = tmp_path / "nope.txt"
    done = _longwatch("ask", "--questions", str(missing), *bank_args, timeout=60)
    assert done.returncode == 2
    assert "QuestionFileError" in done.stderr and "nope.txt" in done.stderr and "Traceback" not in done.stderr


def test_videos_rm_refuses_an_invalid_id_before_opening_the_bank(bank_args, tmp_path, capsys):
    assert cli.main(["--json", "videos", "rm", "../victim", *bank_args]) == 5
    error = json.loads(capsys.readouterr().out)
    assert error["error"] == "InvalidVideoId" and "'../victim' is not allowed" in error["message"]
    assert not (tmp_path / "bank").exists()
