"""A hostile user against the real server, API and CLI: live sources that read or listen on the server, crafted
video ids that walk out of the bank, paths that hang or crash ingest, and rejected uploads left behind.

One gradio server per module (tiny preset, a real bank two folders below a planted victim file); the CLI runs
in-process through `cli.main` where timing matters and as a real subprocess where a traceback could leak.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

gradio = pytest.importorskip("gradio", reason="the UI needs: pip install 'longwatch[ui]'")
gradio_client = pytest.importorskip("gradio_client", reason="needs: pip install gradio_client")

from longwatch.app import cli  # noqa: E402
from longwatch.app.api import LongWatch  # noqa: E402
from longwatch.app.config import LiveConfig, UIConfig, load_config  # noqa: E402
from longwatch.memory.records import Gap, InvalidVideoId  # noqa: E402
from longwatch.errors import StreamError, UnsupportedVideo  # noqa: E402

PIPELINE = {"clip_seconds": 2.0, "fps": 2.0, "max_side": 160, "answer_tokens": 4, "min_new_tokens": 1, "ocr": False}
SECRET = "root:x:0:0:TOP-SECRET-LINE"
# Each was accepted before: separators, parent folders, wildcards, NUL, a leading dot, over-long, empty-ish.
BAD_IDS = ["../../victim/thesis", "*", "..", "a/b", "x\x00y", ".hidden", "a" * 200, "two words", "?"]


def _site(root: Path) -> tuple[Path, Path]:
    """A bank path at <root>/site/bank and a victim file at <root>/site/victim/thesis.txt: where the crafted id
    '../../victim/thesis' pointed from the bank's uploads folder."""
    victim = root / "site" / "victim" / "thesis.txt"
    victim.parent.mkdir(parents=True)
    victim.write_text("four years of work\n")
    return root / "site" / "bank", victim


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A bank at <root>/site/bank holding one uploaded video, a victim file at <root>/site/victim (where
    '../../victim/thesis' pointed from the uploads folder) and a secret text file on the server.

    The upload is registered as the UI's ingest starts it (store_upload, then the bank's video row) without
    decoding it: nothing here needs its memories, and the module's setup stays well inside the time limit."""
    from longwatch.samples.videos import make_sample

    root = tmp_path_factory.mktemp("hostile")
    bank, victim = _site(root)
    secret = root / "secret.txt"
    secret.write_text(SECRET + "\nmore secrets\n")
    sample = root / "lecture.mp4"
    make_sample(sample, 2.0, fps=10.0, size=(160, 120), texts=[(0.0, 2.0, "EXIT 12")])
    config = load_config(preset="tiny", pipeline=dict(PIPELINE))
    with LongWatch.open(bank, config=config) as lw:
        video_id, copy = lw.store_upload(sample)
        lw.bank.add_video(video_id, str(copy))
        yield {"lw": lw, "bank": bank, "victim": victim, "secret": secret, "sample": sample,
               "video_id": video_id, "copy": copy}


@pytest.fixture(scope="module")
def client(world, free_port):
    from longwatch.ui.app import create_app, launch

    lw = world["lw"]
    app = create_app(lw)
    launch(app, lw, UIConfig(port=free_port(), max_upload_mb=5), prevent_thread_lock=True, quiet=True)
    try:
        yield gradio_client.Client(app.local_url, download_files=False, verbose=False)
    finally:
        app.close()


def _untouched(world) -> None:
    """The planted file outside the bank and the other video's upload (and its memories) survived."""
    assert world["victim"].read_text() == "four years of work\n"
    assert world["copy"].is_file() and world["copy"].read_bytes() == world["sample"].read_bytes()
    assert [v.video_id for v in world["lw"].videos()] == [world["video_id"]]


def _error(call) -> str:
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


# ---- live sources from the web UI ---------------------------------------------------------------------------

