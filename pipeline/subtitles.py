"""Subtitle cues of a video: embedded text streams demuxed and decoded with PyAV, sidecar files parsed with pysubs2.

Markup (ASS override tags, SRT/VTT HTML) is stripped by pysubs2; times come from packet pts and the cue's own span.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from longwatch import optional
from longwatch.errors import CorruptVideo, UnsupportedVideo

TEXT_CODECS = ("mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text")  # bitmap subtitles need OCR, not us
SIDECAR_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")
_MAX_SIDECAR_BYTES = 32 << 20  # a subtitle file bigger than this is not one
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Za-z]{2,4})?")  # BCP 47 language, optional region


@dataclass(frozen=True)
class Cue:
    """`text` is shown from `t0` to `t1` seconds; `source` is "embedded:<stream index>" or the sidecar's path."""

    t0: float
    t1: float
    text: str
    language: str | None
    source: str


def _pysubs2():
    return optional.require("pysubs2")


def _plain(ass_text: str) -> str:
    """Visible text of an ASS/SSA event text: override tags gone, \\N as line breaks, lines joined by spaces."""
    text = _pysubs2().SSAEvent(text=ass_text).plaintext
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def embedded_cues(path: str | Path, limits=None) -> list[Cue]:
    """Cues of every text subtitle stream in the file, in time order (bitmap streams such as PGS are skipped)."""
    import av

    from longwatch.pipeline.probe import check_path

    path = check_path(path, limits)[0]
    cues: list[Cue] = []
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            streams = [s for s in container.streams.subtitles if s.codec_context.name in TEXT_CODECS]
            for stream in streams:
                cues += _stream_cues(container, stream)
    except av.FFmpegError as e:
        raise CorruptVideo(path, f"undecodable subtitles ({e})", "a subtitle stream is damaged",
                           "re-export the file, or pass the subtitles as a sidecar file (--subtitles)") from None
    return sorted(cues, key=lambda c: (c.t0, c.t1))


def _stream_cues(container, stream) -> list[Cue]:
    cues = []
    language = stream.language or stream.metadata.get("language")
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None:
            continue
        subtitle = stream.codec_context.decode2(packet)
        if subtitle is None:  # mov_text's empty "clear the screen" samples
            continue
        start = float(packet.pts * packet.time_base) + subtitle.start_display_time / 1000
        if subtitle.end_display_time > subtitle.start_display_time:
            end = start + (subtitle.end_display_time - subtitle.start_display_time) / 1000
        else:
            end = start + float((packet.duration or 0) * packet.time_base)
        texts = []
        for rect in subtitle.rects:
            if rect.type == b"ass":
                # FFmpeg's ASS line: ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text
                texts.append(_plain(rect.ass.decode("utf-8", "replace").split(",", 8)[-1]))
            elif rect.type == b"text":
                texts.append(_plain(rect.text.decode("utf-8", "replace")))
        text = " ".join(t for t in texts if t)
        if text:
            cues.append(Cue(round(start, 3), round(max(start, end), 3), text, language, f"embedded:{stream.index}"))
    return cues


def sidecar_files(video: str | Path) -> list[Path]:
    """Subtitle files beside the video that belong to it: `name.srt`, `name.en.vtt`, `name.forced.ass`, ..."""
    video = Path(video)
    stem = video.stem
    found = []
    for candidate in sorted(video.parent.glob(f"{_glob_escape(stem)}.*")):
        if candidate.suffix.lower() in SIDECAR_SUFFIXES and candidate.is_file():
            middle = candidate.name[len(stem):-len(candidate.suffix)]
            if middle == "" or (middle.startswith(".") and "." not in middle[1:] and len(middle) <= 16):
                found.append(candidate)
    return found


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def _language_of(path: Path) -> str | None:
    """`lecture.en.srt` or `lecture.pt-BR.vtt` name a language; `lecture.srt` and `lecture.final.srt` do not."""
    tag = path.name[: -len(path.suffix)].rpartition(".")[2] if path.name.count(".") >= 2 else ""
    return tag if _LANGUAGE_TAG.fullmatch(tag) else None


def read_sidecar(path: str | Path, language: str | None = None) -> list[Cue]:
    """Cues of one subtitle file (SRT, WebVTT, ASS/SSA, any format pysubs2 reads), markup stripped."""
    pysubs2 = _pysubs2()
    path = Path(path)
    if not path.is_file():
        raise UnsupportedVideo(path, "no such file" if not path.exists() else "not a regular file",
                               "the subtitle file cannot be read", "check the path passed with --subtitles")
    if path.stat().st_size > _MAX_SIDECAR_BYTES:
        raise UnsupportedVideo(path, f"{path.stat().st_size:,} bytes", "too large to be a subtitle file",
                               "pass an SRT, VTT or ASS file")
    try:
        subs = pysubs2.load(str(path), encoding="utf-8-sig" if _is_utf8(path) else "latin-1")
    except (pysubs2.Pysubs2Error, ValueError, UnicodeDecodeError) as e:
        raise UnsupportedVideo(path, f"{type(e).__name__}: {e}", "not a subtitle file pysubs2 can parse",
                               "pass an SRT, WebVTT, ASS or SSA file") from None
    language = language or _language_of(path)
    cues = [Cue(e.start / 1000, e.end / 1000, text, language, str(path))
            for e in subs if not e.is_comment and (text := _plain(e.text))]
    return sorted(cues, key=lambda c: (c.t0, c.t1))


def _is_utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def subtitle_cues(video: str | Path, files: list[str | Path] | None = None, limits=None,
                  on_damage: Callable[[CorruptVideo], None] | None = None) -> list[Cue]:
    """Every cue for `video`: explicit `files` when given, else sidecar files beside it; plus embedded streams.

    `on_damage`: given, a damaged embedded stream is reported to it and its cues are left out instead of raising
    (ingest keeps the video and its sidecars)."""
    sidecars = [Path(f) for f in files] if files else sidecar_files(video)
    try:
        cues = embedded_cues(video, limits)
    except CorruptVideo as e:
        if on_damage is None:
            raise
        on_damage(e)
        cues = []
    for sidecar in sidecars:
        cues += read_sidecar(sidecar)
    return sorted(cues, key=lambda c: (c.t0, c.t1))
