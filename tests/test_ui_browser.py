"""The web UI in headless Chromium: upload with progress, ask, click a time chip, read the player's currentTime.

Also: bad uploads end in an error toast while the app keeps working, and /gradio_api/file= serves nothing outside
the app's directories. Screenshots go to artifacts/ (git-ignored) for CI to keep.
"""

from __future__ import annotations

import http.client
import os
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
PIPELINE = {"clip_seconds": 2.0, "fps": 2.0, "max_side": 160, "answer_tokens": 4, "min_new_tokens": 1, "ocr": False}
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
MAX_UPLOAD_MB = 1
# A stored timeline as the lanes write it: (kind, t0, t1, text, context).
TIMELINE = [("speech", 0.5, 1.8, "Welcome to the harbour safety briefing", ""),
            ("subtitle", 2.2, 3.6, "The ferry QX2207 leaves at 9:30", ""),
            ("ocr", 4.0, 5.5, "Q3 | 4.2M", "Quarter | Cost"),
            ("speech", 6.1, 7.6, "Pier seven closes for repairs", ""),
            ("caption", 6.5, 7.9, "<b>a crane</b> ${document.title = 'pwned'}", "")]  # text a video may carry


@pytest.fixture(scope="module")
def served(tmp_path_factory, free_port):
    pytest.importorskip("gradio", reason="the UI needs: pip install 'longwatch[ui]'")
    from longwatch.app.api import LongWatch
    from longwatch.app.config import UIConfig, load_config
    from longwatch.ui.app import create_app, launch

    config = load_config(preset="tiny", pipeline=dict(PIPELINE))
    with LongWatch.open(tmp_path_factory.mktemp("bank"), config=config) as lw:
        app = create_app(lw)
        launch(app, lw, UIConfig(port=free_port(), max_upload_mb=MAX_UPLOAD_MB), prevent_thread_lock=True,
               quiet=True)
        try:
            yield lw, app.local_url.rstrip("/")
        finally:
            app.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs: pip install playwright")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs a chromium binary on PATH (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, served):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(served[1] + "/")
    page.wait_for_selector("#upload input[type=file]", state="attached")
    yield page
    page.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    from longwatch.samples.videos import make_sample

    path = tmp_path_factory.mktemp("videos") / "harbour.mp4"
    make_sample(path, 8.0, fps=10.0, size=(320, 180), texts=[(4.0, 6.0, "PIER 7")])
    return path


def plant_briefing(lw, folder: Path) -> str:
    """A video in `lw`'s bank whose clips carry the evidence above (real MemoryBank, the preset's real MiniLM
    vectors), committed as ingest commits it: each piece with the clip its t0 falls in. Returns its id."""
    from longwatch.memory import ClipRecord
    from longwatch.memory.records import Evidence
    from longwatch.samples.videos import make_sample

    path = folder / "briefing.mp4"
    make_sample(path, 8.0, fps=10.0, size=(320, 180), texts=[(2.0, 4.0, "FERRY")])
    video_id, copy = lw.store_upload(path)
    embed = lw.models.embedder.embed
    lw.bank.add_video(video_id, source=str(copy))
    for i in range(4):
        t0, t1 = 2.0 * i, 2.0 * (i + 1)
        evidence = [Evidence(*line) for line in TIMELINE if t0 <= line[1] < t1]
        vectors = {"text": embed([" ".join(e.text for e in evidence)])[0],
                   "evidence": embed([f"{e.context} {e.text}".strip() for e in evidence])}
        lw.bank.add(ClipRecord(video_id, i, t0, t1, evidence=evidence), vectors)
    lw.bank.mark_complete(video_id)
    return video_id


@pytest.fixture(scope="module")
def briefing(served, tmp_path_factory) -> str:
    return plant_briefing(served[0], tmp_path_factory.mktemp("videos"))


def _upload_and_wait(page, path: Path) -> str:
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.wait_for_function("document.querySelector('#ingest-status').innerText.includes('100%')", timeout=180_000)
    return page.locator("#ingest-status").inner_text()