def test_live_tab_refuses_local_sources_without_reading_or_confirming_them(world, client):
    secret, sample = world["secret"], world["sample"]
    missing = secret.with_name("no-such-file.txt")
    specs = [str(secret), "/etc/passwd", str(sample), f"file://{secret}", f"file:{secret}", f"FILE:{sample}",
             f"../../{secret.name}", f"concat:{sample}|{sample}", "pipe:0", f"subfile,,start,0,end,0,,:{secret}",
             "data:video/mp4;base64,AAAA", "webcam:0", f"http:///{secret}", f"crypto:{secret}"]
    for spec in specs:
        message = _error(lambda: client.predict(spec, api_name="/live_start"))
        assert "not allowed" in message, (spec, message)
        assert "TOP-SECRET" not in message and "root:x" not in message and "more secrets" not in message
    # The same answer for a path that exists and one that does not: the server is not an existence oracle.
    assert (_error(lambda: client.predict(str(secret), api_name="/live_start"))
            == _error(lambda: client.predict(str(missing), api_name="/live_start")))
    _untouched(world)  # the server's own video file was not ingested as a "stream"
    assert client.predict(api_name="/live_stats") == "No stream is being watched."


def test_live_tab_never_opens_a_listening_socket(world, client, free_port):
    me = psutil.Process()  # the server runs in this process

    def listening(port: int) -> bool:
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in me.net_connections("tcp"))

    # http/rtsp to the server's own loopback are refused by default too (allow_loopback); the refusal comes
    # before FFmpeg is involved, and no listener appears at any moment of the request.
    for template, refused in [("tcp://127.0.0.1:{}?listen=1", True), ("tcp://0.0.0.0:{}?listen=2", True),
                              ("http://127.0.0.1:{}/live.ts?listen=1", True),
                              ("rtsp://127.0.0.1:{}/cam?listen=1", True)]:
        port = free_port()
        job = client.submit(template.format(port), api_name="/live_start")
        deadline = time.monotonic() + 15
        while not job.done():  # watch while the request is in flight: a listener exists only during it
            assert not listening(port), template
            assert time.monotonic() < deadline, f"{template}: no answer within 15 s"
            time.sleep(0.02)
        assert not listening(port)
        message = _error(lambda: job.result(timeout=5))
        assert ("not allowed" in message) == refused and "StreamError" in message, (template, message)
    _untouched(world)


def test_the_python_api_trusts_its_owner_but_untrusted_sources_follow_the_policy(world):
    lw, secret = world["lw"], world["secret"]
    with pytest.raises(StreamError, match="not allowed"):
        lw.watch(str(secret), untrusted=True)
    with pytest.raises(StreamError, match="not allowed"):
        lw.watch("udp://@:1234", untrusted=True)  # binds a port on the server: only where configured
    # An owner who allows local sources still never shows a remote user the bytes of a server file.
    with pytest.raises(UnsupportedVideo) as info:
        lw.watch(str(secret), untrusted=True, live=LiveConfig(allow_local=True))
    assert "withheld" in str(info.value) and "TOP-SECRET" not in str(info.value)
    # The owner's own call (CLI `watch`, scripts) reads the file and says what it found.
    with pytest.raises(UnsupportedVideo, match="TOP-SECRET"):
        lw.watch(str(secret))
    assert LiveConfig(allowed_schemes=["udp"]).check_source("udp://@:1234") == {"protocol_whitelist": "udp"}
    assert LiveConfig(allow_webcam=True).check_source("webcam:0") is None
    # Network streams are held to their own protocols, so a redirect or playlist cannot reach file: or pipe:.
    assert "file" not in LiveConfig().check_source("https://cam.example/live.m3u8")["protocol_whitelist"]
    with pytest.raises(ValueError, match="allow_local"):
        LiveConfig(allowed_schemes=["tcp"])
    _untouched(world)


# ---- video ids ----------------------------------------------------------------------------------------------

