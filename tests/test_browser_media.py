"""Files recorded by a real browser (Chromium's MediaRecorder on a canvas) ingest like any other video.

Browser WebM has no duration, no cues and a millisecond time base that containers report as a "1000 fps" rate;
such files were once refused as over the frame-rate limit. Each clip here shows its frame number as text, so the
frame times can be checked against what the page drew.
"""

from __future__ import annotations

import base64
import shutil

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SECONDS = 4.0
# A canvas redrawn every 40 ms, captured at 25 fps and recorded in 0.5 s chunks, as a web page's recorder does.
RECORDER = """<canvas id=c width=320 height=240></canvas><script>
async function record(ms, mime) {
  const c = document.getElementById('c'), g = c.getContext('2d'); let n = 0;
  const timer = setInterval(() => { g.fillStyle = 'hsl(' + (n * 7 % 360) + ',80%,50%)'; g.fillRect(0, 0, 320, 240);
    g.fillStyle = '#fff'; g.font = '40px sans-serif'; g.fillText('FRAME ' + n, 40, 130); n++; }, 40);
  const rec = new MediaRecorder(c.captureStream(25), {mimeType: mime}); const parts = [];
  rec.ondataavailable = e => parts.push(e.data); rec.start(500);
  await new Promise(r => setTimeout(r, ms)); rec.stop(); await new Promise(r => rec.onstop = r); clearInterval(timer);
  const bytes = new Uint8Array(await new Blob(parts, {type: mime}).arrayBuffer()); let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}</script>"""


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs: pip install playwright")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs a chromium binary on PATH (apt-get install chromium)")
    out, files = tmp_path_factory.mktemp("browser"), {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content(RECORDER)
            for codec in ("vp8", "vp9"):
                data = page.evaluate(f"record({SECONDS * 1000:.0f}, 'video/webm;codecs={codec}')")
                files[codec] = out / f"recording-{codec}.webm"
                files[codec].write_bytes(base64.b64decode(data))
        finally:
            browser.close()
    return files


@pytest.mark.parametrize("codec", ["vp8", "vp9"])
def test_browser_webm_probes_with_an_honest_frame_rate_and_ingests(recordings, codec, tmp_path):
    from longwatch.app.api import LongWatch
    from longwatch.app.config import load_config
    from longwatch.pipeline.probe import probe
    from longwatch.pipeline.sources import open_source

    path = recordings[codec]
    info = probe(path)
    assert info.codec == codec
    assert 0 < info.fps <= 60, f"a 25 fps canvas recording reported as {info.fps} fps"
    with open_source(path) as source:
        times = [f.t for f in source.frames(fps=5.0)]
    assert times == sorted(times)
    # The recorder ran for SECONDS; its frames must span about that long (start-up may lose a few frames).
    assert SECONDS - 1.0 <= times[-1] <= SECONDS + 0.5, times
    config = load_config(preset="tiny", pipeline={"clip_seconds": 1.0, "fps": 2.0, "max_side": 160, "ocr": False,
                                                   "answer_tokens": 4, "min_new_tokens": 1})
    with LongWatch.open(tmp_path / "bank", config=config) as lw:
        ref = lw.ingest(path)
        assert ref.complete and ref.clips >= 3
        assert max(c.t1 for c in lw.bank.clips(ref.video_id)) <= SECONDS + 0.5