def test_upload_ask_and_a_time_chip_seeks_the_player(page, sample):
    seen: list[str] = []  # progress as the browser showed it, sampled while the ingest runs
    page.locator("#upload input[type=file]").set_input_files(str(sample))
    deadline = time.monotonic() + 180
    while "100%" not in (text := page.locator("#ingest-status").inner_text()):
        assert time.monotonic() < deadline, f"ingest did not finish; last status: {text}"
        seen.append(text)
        page.wait_for_timeout(100)
    assert any("Decoding and ingesting" in s for s in seen)
    assert "4 clips" in text
    video_id = text.split()[1].rstrip(":")  # "Ingested harbour-1a2b3c: 100% · ..."
    page.wait_for_function(f"document.querySelector('#transcript [data-shown]')?.dataset.shown === {video_id!r}")
    page.wait_for_function("(() => { const v = document.querySelector('#player video');"
                           " return v && v.readyState >= 1 && v.duration > 7; })()")

    page.locator("#question textarea").fill("When is the pier number on screen?")
    page.locator("#question textarea").press("Enter")
    chip = page.locator("#chips .lw-chip").first
    chip.wait_for()
    assert page.locator("#chat").inner_text().count("[00:00:0") >= 1  # the reply lists its time ranges
    target = float(chip.get_attribute("data-t"))
    assert 0.0 <= target < 8.0
    page.evaluate("document.querySelector('#player video').currentTime = 7.5")  # start away from the target
    chip.click()
    page.wait_for_function(f"Math.abs(document.querySelector('#player video').currentTime - {target}) < 0.25",
                           timeout=10_000)
    assert page.locator("#thumbs img").count() == page.locator("#chips .lw-chip").count()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_answer.png"), full_page=True)


def test_transcript_lines_seek_the_player_and_the_filter_narrows_them(briefing, page):
    page.locator("#videos input").click()
    page.locator("#videos [role=option]", has_text=briefing).click()
    page.wait_for_function("document.querySelectorAll('#transcript .lw-line').length === 5")
    page.wait_for_function("(() => { const v = document.querySelector('#player video');"
                           " return v && v.readyState >= 1 && v.duration > 7; })()")
    kinds = [k.inner_text() for k in page.locator("#transcript .lw-kind").all()]
    assert kinds == ["Said", "Subtitle", "On screen", "Said", "Caption"]
    hostile = page.locator("#transcript .lw-line", has_text="a crane").inner_text()
    assert "<b>a crane</b> ${document.title = 'pwned'}" in hostile  # shown as text, never run or parsed
    assert page.title() == "longwatch" and page.locator("#transcript b").count() == 0
    line = page.locator("#transcript .lw-line", has_text="Pier seven")
    assert "00:00:06" in line.inner_text()
    page.evaluate("document.querySelector('#player video').currentTime = 0.2")
    line.click()
    page.wait_for_function("Math.abs(document.querySelector('#player video').currentTime - 6.1) < 1",
                           timeout=10_000)

    page.locator("#transcript-filter textarea").fill("qx2207")
    page.wait_for_function("document.querySelectorAll('#transcript .lw-line').length === 1")
    page.locator("#transcript .lw-line").click()
    page.wait_for_function("Math.abs(document.querySelector('#player video').currentTime - 2.2) < 1",
                           timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_transcript.png"), full_page=True)

    # Deleting the video in the player takes its transcript and the player with it.
    page.get_by_role("tab", name="Library").click()
    page.locator("#delete-id input").click()
    page.locator("#delete-id [role=option]", has_text=briefing).click()
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("tab", name="Ask").click()
    page.wait_for_function("document.querySelector('#transcript').innerText.includes('Pick or ingest')")
    page.wait_for_function("document.querySelector('#player video') === null")


def _toast_with(page, words: str) -> str:
    toast = page.locator(".toast-body", has_text=words).first
    toast.wait_for(timeout=60_000)
    return toast.inner_text()


def test_bad_uploads_show_an_error_toast_and_the_app_keeps_working(page, tmp_path, sample):
    notes = tmp_path / "notes.mp4"
    notes.write_text("minutes of the meeting, not a video\n")
    page.locator("#upload input[type=file]").set_input_files(str(notes))
    assert "notes.mp4" in _toast_with(page, "UnsupportedVideo")
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom((MAX_UPLOAD_MB + 1) * 2**20))
    page.wait_for_function("document.querySelector('#upload input[type=file]') !== null")
    page.locator("#upload input[type=file]").set_input_files(str(big))
    assert "big.mp4" in _toast_with(page, "maximum")
    page.wait_for_function("document.querySelector('#upload input[type=file]') !== null")
    assert "100%" in _upload_and_wait(page, sample)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui_bad_uploads.png"))


