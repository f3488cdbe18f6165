"""Validate a video file before any heavy decode: path, magic bytes, MP4 box structure, container allow-list, limits.

FFmpeg only ever sees the file in a separate process under a timeout, so a hostile file cannot hang or crash the caller.
"""

from __future__ import annotations

import atexit
import os
import re
import stat
import threading
from typing import NamedTuple
from dataclasses import dataclass
from pathlib import Path

from longwatch.errors import CorruptVideo, UnsupportedVideo, VideoNotFound, VideoTooLarge
from longwatch.pipeline.frames import VideoInfo

_HOURS = 3600.0
_REFUSED_SIZE = re.compile(r"Picture size (\d+)x(\d+) is invalid")


@dataclass(frozen=True)
class VideoLimits:
    """What a file may declare. Defaults admit 8K, 12-hour lectures, 480 fps slow motion and large files."""

    max_pixels: int = 7680 * 4320  # one 8K frame
    max_duration: float = 12 * _HOURS
    max_fps: float = 480.0
    max_frames: int = int(12 * _HOURS * 120)  # 12 h at 120 fps: more frames than that is a lie or a bomb
    max_bytes: int = 256 << 30
    timeout: float = 30.0  # seconds the isolated probe (open + first frame) may take

    def __post_init__(self) -> None:
        for name in ("max_pixels", "max_duration", "max_fps", "max_frames", "max_bytes", "timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"VideoLimits.{name} must be positive, got {getattr(self, name)}")


# (magic prefix, offset, description) of things that are not video containers.
_NOT_VIDEO = [
    (b"#EXTM3U", 0, "an HLS playlist (#EXTM3U)"), (b"ffconcat", 0, "an FFmpeg concat list (ffconcat)"),
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG image"), (b"\xff\xd8\xff", 0, "a JPEG image"), (b"GIF8", 0, "a GIF image"),
    (b"WEBP", 8, "a WebP image"), (b"WAVE", 8, "a WAV audio file"), (b"ID3", 0, "an MP3 audio file (ID3 tag)"),
    (b"fLaC", 0, "a FLAC audio file"), (b"%PDF", 0, "a PDF document"), (b"PK\x03\x04", 0, "a ZIP archive"),
    (b"\x1f\x8b", 0, "a gzip archive"), (b"\x7fELF", 0, "an executable (ELF)"), (b"Rar!", 0, "a RAR archive"),
    (b"7z\xbc\xaf", 0, "a 7-Zip archive"), (b"BM", 0, "a BMP image"),
]
_VIDEO = [(b"ftyp", 4, "MP4/QuickTime"), (b"\x1a\x45\xdf\xa3", 0, "Matroska/WebM"), (b"AVI ", 8, "AVI"),
          (b"FLV", 0, "FLV"), (b"\x30\x26\xb2\x75", 0, "ASF/WMV"), (b"\x00\x00\x01\xba", 0, "MPEG program stream"),
          (b"\x00\x00\x01\xb3", 0, "MPEG-1/2 video stream"),
          (b"OggS", 0, "Ogg")]
_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"moof", b"mfra", b"styp",
              b"sidx", b"meta", b"pdin"}


def sniff(head: bytes) -> tuple[str, str]:
    """("video" | "other" | "text" | "unknown", description) from a file's first bytes."""
    for magic, offset, what in _VIDEO:
        if head[offset:offset + len(magic)] == magic:
            return "video", what
    if len(head) >= 376 and head[0] == head[188] == 0x47:
        return "video", "MPEG transport stream"
    for magic, offset, what in _NOT_VIDEO:
        if head[offset:offset + len(magic)] == magic:
            return "other", what
    if head[4:8] in _MP4_BOXES:
        return "video", "QuickTime/MP4 boxes"
    stripped = head.lstrip()
    if stripped[:1] == b"<":
        return "other", "an XML/HTML document (a DASH manifest or web page?)"
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * max(1, len(text)):
            first = text.strip().splitlines()[0][:60] if text.strip() else ""
            return "text", f"a text file starting {first!r}"
    return "unknown", f"unrecognised bytes {head[:8].hex(' ')}"


