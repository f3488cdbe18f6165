"""The bad-input corpus: files a user may hand longwatch by mistake or with intent, and the typed error each must get.

Everything is generated (truncations of a fresh sample, crafted headers, renamed non-videos); nothing binary lives in git.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class BadInput:
    """`path` must fail probing/decoding with `expect` (an error class name from longwatch.errors)."""

    name: str
    path: str
    expect: str
    what: str
    at: str = "probe"  # "probe": probe()/open_source() raises; "decode": frames decode then the error is raised


def _mp4(path: Path, seconds: float = 3.0, faststart: bool = False) -> bytes:
    import av

    from longwatch.samples.videos import scene

    opts = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=opts) as out:
        s = out.add_stream("libx264", rate=10, options={"preset": "ultrafast", "g": "10"})
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(scene(i / 2, (160, 96)), format="rgb24")
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path.read_bytes()


def _moov_end(data: bytes) -> int:
    """Offset just past the top-level 'moov' box."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        if kind == b"moov":
            return pos + size
        pos += size
    raise ValueError("no moov box")


def _declared(path: Path, times: list[float], rate: float, size: tuple[int, int] = (64, 64)) -> None:
    """A tiny real H.264 stream whose frames sit at `times`, with `rate` fps declared by the container."""
    import av

    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(rate).limit_denominator(1000), options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.codec_context.time_base = tb
        for t in times:
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 128, np.uint8), format="rgb24")
            frame.pts, frame.time_base = int(t * 1000), tb
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def _huge_header(path: Path, side: int = 16384) -> None:
    """A Matroska file whose track header claims side x side raw frames, with one tiny packet of data.

    FFmpeg refuses to write such a header itself (its image size check), so a 256x256 one is patched in place:
    EBML PixelWidth (0xB0) and PixelHeight (0xBA) with 2-byte values.
    """
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("rawvideo", rate=1)
        s.width, s.height, s.pix_fmt = 256, 256, "gray"
        out.start_encoding()  # writes the header and fixes the stream's time base; no frame is ever encoded
        packet = av.Packet(bytes(4096))
        packet.stream, packet.pts, packet.dts, packet.time_base = s, 0, 0, s.time_base
        out.mux(packet)
    data = path.read_bytes()
    claim = side.to_bytes(2, "big")
    for element in (b"\xb0", b"\xba"):
        old = element + b"\x82\x01\x00"
        if data.count(old) != 1:
            raise RuntimeError(f"cannot find the Matroska frame size element {element.hex()} in {path}")
        data = data.replace(old, element + b"\x82" + claim)
    path.write_bytes(data)


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("aac", rate=16000)
        s.layout = "mono"
        t = np.arange(16000) / 16000
        frame = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                           format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode():
            out.mux(p)


def make_bad_inputs(out_dir: str | Path, seed: int = 0) -> list[BadInput]:
    """Write the corpus into `out_dir` (plus `corpus.json`) and return what each file must raise."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    good = _mp4(out / "good.mp4")
    fast = _mp4(out / "good_faststart.mp4", faststart=True)
    items: list[BadInput] = []

    def add(name: str, data: bytes | None, expect: str, what: str, at: str = "probe") -> None:
        path = out / name
        if data is not None:
            path.write_bytes(data)
        items.append(BadInput(name.rstrip("/"), str(path), expect, what, at))

    add("empty.mp4", b"", "CorruptVideo", "a zero-byte file")
    add("truncated_header_only.mp4", fast[:_moov_end(fast)], "CorruptVideo", "an MP4 cut right after its header")
    add("truncated_mid.mp4", good[:len(good) // 2], "CorruptVideo", "an MP4 cut mid-stream (index at the end)")
    add("truncated_mid_faststart.mp4", fast[:len(fast) * 2 // 3], "CorruptVideo",
        "an MP4 cut mid-stream (index at the front): frames before the cut decode, then the error", at="decode")
    add("random.mp4", rng.integers(0, 256, 65536, dtype=np.uint8).tobytes(), "UnsupportedVideo",
        "random bytes named .mp4")
    _audio_only(out / "audio_only.mp4")
    add("audio_only.mp4", None, "UnsupportedVideo", "an audio-only MP4")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(out / "image.mp4", format="PNG")
    add("image.mp4", None, "UnsupportedVideo", "a PNG image renamed .mp4")
    add("notes.mp4", b"These are my lecture notes.\nNot a video at all.\n", "UnsupportedVideo", "a text file")
    add("playlist.mp4", f"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3.0,\n{out / 'good.mp4'}\n"
        "#EXTINF:3.0,\nhttp://127.0.0.1:9/secret.ts\n#EXT-X-ENDLIST\n".encode(), "UnsupportedVideo",
        "an HLS playlist named .mp4 (points at a local file and a URL)")
    add("concat.mp4", f"ffconcat version 1.0\nfile '{out / 'good.mp4'}'\nfile '/etc/passwd'\n".encode(),
        "UnsupportedVideo", "an FFmpeg concat list named .mp4")
    _huge_header(out / "huge_frame.mkv")
    add("huge_frame.mkv", None, "VideoTooLarge", "a header claiming 16384x16384 frames")
    _huge_header(out / "huge_frame_15k.mkv", side=15000)
    add("huge_frame_15k.mkv", None, "VideoTooLarge", "a header claiming 15000x15000 frames (FFmpeg accepts the size)")
    _declared(out / "too_long.mkv", [0.0, 13 * 3600.0], rate=25)
    add("too_long.mkv", None, "VideoTooLarge", "a declared duration of 13 h (limit 12 h)")
    _declared(out / "too_many_frames.mkv", [0.0, 1 / 200, 11 * 3600.0], rate=200)
    add("too_many_frames.mkv", None, "VideoTooLarge", "11 h at 200 fps declared: duration x fps over the frame limit")
    (out / "a_directory.mp4").mkdir(exist_ok=True)
    add("a_directory.mp4/", None, "VideoNotFound", "a directory")
    add("missing.mp4", None, "VideoNotFound", "a path that does not exist")
    (out / "missing.mp4").unlink(missing_ok=True)
    mkv = _mkv_sample(out / "good.mkv")
    add("truncated_mid.mkv", mkv[:len(mkv) // 2], "CorruptVideo",
        "a Matroska file cut mid-stream: frames before the cut decode, then the error", at="decode")
    (out / "corpus.json").write_text(json.dumps([asdict(i) for i in items], indent=1))
    return items


def _mkv_sample(path: Path) -> bytes:
    from longwatch.samples.videos import make_sample

    make_sample(path, 6.0, fps=10, size=(160, 96))
    return path.read_bytes()