def _get(base: str, raw_path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (no client-side normalisation of ../ or %2e%2e)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("GET", raw_path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_file_route_serves_nothing_outside_the_app_directories(served, tmp_path, sample):
    lw, base = served
    video_id, copy = lw.store_upload(sample)
    status, body = _get(base, "/gradio_api/file=" + urllib.parse.quote(str(copy)))
    assert status == 200 and body == copy.read_bytes()  # control: the bank's own uploads are served
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7781\n")
    bank_file = next(p for p in lw.root.iterdir() if p.is_file())
    up = "../" * 12
    targets = {"/etc/passwd": b"root:", str(secret): b"TOP-SECRET-7781", str(bank_file): bank_file.read_bytes()[:64]}
    for path, marker in targets.items():
        rel = path.lstrip("/")
        forms = [path, up + rel, str(lw.uploads_dir) + "/" + up + rel,
                 urllib.parse.quote(path, safe=""), urllib.parse.quote(up + rel, safe=""),
                 up.replace("..", "%2e%2e") + rel, str(lw.uploads_dir) + "/" + up.replace("/", "%2F") + rel]
        for form in forms:
            status, body = _get(base, "/gradio_api/file=" + form)
            assert marker not in body, f"{form} returned the content of {path} (HTTP {status})"
            assert status in (400, 403, 404), f"{form}: HTTP {status}"


@pytest.fixture(scope="module")
def served_offline(tmp_path_factory, free_port):
    """The text-only offline preset (real MiniLM, real SmolLM2-135M) with the briefing planted: its answers quote
    evidence, and the language model writes a sentence after the quotes."""
    pytest.importorskip("gradio", reason="the UI needs: pip install 'longwatch[ui]'")
    from longwatch.app.api import LongWatch
    from longwatch.app.config import UIConfig, load_config
    from longwatch.ui.app import create_app, launch

    config = load_config(preset="offline", pipeline=dict(PIPELINE, answer_tokens=16))
    with LongWatch.open(tmp_path_factory.mktemp("offline-bank"), config=config) as lw:
        video_id = plant_briefing(lw, tmp_path_factory.mktemp("videos"))
        app = create_app(lw)
        launch(app, lw, UIConfig(port=free_port()), prevent_thread_lock=True, quiet=True)
        try:
            yield lw, app.local_url.rstrip("/"), video_id
        finally:
            app.close()


def test_the_quotes_show_in_the_chat_before_the_generated_sentence(browser, served_offline):
    """Issue 15: the chat shows the quotes while SmolLM2 writes. The real model is held at its start until the
    page has shown the quotes (a gate, not a sleep), so the order is checked, not raced; then it writes."""
    import threading

    lw, url, video_id = served_offline
    answerer = lw.models.answerer
    generate, started, go = answerer.generate, threading.Event(), threading.Event()

    def gated_generate(*args, **kwargs):  # the real model, held until the page has shown the quotes
        started.set()
        go.wait(timeout=120)
        return generate(*args, **kwargs)

    answerer.generate = gated_generate
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        page.goto(url + "/")
        page.wait_for_selector("#question textarea")
        page.locator("#question textarea").fill("What closes for repairs?")
        page.locator("#question textarea").press("Enter")
        page.wait_for_function("document.querySelector('#chat').innerText.includes('Pier seven closes for repairs')")
        early = page.locator("#chat").inner_text()
        assert started.is_set() and "Writing the answer" in early and "00:00:06" in early and "Sources:" not in early
        assert page.locator("#chips .lw-chip").count() >= 1  # its time chip is there to click at once
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui_quotes_first.png"), full_page=True)
        go.set()
        page.wait_for_function("(() => { const t = document.querySelector('#chat').innerText;"
                               " return t.includes('Sources:') && !t.includes('Writing the answer'); })()")
        final = page.locator("#chat").inner_text()
        assert "Pier seven closes for repairs" in final and "00:00:06" in final
        page.wait_for_function("document.querySelectorAll('#thumbs img').length >= 1")
        page.screenshot(path=str(ARTIFACTS / "ui_quotes_then_answer.png"), full_page=True)
    finally:
        go.set()
        answerer.generate = generate
        page.close()
