"""Every UI event with an `api_name`, called through `gradio_client` against the app served in-process.

The app runs on the tiny preset (real model classes, tiny random weights) and a real bank in a temporary folder.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

gradio = pytest.importorskip("gradio", reason="the UI needs: pip install 'longwatch[ui]'")
gradio_client = pytest.importorskip("gradio_client", reason="needs: pip install gradio_client")

from longwatch.app.api import LongWatch  # noqa: E402
from longwatch.app.config import UIConfig, load_config  # noqa: E402

PIPELINE = {"clip_seconds": 2.0, "fps": 2.0, "max_side": 160, "answer_tokens": 4, "min_new_tokens": 1, "ocr": False}
EVENTS = {"/ingest", "/ask", "/show", "/videos", "/delete", "/live_start", "/live_stop", "/live_stats", "/live_ask"}


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
def sample(tmp_path_factory):
    from longwatch.samples.videos import make_sample

    path = tmp_path_factory.mktemp("videos") / "street.mp4"
    make_sample(path, 6.0, fps=10.0, size=(320, 180), texts=[(2.0, 4.0, "EXIT 12")])
    return path


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
