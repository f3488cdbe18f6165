"""Every UI event with an `api_name`, called through `gradio_client` against the app served in-process.

The app runs on the tiny preset (real model classes, tiny random weights) and a real bank in a temporary folder.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

gradio = pytest.importorskip("gradio", reason="the UI needs: pip install 'longwatch[ui]'")
gradio_client = pytest.importorskip("gradio_client", reason="needs: pip install gradio_client")

from longwatch.app.api import LongWatch  # noqa: E402
from longwatch.app.config import UIConfig, load_config  # noqa: E402

PIPELINE = {"clip_seconds": 2.0, "fps": 2.0, "max_side": 160, "answer_tokens": 4, "min_new_tokens": 1, "ocr": False}
EVENTS = {"/ingest", "/ask", "/show", "/videos", "/delete", "/live_start", "/live_stop", "/live_stats", "/live_ask",
          "/transcript"}
# A stored timeline as the lanes write it; the last line is hostile text a video could carry (OCR, subtitles).
TIMELINE = [("speech", 0.5, 1.8, "Welcome to the harbour safety briefing", ""),
            ("ocr", 1.0, 1.5, "Q3 | 4.2M", "Quarter | Cost"),
            ("subtitle", 2.2, 3.6, "The ferry QX2207 leaves at 9:30", ""),
            ("speech", 4.1, 5.6, "Pier seven closes for repairs", ""),
            ("caption", 4.5, 5.9, "<img src=x onerror=alert(1)> ${alert(2)} `a crane`", "")]


def _path(video: dict) -> str:
    """Server-side path of a gr.Video value (a FileData dict, nested under "video" in some Gradio versions)."""
    return (video.get("video") or video)["path"]



@pytest.fixture(scope="module")
def served(tmp_path_factory, free_port):
    from longwatch.ui.app import create_app, launch

    # The test streams come from this machine: the owner allows loopback sources (off by default).
    config = load_config(preset="tiny", pipeline=dict(PIPELINE), live={"allow_loopback": True})
    with LongWatch.open(tmp_path_factory.mktemp("bank"), config=config) as lw:
        app = create_app(lw)
        launch(app, lw, UIConfig(port=free_port(), max_upload_mb=5), prevent_thread_lock=True, quiet=True)
        try:
            yield lw, app, gradio_client.Client(app.local_url, download_files=False, verbose=False)
        finally:
            app.close()


@pytest.fixture(scope="module")
def served_offline(tmp_path_factory, free_port, sample):
    """The text-only offline preset (real MiniLM, real SmolLM2-135M), served, with the timeline below planted as
    video "briefing": its answers quote evidence and a language model writes a sentence after the quotes."""
    from longwatch.ui.app import create_app, launch

    config = load_config(preset="offline", pipeline=dict(PIPELINE, answer_tokens=16, ocr=True))
    with LongWatch.open(tmp_path_factory.mktemp("offline-bank"), config=config) as lw:
        plant_timeline(lw, "briefing", sample)
        app = create_app(lw)
        launch(app, lw, UIConfig(port=free_port()), prevent_thread_lock=True, quiet=True)
        try:
            yield lw, app, gradio_client.Client(app.local_url, download_files=False, verbose=False)
        finally:
            app.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from longwatch.samples.videos import make_sample

    path = tmp_path_factory.mktemp("videos") / "street.mp4"
    make_sample(path, 6.0, fps=10.0, size=(320, 180), texts=[(2.0, 4.0, "EXIT 12")])
    return path


def plant_timeline(lw, video_id: str, source: Path, timeline=TIMELINE, clip_seconds: float = 2.0, clips: int = 3):
    """Commit a video's clips with their evidence straight into the served bank (real MemoryBank, real MiniLM
    vectors from the loaded preset): each piece with the clip its t0 falls in, as ingest does."""
    from longwatch.memory import ClipRecord
    from longwatch.memory.records import Evidence

    embed = lw.models.embedder.embed
    lw.bank.add_video(video_id, source=str(source))
    for i in range(clips):
        t0, t1 = i * clip_seconds, (i + 1) * clip_seconds
        evidence = [Evidence(kind, a, b, text, context) for kind, a, b, text, context in timeline
                    if t0 <= a < t1 or (i == clips - 1 and a >= t1)]
        vectors = {"text": embed([" ".join(e.text for e in evidence) or "(no text)"])[0]}
        if evidence:
            vectors["evidence"] = embed([f"{e.context} {e.text}".strip() for e in evidence])
        lw.bank.add(ClipRecord(video_id, i, t0, t1, evidence=evidence), vectors)
    lw.bank.mark_complete(video_id)


def _component(app, elem_id: str):
    return next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def test_every_named_event_is_exposed(served):
    _, _, client = served
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == EVENTS


def test_ingest_streams_progress_then_ask_shows_answer_chips_and_timeline(served, sample):
    lw, _, client = served
    job = client.submit(gradio_client.handle_file(str(sample)), [], api_name="/ingest")
    status, selected, player = job.result(timeout=300)
    updates = [o[0] for o in job.outputs()]
    assert updates[0].startswith("Decoding and ingesting") and "0%" in updates[0]
    assert any("%" in u and "ETA" in u for u in updates[1:-1])
    video_id = lw.videos()[0].video_id
    assert "100%" in status and video_id in status and selected["value"] == [video_id]
    from longwatch.ui.handlers import evidence_summary

    assert evidence_summary(lw.evidence_counts(video_id)) in status  # what the lanes stored, said at once
    # The player shows the bank's own copy (Gradio serves it from its cache under the same name).
    assert Path(_path(player)).name == f"{video_id}.mp4"
    assert Path(_path(player)).read_bytes() == (lw.uploads_dir / f"{video_id}.mp4").read_bytes()

    chat, chips, thumbs, relevance, tokens, cleared = client.predict(
        "When does the exit sign appear?", [video_id], [], api_name="/ask")
    assert cleared == "" and [m["role"] for m in chat] == ["user", "assistant"]
    assert chips and all(c["video"] == video_id and 0 <= c["t0"] < 6.0 for c in chips)
    assert all(c["label"] in str(chat[1]["content"]) for c in chips)  # the reply names its time ranges
    assert len(thumbs) == len(chips)
    assert relevance["columns"] == ["video", "clip start", "relevance"] and tokens["columns"][-1] == "tokens"
    assert relevance["data"] and all(row[0] == video_id and 0.0 <= row[2] <= 1.0 for row in relevance["data"])

    assert _path(client.predict([video_id], api_name="/show")) == _path(player)
    rows, dropdown, doomed = client.predict([video_id], api_name="/videos")
    assert dropdown["value"] == [video_id] and doomed["choices"] in ([video_id], [[video_id, video_id]])
    assert [r[0] for r in rows["data"]] == [video_id] and rows["data"][0][2] == 3


def test_errors_come_back_as_errors_and_the_app_keeps_serving(served, tmp_path, sample):
    lw, _, client = served
    notes = tmp_path / "notes.mp4"
    notes.write_text("shopping list\n")
    with pytest.raises(Exception, match="UnsupportedVideo"):
        client.predict(gradio_client.handle_file(str(notes)), [], api_name="/ingest")
    with pytest.raises(Exception, match="question"):
        client.predict("   ", [], [], api_name="/ask")
    with pytest.raises(Exception, match="BankError"):
        client.predict("anything?", ["no-such-video"], [], api_name="/ask")
    assert client.predict([], api_name="/videos")  # still answering
    assert not any(p.name.startswith("notes") for p in lw.uploads_dir.iterdir())


def test_delete_removes_the_video_and_its_copy(served, sample):
    lw, _, client = served
    client.predict(gradio_client.handle_file(str(sample)), [], api_name="/ingest")
    video_id = lw.videos()[0].video_id
    rows, dropdown, picked = client.predict(video_id, [video_id], api_name="/delete")
    assert rows["data"] == [] or all(r[0] != video_id for r in rows["data"])
    assert not list(lw.uploads_dir.glob(f"{video_id}.*"))


def test_live_tab_watches_reports_answers_and_stops(served, http_live_stream, free_port):
    _, _, client = served
    with pytest.raises(Exception, match="StreamError"):
        client.predict(f"http://127.0.0.1:{free_port()}/none.ts", api_name="/live_start")
    url = http_live_stream(30)
    status, _timer = client.predict(url, api_name="/live_start")
    assert "0 clips" in status
    deadline = time.monotonic() + 60
    while int(re.search(r"(\d+) clips", status := client.predict(api_name="/live_stats"))[1]) < 2:
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert "lag" in status and "dropped" in status
    answer = client.predict("What is on the camera?", api_name="/live_ask")
    assert "Sources:" in answer
    status, _timer = client.predict(api_name="/live_stop")
    assert status.endswith("stopped")
    assert client.predict(api_name="/live_stats") == "No stream is being watched."


def test_question_placeholder_promises_only_what_the_preset_can_do(served, served_offline):
    _, app, _ = served  # tiny preset: a vision answerer, so also what is seen
    vision = _component(app, "question").placeholder
    assert "said" in vision and "subtitled" in vision and "seen" in vision
    assert _component(app, "tokens").visible
    _, text_only, _ = served_offline
    offline = _component(text_only, "question").placeholder
    assert "said" in offline and "subtitled" in offline and "shown as text" in offline
    assert "seen" not in offline and "holding" not in offline  # no promise a text-only preset cannot keep
    assert not _component(text_only, "tokens").visible  # it allocates no visual tokens to plot


def test_transcript_panel_lists_filters_and_escapes_the_stored_timeline(served, sample, tmp_path, capsys):
    lw, _, client = served
    video_id = "briefing"
    plant_timeline(lw, video_id, sample)
    page = client.predict(video_id, "", ["speech", "subtitle", "ocr", "caption"], api_name="/transcript")
    starts = [float(t) for t in re.findall(r'data-t="([0-9.]+)"', page)]
    assert starts == [0.5, 1.0, 2.2, 4.1, 4.5]  # every line, in time order
    for label in ("Said", "On screen", "Subtitle", "Caption"):
        assert f">{label}</span>" in page
    assert "QX2207" in page and "Quarter | Cost" in page  # a table row shows its header as context
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page  # video text is never markup
    assert all(f'data-video="{video_id}"' in line for line in page.split("<button")[1:])

    filtered = client.predict(video_id, "qx2207", ["speech", "subtitle", "ocr", "caption"], api_name="/transcript")
    assert re.findall(r'data-t="([0-9.]+)"', filtered) == ["2.200"]
    said = client.predict(video_id, "", ["speech"], api_name="/transcript")
    assert re.findall(r'data-t="([0-9.]+)"', said) == ["0.500", "4.100"]
    assert "No line matches" in client.predict(video_id, "zeppelin", ["speech"], api_name="/transcript")
    assert "Pick or ingest" in client.predict("", "", ["speech"], api_name="/transcript")  # no video chosen yet
    for bad in ("../etc", "a/b", "x" * 300):
        with pytest.raises(Exception, match="InvalidVideoId"):
            client.predict(bad, "", ["speech"], api_name="/transcript")

    # The command line prints the same stored timeline while the server holds the bank (no re-transcription).
    from longwatch.app.cli import main

    assert main(["transcript", "--bank", str(lw.root), "--video", video_id, "--kinds", "speech,subtitle"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "[0:00:00–0:00:01] Said: Welcome to the harbour safety briefing",
        "[0:00:02–0:00:03] Subtitle: The ferry QX2207 leaves at 9:30",
        "[0:00:04–0:00:05] Said: Pier seven closes for repairs"]
    out = tmp_path / "briefing.srt"
    assert main(["transcript", "--bank", str(lw.root), "--video", video_id, "--format", "srt", "-o", str(out)]) == 0
    srt = out.read_text()
    assert srt.count(" --> ") == len(TIMELINE) and "00:00:02,200 --> 00:00:03,600" in srt
    assert main(["--json", "transcript", "--bank", str(lw.root), "--video", video_id, "--kinds", "ocr"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["segments"]
    assert row["kind"] == "ocr" and row["text"] == "Q3 | 4.2M" and row["context"] == "Quarter | Cost"
    assert main(["transcript", "--bank", str(lw.root), "--video", video_id, "--kinds", "speach"]) != 0
    assert "speach" in capsys.readouterr().err
    assert main(["transcript", "--bank", str(lw.root), "--video", "no-such-video"]) != 0
    assert "longwatch videos" in capsys.readouterr().err
    assert main(["transcript", "--bank", str(tmp_path / "nowhere"), "--video", video_id]) != 0
    assert "no bank at" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()  # a reader creates nothing
    with pytest.raises(SystemExit, match="not both"):
        main(["transcript", str(sample), "--video", video_id])


def test_ingest_status_says_what_the_evidence_lanes_found():
    from longwatch.ui.handlers import evidence_summary

    assert evidence_summary({"speech": 3, "subtitle": 0, "ocr": 5, "caption": 0}) == "transcript: Said 3 · On screen 5"
    assert evidence_summary(dict.fromkeys(("speech", "subtitle", "ocr", "caption"), 0)) == \
        "nothing said, subtitled or shown as text was found"


def test_answer_chips_name_each_quotes_kind_and_time_range():
    from types import SimpleNamespace

    from longwatch.pipeline.answer import Citation
    from longwatch.ui.handlers import answer_chips

    # The shape of pipeline.answer.QuotedEvidence, which the answer path lists in Answer.evidence.
    quotes = [SimpleNamespace(kind="speech", video="talk", t0=723.4, t1=729.0, text="the budget is 4.2M"),
              SimpleNamespace(kind="ocr", video="talk", t0=60.0, t1=64.5, text="Q3 | 4.2M")]
    answer = SimpleNamespace(evidence=quotes, citations=[Citation("talk", 723.4, 729.0, 0.9)])
    chips = answer_chips(answer, multi=False)
    assert [c["label"] for c in chips] == ["Said [00:12:03\u201300:12:09]", "On screen [00:01:00\u201300:01:05]"]
    assert [(c["video"], c["t0"], c["kind"]) for c in chips] == [("talk", 723.4, "speech"), ("talk", 60.0, "ocr")]
    assert all("4.2M" not in str(c) for c in chips)  # quoted text stays in the chat, never in the chips' template
    assert answer_chips(answer, multi=True)[0]["span"] == "talk [00:12:03\u201300:12:09]"
    # A visual answer quotes nothing: one chip per cited range, without a kind.
    visual = answer_chips(SimpleNamespace(citations=answer.citations), multi=False)
    assert visual == [{"video": "talk", "t0": 723.4, "kind": "", "kind_label": "", "span": "[00:12:03\u201300:12:09]",
                       "label": "[00:12:03\u201300:12:09]", "score": "relevance 0.90"}]


def test_subtitles_uploaded_with_a_video_become_its_subtitle_lines(served, tmp_path):
    from longwatch.samples.speech import espeak_available, make_speech_sample

    if not espeak_available():
        pytest.skip("needs espeak-ng and ffmpeg to narrate the sample (apt-get install espeak-ng ffmpeg)")
    lw, _, client = served
    sample = make_speech_sample(tmp_path, "sidecar")  # the .srt beside it is not uploaded with the video by itself
    status, _selected, _player = client.predict(gradio_client.handle_file(sample.path), [],
                                                [gradio_client.handle_file(sample.sidecar)], api_name="/ingest")
    video_id = status.split("**")[1]
    cues = [(round(r.t0, 1), round(r.t1, 1), r.text) for r in lw.evidence(video_id, ["subtitle"])]
    assert cues == [(t0, t1, text) for t0, t1, text in sample.subtitles]
    assert f"Subtitle {len(sample.subtitles)}" in status
    page = client.predict(video_id, "qx2207", ["subtitle"], api_name="/transcript")
    assert "Flight QX2207" in page and page.count("<button") == 1


def _text(message: dict) -> str:
    """A chat message's text, whether Gradio hands its content over as a string or as typed parts."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in (content if isinstance(content, list) else [content]))