def test_ui_refuses_crafted_ids_for_delete_show_and_ask(world, client):
    video_id = world["video_id"]
    for bad in BAD_IDS:
        assert "InvalidVideoId" in _error(lambda: client.predict(bad, [], api_name="/delete")), repr(bad)
        assert "InvalidVideoId" in _error(lambda: client.predict([bad], api_name="/show")), repr(bad)
        assert "InvalidVideoId" in _error(lambda: client.predict("what?", [bad], [], api_name="/ask")), repr(bad)
        _untouched(world)
    rows, _, _ = client.predict([], api_name="/videos")
    assert [r[0] for r in rows["data"]] == [video_id]


def test_api_refuses_crafted_ids_at_every_entry_point(world):
    lw, sample = world["lw"], world["sample"]
    for bad in BAD_IDS:
        for call in (lambda: lw.ingest(sample, bad), lambda: lw.delete(bad), lambda: lw.video(bad),
                     lambda: lw.ask("what?", [bad]), lambda: lw.watch(iter([]), video_id=bad)):
            with pytest.raises(InvalidVideoId):
                call()
        _untouched(world)
    with pytest.raises(InvalidVideoId):
        lw.ingest(sample, "")  # an empty --id is not "no id"


# ---- uploads ------------------------------------------------------------------------------------------------

def test_rejected_upload_leaves_gradio_cache_and_the_server_keeps_serving(world, tmp_path, client):
    from gradio.utils import get_upload_folder

    name = f"notes-{uuid.uuid4().hex[:8]}"
    fake = tmp_path / f"{name}.mp4"
    fake.write_text("shopping list\n")
    assert "UnsupportedVideo" in _error(lambda: client.predict(gradio_client.handle_file(str(fake)), [],
                                                               api_name="/ingest"))
    assert not list(Path(get_upload_folder()).rglob(f"{name}*"))  # the copy Gradio handed us is gone
    assert not list(world["lw"].uploads_dir.glob(f"{name}*"))
    rows, _, _ = client.predict([], api_name="/videos")  # still serving
    assert [r[0] for r in rows["data"]] == [world["video_id"]]


def test_gaps_show_in_the_api_and_the_ui_library(world, client):
    lw, video_id = world["lw"], world["video_id"]
    assert lw.video(video_id).state == "partial" and lw.video(video_id).gaps == ()
    lw.bank.add_gap(video_id, 0.5, 1.5, "damaged packets")  # what the ingest loop records for a damaged range
    assert lw.video(video_id).state == "partial with gaps"
    lw.bank.mark_complete(video_id)
    ref = lw.video(video_id)
    assert ref.state == "complete with gaps" and ref.gaps == (Gap(0.5, 1.5, "damaged packets"),)
    assert ref.to_dict()["gaps"] == [{"t0": 0.5, "t1": 1.5, "reason": "damaged packets"}]
    rows, _, _ = client.predict([], api_name="/videos")
    (row,) = rows["data"]
    assert rows["headers"][3:5] == ["state", "gaps"]
    assert row[3] == "complete with gaps" and row[4] == "[00:00:00\u201300:00:02] damaged packets"


# ---- the CLI ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_bank(tmp_path_factory):
    """A bank for CLI runs (the module's server holds the other one's writer lock) with one uploaded video,
    a victim file two folders above its uploads, and a FIFO, a folder and a dangling link named like videos."""
    from longwatch.samples.videos import make_sample

    root = tmp_path_factory.mktemp("cli")
    bank, victim = _site(root)
    sample = root / "clip.mp4"
    make_sample(sample, 1.0, fps=10.0, size=(160, 120))
    with LongWatch.open(bank, config=load_config(), load_models=False) as lw:
        video_id, copy = lw.store_upload(sample)
        lw.bank.add_video(video_id, str(copy))
    fifo = root / "x.mp4"
    os.mkfifo(fifo)
    (root / "folder.mp4").mkdir()
    (root / "dangling.mp4").symlink_to(root / "gone.mp4")
    return {"root": root, "bank": bank, "victim": victim, "copy": copy, "sample": sample, "fifo": fifo,
            "args": ["--bank", str(bank)]}