class CheckedPath(NamedTuple):
    """What check_path learned without a decoder. `cut_short`: an MP4 whose index precedes a cut, so its frames up
    to the cut decode and the decoder must report the rest as a gap however short it is (a declared duration is
    otherwise trusted only to a slack)."""

    path: Path
    size: int
    kind: str
    what: str
    cut_short: bool = False


def _check_mp4_boxes(path: Path, size: int) -> bool:
    """Walk top-level MP4 boxes: a box that runs past the end of the file means the file was cut short.

    Returns True when it was cut after its index (fast-start or fragmented: the part before the cut is usable);
    raises when nothing can be used."""
    seen = []
    with path.open("rb") as f:
        pos = 0
        while pos < size:
            f.seek(pos)
            header = f.read(16)
            if len(header) < 8:
                break
            box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:
                box_size = size - pos
            if box_size < 8:
                raise CorruptVideo(path, f"an MP4 box '{kind.decode('latin-1')}' of impossible size {box_size}",
                                   "the MP4 structure is broken", "the file is damaged; re-export or re-download it")
            seen.append(kind)
            if pos + box_size > size:
                if b"moov" in seen[:-1] or b"moof" in seen[:-1]:
                    # The index came before the cut (fast-start or fragmented MP4): everything before it decodes.
                    # Decoding keeps those clips and records the lost tail as a gap instead of refusing it all.
                    return True
                raise CorruptVideo(
                    path, f"box '{kind.decode('latin-1')}' declares {box_size:,} bytes at offset {pos:,} "
                          f"but the file ends at {size:,} bytes",
                    "the MP4 is truncated (the copy or download stopped early)",
                    "copy or download the complete file again")
            pos += box_size
    if b"moov" not in seen and b"moof" not in seen:
        raise CorruptVideo(path, f"top-level boxes {[k.decode('latin-1') for k in seen]} without a 'moov' index",
                           "the MP4 has no index (truncated, or the recording never finished)",
                           "re-export the video; an unfinished recording can sometimes be rescued with "
                           "a repair tool such as untrunc")
    return False


def check_path(path: str | Path, limits: VideoLimits | None = None) -> CheckedPath:
    """Checks that need no decoder; returns the path, its size and what sniffing found, or raises."""
    limits = limits or VideoLimits()
    path = Path(path)
    try:
        st = path.stat()  # never open() first: opening a FIFO blocks until a writer appears
    except FileNotFoundError:
        if path.is_symlink():
            raise VideoNotFound(path, f"a symbolic link to {os.readlink(path)!r}, which does not exist",
                                "the link is dangling", "point it at the video again, or pass the file itself") from None
        raise VideoNotFound(path, "no such file", "the video path does not exist",
                            "check the path (and the current directory)") from None
    except OSError as e:
        raise VideoNotFound(path, f"{type(e).__name__}: {e.strerror}", "the path cannot be inspected",
                            "check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise VideoNotFound(path, "a directory", "expected a video file, got a directory",
                            "pass a file inside it, or use `longwatch batch` for a folder of videos")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a character device" if stat.S_ISCHR(st.st_mode) else "a block device"
                if stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise UnsupportedVideo(path, kind, "only regular files are read as videos",
                               "save the stream to a file first, or pass a stream URL")
    if not os.access(path, os.R_OK):
        raise VideoNotFound(path, "a file without read permission", "the file cannot be read",
                            "fix its permissions (chmod +r) or run as a user who can read it")
    if st.st_size == 0:
        raise CorruptVideo(path, "0 bytes", "the file is empty", "copy or download the video again")
    if st.st_size > limits.max_bytes:
        raise VideoTooLarge(path, f"{st.st_size / 2**30:.1f} GiB", f"over the file size limit of "
                            f"{limits.max_bytes / 2**30:.1f} GiB", "split the video, or raise VideoLimits.max_bytes")
    with path.open("rb") as f:
        head = f.read(4096)
    kind, what = sniff(head)
    if kind in ("other", "text"):
        hint = ("longwatch never follows playlists or lists inside an uploaded file; pass the media file itself"
                if "playlist" in what or "concat" in what or "manifest" in what
                else "pass a video file (MP4, MKV, WebM, AVI, MOV, TS)")
        raise UnsupportedVideo(path, what, "not a video file", hint)
    cut_short = kind == "video" and what.startswith(("MP4", "QuickTime")) and _check_mp4_boxes(path, st.st_size)
    if cut_short:
        what = f"{what}, cut short after its index"
    return CheckedPath(path, st.st_size, kind, what, cut_short)