def test_quotes_stream_into_the_chat_before_the_sentence_and_the_answer_ends_as_asked_directly(served_offline):
    """Issue 15: the quotes need no language model, so the chat shows them (with their times and chips) while the
    offline preset's SmolLM2 still writes; the last update is exactly the answer `LongWatch.ask` gives."""
    from longwatch.app import format_span

    lw, _, client = served_offline
    question = "What closes for repairs?"
    job = client.submit(question, ["briefing"], [], api_name="/ask")
    chat, chips, thumbs, _relevance, _tokens, cleared = job.result(timeout=120)
    updates = job.outputs()
    plain = lw.ask(question, ["briefing"])  # the same question, not streamed
    assert plain.evidence, "the planted timeline must support this question with a quote"
    assert len(updates) >= 2, "the quotes came only with the whole answer"
    early_chat, early_chips = updates[0][0], updates[0][1]
    early = _text(early_chat[-1])
    assert [m["role"] for m in early_chat] == ["user", "assistant"] and _text(early_chat[0]) == question
    assert "Writing the answer" in early
    for q in plain.evidence:
        assert f'{format_span(q.t0, q.t1)}: "{q.text}"' in early  # each quote with its time, at once
    assert early_chips == chips  # the chips do not move when the sentence arrives
    assert len(updates[0][2]) == len(early_chips)  # nor wait for it to show their frames

    ranges = ", ".join(c.label() for c in plain.citations)
    assert _text(chat[-1]) == f"{plain.text}\n\n*Sources:* {ranges}"
    assert "Writing the answer" not in _text(chat[-1]) and cleared == ""
    assert len(thumbs) == len(chips)