def _cli_untouched(cli_bank) -> None:
    assert cli_bank["victim"].read_text() == "four years of work\n"
    assert cli_bank["copy"].read_bytes() == cli_bank["sample"].read_bytes()


def _main(capsys, argv: list[str], within: float = 10.0) -> tuple[int, str]:
    """cli.main in a thread with a deadline, so a regression that blocks (a FIFO) fails instead of hanging."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", cli.main(argv)), daemon=True)
    thread.start()
    thread.join(within)
    return result.get("code", -1), capsys.readouterr().err


def test_cli_ingest_refuses_a_fifo_at_once_and_bad_paths_with_typed_errors(capsys, cli_bank):
    root, args = cli_bank["root"], cli_bank["args"]
    started = time.monotonic()
    code, err = _main(capsys, ["ingest", str(cli_bank["fifo"]), "--no-progress", *args], within=5.0)
    took = time.monotonic() - started
    if code == -1:  # release the blocked reader so the thread ends
        os.close(os.open(cli_bank["fifo"], os.O_WRONLY | os.O_NONBLOCK))
    assert code == 3 and "UnsupportedVideo" in err and "pipe" in err and took < 1.0, (code, err, took)
    for name, found in [("folder.mp4", "a directory"), ("dangling.mp4", "dangling"), ("nope.mp4", "no such file")]:
        code, err = _main(capsys, ["ingest", str(root / name), "--no-progress", *args])
        assert code == 3 and "VideoNotFound" in err and found in err and "Traceback" not in err, (name, err)


@pytest.mark.parametrize("name", ["x.mp4", "folder.mp4", "dangling.mp4"])
def test_cli_subprocess_prints_one_line_not_a_traceback(cli_bank, name):
    proc = subprocess.run([sys.executable, "-m", "longwatch", "ingest", str(cli_bank["root"] / name),
                           "--no-progress", *cli_bank["args"]], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("longwatch: error: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_cli_refuses_crafted_ids_for_ingest_and_rm(capsys, cli_bank):
    args = cli_bank["args"]
    for bad in [b for b in BAD_IDS if "\x00" not in b]:  # argv cannot carry NUL
        code, err = _main(capsys, ["ingest", str(cli_bank["sample"]), "--id", bad, "--no-progress", *args])
        assert code == 5 and "InvalidVideoId" in err, (bad, err)
        code, err = _main(capsys, ["videos", "rm", bad, *args])
        assert code == 5 and "InvalidVideoId" in err, (bad, err)
        _cli_untouched(cli_bank)
    proc = subprocess.run([sys.executable, "-m", "longwatch", "videos", "rm", "../../victim/thesis", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 5 and "InvalidVideoId" in proc.stderr and "Traceback" not in proc.stderr
    _cli_untouched(cli_bank)


def test_web_users_cannot_point_the_server_at_itself_but_lan_cameras_stay_allowed():
    policy = LiveConfig()
    for url in ["http://127.0.0.1:8080/admin", "http://localhost:7860/", "rtsp://[::1]/cam", "http://0.0.0.0:80/",
                "http://169.254.169.254/latest/meta-data/", "https://127.1.2.3/x", "rtsp://[fe80::1%25eth0]/x",
                "http://[::ffff:127.0.0.1]:7860/", "http://2130706433:7860/", "http://0x7f.1:7860/"]:
        with pytest.raises(StreamError, match="server itself or its link"):
            policy.check_source(url)
    for url in ["rtsp://192.168.1.20:554/stream1", "http://10.0.0.7/cam.mjpg", "rtsps://172.16.5.5/live"]:
        assert policy.check_source(url)["protocol_whitelist"]
    assert LiveConfig(allow_loopback=True).check_source("http://127.0.0.1:8080/live.ts")

