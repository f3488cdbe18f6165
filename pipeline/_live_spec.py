"""Live source addresses: which specs are live, the device or URL and FFmpeg options for each, readable errors.

Credentials in URLs are redacted from every name that reaches a message, a log or the bank.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from longwatch.errors import StreamError

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp", "srt", "tcp")
_WEBCAM = re.compile(r"webcam:(\d+)")


def is_live_spec(spec: object) -> bool:
    """True for what `LiveSource` reads: a URL with a scheme in LIVE_SCHEMES, or "webcam:N"."""
    if not isinstance(spec, str):
        return False
    if _WEBCAM.fullmatch(spec.strip()):
        return True
    return "://" in spec and spec.split("://", 1)[0].lower() in LIVE_SCHEMES


def resolve(spec: str) -> tuple[str, str | None, str, str]:
    """(url or device for av.open, forced format, printable name without secrets, scheme)."""
    if not isinstance(spec, str):
        raise TypeError(f"a live source spec is a URL or 'webcam:N' string, got {type(spec).__name__}")
    spec = spec.strip()
    m = _WEBCAM.fullmatch(spec)
    if m:
        n = int(m[1])
        if sys.platform == "darwin":
            return f"{n}:none", "avfoundation", spec, "webcam"
        device = f"/dev/video{n}"
        if not Path(device).exists():
            raise StreamError(spec, detected=f"no device {device}", problem="webcam not found",
                              hint="connect a camera and check `ls /dev/video*` (and that this user is in the "
                                   "'video' group), then pass webcam:N with the right N")
        return device, "v4l2", f"{spec} ({device})", "webcam"
    if spec.startswith("webcam"):
        raise StreamError(spec, detected=f"webcam spec {spec!r}", problem="not a webcam address",
                          hint="write webcam:N for /dev/videoN, e.g. webcam:0")
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    name = _redact(spec)
    if scheme not in LIVE_SCHEMES:
        raise StreamError(name, detected=f"scheme {scheme!r}" if scheme else "no URL scheme",
                          problem="not a live stream address",
                          hint=f"use a {'/'.join(LIVE_SCHEMES)} URL or webcam:N; pass local files as paths")
    return spec, None, name, scheme


def _redact(url: str) -> str:
    """The URL with any password replaced, so credentials never reach logs, errors or the bank."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def default_options(scheme: str, read_timeout: float, open_timeout: float, user: dict[str, str]) -> dict[str, str]:
    if scheme == "webcam":
        return {}
    us = str(int(read_timeout * 1e6))
    # Shorter probing than FFmpeg's 5 s default: a live open should not sit on 5 s of stream before the first
    # frame. rw_timeout is the socket-level timeout, beside PyAV's interrupt timeout, for protocols that honour it.
    opts = {"analyzeduration": "2000000", "rw_timeout": us}
    if scheme in ("rtsp", "rtsps") and "listen" in user.get("rtsp_flags", ""):
        # We are the server a camera pushes to; FFmpeg rejects the socket `timeout` in this mode.
        opts.update(listen_timeout=str(max(1, round(open_timeout))))
    elif scheme in ("rtsp", "rtsps"):
        opts.update(rtsp_transport="tcp", timeout=us)  # TCP interleaving survives NAT and loss better than UDP
    elif scheme in ("udp", "rtp"):
        opts.update(timeout=us, overrun_nonfatal="1")  # a slow reader loses packets instead of failing the read
    return opts


def describe_error(e: BaseException) -> str:
    import av

    if isinstance(e, av.error.ExitError):
        return "no data before the timeout"
    return f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"


def open_hint(e: BaseException, open_timeout: float) -> str:
    import av

    if isinstance(e, ConnectionRefusedError):
        return "nothing is listening at that address: start the sender or camera, or check host and port"
    if isinstance(e, av.error.ExitError):
        return (f"no data arrived within {open_timeout:g} s: check the stream is running and reachable "
                "(firewall, UDP port), or pass a larger open_timeout")
    if isinstance(e, av.error.ProtocolNotFoundError):
        return ("the FFmpeg inside this PyAV build lacks that protocol (PyAV wheels ship without SRT): relay it, "
                "e.g. `ffmpeg -i <url> -c copy -f mpegts udp://127.0.0.1:5000`, and open udp://127.0.0.1:5000")
    if isinstance(e, PermissionError):
        return "access denied: check credentials in the URL or device permissions"
    return "check the address, e.g. with `ffprobe <url>`, and that the sender is running"