def test_two_streamed_asks_never_share_the_model(served_offline):
    """Two tabs ask at once (the event runs up to ui.concurrency jobs): the second waits for the model until the
    first has finished writing, quotes included, exactly as unstreamed asks did. The real model is held at its
    start by a gate, so the overlap is certain, not raced."""
    import threading

    from gradio_client.utils import Status

    lw, _, client = served_offline
    answerer = lw.models.answerer
    generate, calls, go = answerer.generate, [], threading.Event()

    def gated_generate(*args, **kwargs):  # the real model; the first call waits until the second ask is running
        calls.append("start")
        if len(calls) == 1:
            go.wait(timeout=60)
        try:
            return generate(*args, **kwargs)
        finally:
            calls.append("end")

    def wait_until(condition, what: str, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    answerer.generate = gated_generate
    try:
        first = client.submit("What closes for repairs?", ["briefing"], [], api_name="/ask")
        wait_until(lambda: calls == ["start"], "the first ask never reached the model")
        second = client.submit("When does the ferry leave?", ["briefing"], [], api_name="/ask")
        wait_until(lambda: second.status().code == Status.PROCESSING, "the second ask never started")
        observed = time.monotonic() + 2.0  # the second job runs: were the model free, its quotes would come now
        while time.monotonic() < observed:
            assert calls == ["start"] and not second.outputs(), (calls, second.outputs())
            time.sleep(0.05)
        go.set()
        first.result(timeout=120)
        second.result(timeout=120)
    finally:
        go.set()
        answerer.generate = generate
    assert calls == ["start", "end", "start", "end"]
    assert len(second.outputs()) >= 2  # and it streamed its quotes once it had the model


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread dies on purpose
def test_a_failed_or_dead_answer_thread_ends_the_stream_with_an_error_never_a_hang():
    from longwatch.errors import BankError
    from longwatch.ui.handlers import answer_stream

    def refused(on_quotes):
        raise BankError("no video 'x' in bank; list ids with `longwatch videos`")

    with pytest.raises(gradio.Error, match="BankError: no video 'x'"):  # the typed toast a user reads
        next(answer_stream(refused))

    def dies(on_quotes):
        on_quotes(["a quote"])
        raise SystemExit  # ends the thread past every `except Exception`, as an interpreter shutdown would

    stream = answer_stream(dies)
    assert next(stream) == (["a quote"], None)
    with pytest.raises(RuntimeError, match="stopped without an answer"):
        next(stream)
