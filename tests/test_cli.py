"""The `longwatch` commands of the app layer, run through `cli.main` as a user would: --json output and exit codes.

Models come from the tiny preset (cached under the default home); every bank lives in a temporary folder.
"""

from __future__ import annotations

import json

import pytest

from longwatch.app import cli
from longwatch.samples.speech import espeak_available

MINE = ["ingest", "ask", "watch", "serve", "videos", "demo"]


@pytest.fixture(autouse=True)
def commands(monkeypatch):
    """Register the app-layer commands (a no-op once cli.COMMANDS lists them)."""
    for name in MINE:
        monkeypatch.setitem(cli.COMMANDS, name, f"longwatch.app.cmd_{name}")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from longwatch.samples.videos import make_sample

    path = tmp_path_factory.mktemp("videos") / "talk.mp4"
    make_sample(path, 4.0, fps=10.0, size=(320, 180), texts=[(0.0, 2.0, "HELLO")])
    return path


def _run(capsys, argv: list[str]) -> tuple[int, dict | str]:
    code = cli.main(argv)
    out = capsys.readouterr().out
    return code, (json.loads(out) if "--json" in argv else out)


def test_ingest_ask_list_and_remove_with_json(capsys, bank_args, sample):
    code, out = _run(capsys, ["--json", "ingest", str(sample), "--no-progress", *bank_args])
    assert code == 0
    (video,) = out["videos"]
    assert video["clips"] == 2 and video["complete"] and video["duration"] == pytest.approx(4.0)
    code, out = _run(capsys, ["--json", "ask", "What does the card say?", "--video", video["video_id"], *bank_args])
    assert code == 0 and out["text"] and out["citations"]
    assert all(c["video"] == video["video_id"] and 0 <= c["t0"] < c["t1"] <= 4.0 + 1e-6 for c in out["citations"])
    code, text = _run(capsys, ["ask", "What does the card say?", *bank_args])
    assert code == 0 and "Sources: [00:00:0" in text  # the human form prints the time ranges
    code, out = _run(capsys, ["--json", "videos", *bank_args])
    assert [v["video_id"] for v in out["videos"]] == [video["video_id"]]
    code, out = _run(capsys, ["--json", "videos", "rm", video["video_id"], *bank_args])
    assert code == 0 and out == {"removed": [video["video_id"]]}
    assert _run(capsys, ["--json", "videos", *bank_args])[1] == {"videos": []}


def test_ingest_says_which_ranges_could_not_be_decoded(capsys, bank_args, sample):
    from longwatch.memory import MemoryBank

    code, out = _run(capsys, ["--json", "ingest", str(sample), "--no-progress", *bank_args])
    (video,) = out["videos"]
    assert code == 0 and video["state"] == "complete" and video["gaps"] == []
    with MemoryBank(bank_args[-1]) as bank:  # what the ingest loop records for a damaged range
        bank.add_gap(video["video_id"], 1.0, 1.5, "undecodable packets")
    code, text = _run(capsys, ["ingest", str(sample), "--no-progress", *bank_args])  # a finished video: no-op
    runtime, summary = text.strip().split("\n")
    assert code == 0 and summary == (f"{video['video_id']}: 2 clips, 4.0 s, complete with gaps "
                                     "(not decoded: [00:00:01–00:00:02] undecodable packets)")
    # How the models ran is said once: preset, device, dtype and why, threads.
    assert runtime.startswith("models: ") and " on cpu, " in runtime and "torch threads" in runtime
    code, out = _run(capsys, ["--json", "ingest", str(sample), "--no-progress", *bank_args])
    assert out["videos"][0]["gaps"] == [{"t0": 1.0, "t1": 1.5, "reason": "undecodable packets"}]


def test_errors_map_to_exit_codes_with_a_json_payload(capsys, bank_args, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video at all\n")
    code, out = _run(capsys, ["--json", "ingest", str(notes), "--no-progress", *bank_args])
    assert code == 3 and out["error"] == "UnsupportedVideo" and "notes.mp4" in out["message"]
    code, out = _run(capsys, ["--json", "ask", "anything?", *bank_args])
    assert code == 5 and out["error"] == "BankError" and "ingest" in out["message"]
    code, out = _run(capsys, ["--json", "watch", "http://127.0.0.1:9/none.ts", "--seconds", "1", *bank_args])
    assert code == 3 and out["error"] == "StreamError"


def test_watch_a_stream_for_a_few_seconds_and_answer(capsys, bank_args, http_live_stream):
    url = http_live_stream(20)
    code, out = _run(capsys, ["--json", "watch", url, "--id", "cam", "--seconds", "7", "--every", "3",
                              "--ask", "What is on the camera?", *bank_args])
    assert code == 0
    stats = out["stats"]
    assert stats["video_id"] == "cam" and stats["clips_committed"] >= 2 and not stats["running"]
    assert out["answers"]
    for a in out["answers"]:  # each answer cites only stream time committed when it was asked
        assert all(c["t1"] <= a["answered_until"] + 1e-6 for c in a["citations"])


@pytest.mark.slow
def test_demo_prints_an_answer_with_time_ranges(capsys, tmp_path):
    # Encoding the 60 s sample dominates (~20 s idle, 90 s on a loaded 2-core box); the tiny preset and coarse
    # clips keep the rest short. The offline (README) run is the next test.
    config = tmp_path / "fast.toml"
    config.write_text('preset = "tiny"\n[pipeline]\nclip_seconds = 10.0\nfps = 0.3\nmax_side = 160\n'
                      'answer_tokens = 4\nmin_new_tokens = 1\n')
    code, out = _run(capsys, ["--json", "demo", "--config", str(config), "--bank", str(tmp_path / "bank"),
                              "--out", str(tmp_path / "demo.mp4")])
    assert code == 0 and out["answers"][0]["answer"]["citations"] and len(out["on_screen"]) == 3
    assert out["video"]["complete"] and out["video"]["duration"] == pytest.approx(60.0)


def test_demo_on_the_offline_default_cites_the_vault_card(capsys, tmp_path):
    # The README's main command: real OCR, MiniLM and SmolLM2 weights from pip packages.
    code, text = _run(capsys, ["demo", "--bank", str(tmp_path / "bank"), "--out", str(tmp_path / "demo.mp4")])
    assert code == 0 and "Sources: " in text and "[00:00:2" in text.split("Sources: ")[1].splitlines()[0]
    answer = text.split("A: ", 1)[1].split("Sources: ")[0]
    assert "4719" in answer.replace(" ", ""), answer  # the card reads "THE VAULT CODE IS 4 7 1 9"
    if not espeak_available():
        return
    # The spoken fact (room one seven five, said from 00:00:33, never shown) is quoted as speech with its time.
    spoken = text.split("A: ")[2].split("Sources: ")
    assert "Said [00:00:3" in spoken[0] and "175" in spoken[0].replace(" ", ""), spoken[0]
    assert "[00:00:3" in spoken[1].splitlines()[0]
