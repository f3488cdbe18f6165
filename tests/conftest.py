"""Shared test setup: Triton's CPU interpreter, one seed, offline hubs, small thread pools.

TRITON_INTERPRET must be set before any `@triton.jit` function is defined, hence at conftest import.
"""

from __future__ import annotations

import os
import random

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PYTHONSAFEPATH", "1")  # subprocesses: keep the repo root (its kernels/ folder) off sys.path

import numpy as np
import pytest

SEED = 1234
SLOW_TIMEOUT = 3600  # seconds per slow-tier test; the default tier's limit is pyproject's `timeout`


def pytest_collection_modifyitems(config, items):
    """Hour-long runs and crash loops get an hour each; every other test keeps the short default limit."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


@pytest.fixture(autouse=True)
def seed() -> int:
    """Every test starts from the same RNG state."""
    random.seed(SEED)
    np.random.seed(SEED)
    try:
        import torch
    except ImportError:
        return SEED
    torch.manual_seed(SEED)
    return SEED


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module of small model forwards: they are mostly overhead, and two
    spinning OpenMP threads on a shared 2-core machine make them several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bank_args(tmp_path) -> list[str]:
    """CLI arguments for a fresh bank under tmp_path with the tiny preset and small, fast pipeline settings
    (the TOML a user would write; top-level `preset` is the older shape, still read)."""
    config = tmp_path / "longwatch.toml"
    config.write_text('preset = "tiny"\n[pipeline]\nclip_seconds = 2.0\nfps = 2.0\nmax_side = 160\n'
                      'answer_tokens = 4\nmin_new_tokens = 1\nocr = false\n')
    return ["--config", str(config), "--bank", str(tmp_path / "bank")]


@pytest.fixture(scope="session")
def free_port():
    """A function that returns a free TCP port on 127.0.0.1, for the servers tests start."""
    return _free_port


@pytest.fixture
def live_sender():
    """`send(path, loops=0)` serves a media file in real time as MPEG-TS over HTTP on loopback (`ffmpeg -re …
    -listen 1`; `loops` extra passes) and returns the URL once the sender listens. Senders die with the test."""
    import shutil
    import subprocess
    import time

    import psutil

    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg CLI to send a local live stream (apt-get install ffmpeg)")
    senders: list[subprocess.Popen] = []

    def send(path, loops: int = 0) -> str:
        url = f"http://127.0.0.1:{_free_port()}/live.ts"
        again = ["-stream_loop", str(loops)] if loops else []
        proc = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", *again, "-i", str(path),
                                 "-c", "copy", "-f", "mpegts", "-listen", "1", url], stdin=subprocess.DEVNULL)
        senders.append(proc)
        deadline = time.monotonic() + 15
        while not any(c.status == psutil.CONN_LISTEN for c in psutil.Process(proc.pid).net_connections("tcp")):
            assert proc.poll() is None and time.monotonic() < deadline, "the ffmpeg sender did not start listening"
            time.sleep(0.05)
        return url

    yield send
    for proc in senders:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def http_live_stream(tmp_path, live_sender):
    """Start a real live stream on loopback: `start(seconds)` encodes an FFmpeg test pattern and serves it in
    real time (see live_sender), returning the URL once the sender listens."""
    import subprocess

    made: list = []

    def start(seconds: float) -> str:
        video = tmp_path / f"live{len(made)}.ts"
        made.append(video)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=320x240:rate=25", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
                        "-g", "12", "-pix_fmt", "yuv420p", "-f", "mpegts", str(video)], check=True, timeout=120)
        return live_sender(video)

    return start
