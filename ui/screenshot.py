"""Regenerate the README's UI screenshot: serve the UI, upload a video in Chromium, ask, click a chip, capture.

Run: `python -m longwatch.ui.screenshot docs/ui.png [--preset offline] [--video FILE] [--question ...]` (needs
chromium + playwright). Without --video the demo's generated briefing is uploaded; a spoken video (e.g. from
samples/speech.py) shows the transcript panel and `Said` quotes.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def capture(out: Path, preset: str, question: str, video: Path | None = None) -> Path:
    from playwright.sync_api import sync_playwright

    from longwatch.app import DEMO_SCRIPT, LongWatch, UIConfig, load_config, make_sample
    from longwatch.ui.app import create_app, launch

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs a chromium binary on PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        if video is None:
            video = Path(tmp) / "briefing.mp4"
            make_sample(video, 60.0, fps=10.0, size=(640, 360), texts=DEMO_SCRIPT)
        with LongWatch.open(Path(tmp) / "bank", config=load_config(preset=preset)) as lw:
            app = create_app(lw)
            launch(app, lw, UIConfig(port=_free_port()), prevent_thread_lock=True, quiet=True)
            try:
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
                    page = browser.new_page(viewport={"width": 1280, "height": 1000})
                    page.set_default_timeout(1_800_000)  # the offline answerer on a busy 2-core box takes minutes
                    page.goto(app.local_url)
                    page.locator("#upload input[type=file]").set_input_files(str(video))
                    page.wait_for_function("document.querySelector('#ingest-status').innerText.includes('100%')")
                    page.locator("#question textarea").fill(question)
                    page.locator("#question textarea").press("Enter")
                    page.locator("#chips .lw-chip").first.wait_for()
                    page.locator("#chips .lw-chip").first.click()
                    # Quotes stream in first; wait for the finished answer and its thumbnails before capturing.
                    page.wait_for_function("!document.querySelector('#chat').innerText.includes('Writing the answer')"
                                           " && document.querySelectorAll('#thumbs img').length >= 1")
                    page.wait_for_function("[...document.querySelectorAll('#thumbs img')].every(i => i.complete)")
                    page.wait_for_selector("#transcript [data-shown]")
                    page.wait_for_timeout(1000)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(out), full_page=True)
                    browser.close()
            finally:
                app.close()
    return out


def main(argv: list[str] | None = None) -> int:
    from longwatch.app import DEMO_QUESTIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--preset", default="offline")
    parser.add_argument("--question", default=DEMO_QUESTIONS[0])
    parser.add_argument("--video", type=Path, help="upload this video instead of the generated demo briefing")
    args = parser.parse_args(argv)
    path = capture(args.out, args.preset, args.question, args.video)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