_WORKER = None
_WORKER_LOCK = threading.Lock()


def _worker():
    """The process-wide probe worker, started on first use and stopped at exit."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            from longwatch.pipeline._decode_worker import Worker

            _WORKER = Worker()
            atexit.register(_WORKER.close)
        return _WORKER


def probe(path: str | Path, limits: VideoLimits | None = None, *, isolate: bool = True) -> VideoInfo:
    """Validate `path` and describe its first video stream; raises a VideoError subclass on any problem.

    With `isolate` (the default) FFmpeg opens the file and decodes its first frame in a worker process under
    `limits.timeout`; pass isolate=False only for files you made yourself.
    """
    from longwatch.pipeline._decode_worker import WorkerCrashed, WorkerTimeout

    limits = limits or VideoLimits()
    path, size, kind, what, cut_short = check_path(path, limits)
    request = {"op": "probe", "path": str(path), "max_pixels": limits.max_pixels}
    if isolate:
        worker = _worker()
        try:
            with worker.lock:
                facts, _ = worker.call(request, limits.timeout)
        except WorkerTimeout:
            raise CorruptVideo(path, f"no answer from the decoder within {limits.timeout:g} s",
                               "probing the file hung", "the file is probably damaged; re-export it") from None
        except WorkerCrashed as e:
            raise CorruptVideo(path, str(e), "the decoder crashed while probing the file",
                               "the file is damaged or hostile; re-export it from the original") from None
    else:
        from longwatch.pipeline._decode_ops import handle

        facts, _ = handle(request, {})
    return _info(path, facts, limits, kind, what, cut_short)


def _info(path: Path, facts: dict, limits: VideoLimits, kind: str, what: str, cut_short: bool) -> VideoInfo:
    from longwatch.pipeline._decode_ops import ALLOWED_FORMATS

    if facts.get("error"):
        message = facts.get("message", "")
        if kind == "video":
            raise CorruptVideo(path, f"{what} that FFmpeg cannot open ({message})", "the container is damaged",
                               "copy or download the file again, or re-export it")
        raise UnsupportedVideo(path, f"{what} ({message})",
                               f"not a container longwatch reads ({', '.join(ALLOWED_FORMATS)})",
                               "convert it, e.g. `ffmpeg -i INPUT -c:v libx264 OUTPUT.mp4`")
    video = facts["video"]
    if video is None:
        found = ", ".join(f"{s['type']} ({s['codec']})" for s in facts["streams"]) or "no streams"
        raise UnsupportedVideo(path, found, "the file has no video stream",
                               "pass a file with a video track (an audio-only file cannot be watched)")
    codec = video["codec"]
    if not video["has_decoder"]:
        raise UnsupportedVideo(path, f"{codec} video", f"this build has no decoder for {codec}",
                               "convert it to H.264, e.g. `ffmpeg -i INPUT -c:v libx264 OUTPUT.mp4`")
    w, h = video["width"], video["height"]
    fps, fps_source = frame_rate(video["fps"], video.get("measured_fps"))
    _check_limits(path, video, facts, limits, fps, fps_source)
    if video["first_frame"] is None:
        problem = f"no {codec} frame decodes"
        if codec in ("hevc", "av1"):
            raise UnsupportedVideo(path, f"{codec} video ({video['decode_error']})", problem,
                                   "convert it to H.264, e.g. `ffmpeg -i INPUT -c:v libx264 OUTPUT.mp4`")
        raise CorruptVideo(path, f"{what}, {codec} {w}x{h}: {video['decode_error']}", problem,
                           "the file is truncated or damaged; copy or export it again")
    ccw = video["rotation_ccw"]
    if ccw is None and video["rotate_tag"]:
        try:
            ccw = -float(video["rotate_tag"])  # the legacy "rotate" tag counts clockwise
        except ValueError:
            ccw = 0
    rotation = int(round(-(ccw or 0) / 90.0)) % 4 * 90  # clockwise degrees to turn stored frames upright
    if rotation in (90, 270):
        w, h = h, w
    duration = video["duration"] or facts["duration"]
    return VideoInfo(source=str(path), container=facts["container"], codec=codec, width=w, height=h,
                     fps=fps, duration=duration, n_frames=video["n_frames"], rotation=rotation,
                     has_audio=facts["has_audio"], is_live=False,
                     extra={"start": video["start"], "stored_size": [video["width"], video["height"]],
                            "profile": video["profile"], "detected": what, "fps_source": fps_source,
                            "cut_short": cut_short,
                            "streams": [f"{s['type']}:{s['codec']}" for s in facts["streams"]]})


def frame_rate(declared: float, measured: float | None) -> tuple[float, str]:
    """(fps, "declared" | "measured"): the container's average rate unless the packet times say otherwise.

    Variable-frame-rate recordings (MediaRecorder WebM, OBS FLV, WMV) often declare nothing or their time base's
    tick rate (1000 fps); their packets tell the truth. A rate within a factor 1.5 of the measured one is kept
    as declared, so 30000/1001 stays exact. A genuinely fast stream measures fast and still meets the fps limit.
    """
    if measured and (not declared or not 1 / 1.5 <= declared / measured <= 1.5):
        return measured, "measured"
    return (declared, "declared") if declared else (0.0, "unknown")


def _check_limits(path: Path, video: dict, facts: dict, limits: VideoLimits, fps: float, fps_source: str) -> None:
    w, h = video["width"], video["height"]
    if w <= 0 or h <= 0:
        refused = next((m for line in facts.get("log", []) if (m := _REFUSED_SIZE.search(line))), None)
        if refused:
            cw, ch = int(refused[1]), int(refused[2])
            raise VideoTooLarge(path, f"a header claiming {cw}x{ch} frames ({cw * ch / 1e6:.0f} megapixels, "
                                      "more than FFmpeg accepts)",
                                f"over the limit of {limits.max_pixels / 1e6:.1f} megapixels per frame",
                                "the header is damaged or hostile; re-export the video at a normal size")
        raise CorruptVideo(path, f"a {video['codec']} stream of size {w}x{h}", "the frame size is missing",
                           "the file is damaged; re-export it")
    if w * h > limits.max_pixels:
        raise VideoTooLarge(path, f"{w}x{h} frames ({w * h / 1e6:.1f} megapixels)",
                            f"over the limit of {limits.max_pixels / 1e6:.1f} megapixels per frame",
                            "downscale it, e.g. `ffmpeg -i INPUT -vf scale=-2:2160 OUTPUT.mp4`, "
                            "or raise VideoLimits.max_pixels")
    duration = video["duration"] or facts["duration"] or 0.0
    if duration > limits.max_duration:
        raise VideoTooLarge(path, f"a declared duration of {duration / _HOURS:.1f} h",
                            f"over the limit of {limits.max_duration / _HOURS:.1f} h",
                            "split the video into parts, or raise VideoLimits.max_duration")
    if fps > limits.max_fps:
        raise VideoTooLarge(path, f"a {fps_source} {fps:.1f} fps", f"over the limit of {limits.max_fps:g} fps",
                            "re-encode at a lower frame rate, e.g. `ffmpeg -i INPUT -r 30 OUTPUT.mp4`, "
                            "or raise VideoLimits.max_fps")
    frames = max(video["n_frames"] or 0, int(duration * fps))
    if frames > limits.max_frames:
        raise VideoTooLarge(path, f"{frames:,} declared frames ({duration / _HOURS:.1f} h at {fps:.1f} fps)",
                            f"over the limit of {limits.max_frames:,} frames",
                            "re-encode at a lower frame rate or split the video, or raise VideoLimits.max_frames")
