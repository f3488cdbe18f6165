"""Application settings as nested dataclasses, loadable from a TOML file; only the CLI reads argv.

Paths: banks live under `$LONGWATCH_HOME` (default `~/.cache/longwatch`) as `banks/<name>/`.
"""

from __future__ import annotations

import argparse
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

_BANK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DropPolicy = Literal["oldest", "newest"]

# File name suffixes of the containers longwatch ingests; an upload is stored under its id plus one of these.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")

# The FFmpeg protocols each network scheme may use underneath (HTTP redirects and HLS segments, RTSP's RTP
# transport). Enforced through FFmpeg's protocol_whitelist, so a hostile playlist or redirect can never reach
# file:, pipe:, concat:, subfile:, data: or a listening tcp: on the server.
_TRANSPORTS = {
    "http": "http,https,tcp,tls,crypto", "https": "http,https,tcp,tls,crypto",
    "rtsp": "rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https", "rtsps": "rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https",
    "rtmp": "rtmp,rtmps,tcp,tls", "rtmps": "rtmp,rtmps,tcp,tls", "udp": "udp", "rtp": "rtp,udp", "srt": "srt",
}
_WEBCAM = re.compile(r"webcam:\d+")


def longwatch_home() -> Path:
    """Root of every bank and cache: `$LONGWATCH_HOME`, else `~/.cache/longwatch`."""
    return Path(os.environ.get("LONGWATCH_HOME") or Path.home() / ".cache" / "longwatch").expanduser()


@dataclass
class LiveConfig:
    """How a live session buffers frames between the receiving thread and the ingesting thread."""

    queue_frames: int = 64  # bounded: a slow ingest drops frames instead of growing memory without end
    drop: DropPolicy = "oldest"  # "oldest" keeps the session close to live; "newest" keeps what is queued
    end_on_eof: bool = False  # a server closing the stream ends the session instead of triggering reconnects
    # What a source typed by someone other than the owner (the web UI's Live tab) may be; see check_source.
    # udp/rtp bind a port on the server, so they are opt-in like webcams and local files.
    allowed_schemes: list[str] = field(default_factory=lambda: ["rtsp", "rtsps", "http", "https"])
    allow_webcam: bool = False
    allow_local: bool = False  # local paths, file:, tcp: and every other FFmpeg protocol: trusted users only

    def __post_init__(self) -> None:
        if self.queue_frames < 1:
            raise ValueError(f"live.queue_frames must be >= 1, got {self.queue_frames}")
        if self.drop not in ("oldest", "newest"):
            raise ValueError(f"live.drop must be 'oldest' or 'newest', got {self.drop!r}")
        self.allowed_schemes = [str(s).lower() for s in self.allowed_schemes]
        unknown = sorted(set(self.allowed_schemes) - set(_TRANSPORTS))
        if unknown:
            raise ValueError(f"live.allowed_schemes: {unknown} are not network stream schemes; choose from "
                             f"{sorted(_TRANSPORTS)} (local files and tcp: need live.allow_local = true)")

    def check_source(self, spec: object) -> dict[str, str] | None:
        """Refuse a live source typed by an untrusted user unless this policy allows it; nothing is opened or read.

        Returns the FFmpeg options that keep the stream on its own network protocols (None when the owner
        allowed local sources or a webcam, where no URL is involved). Raises StreamError otherwise; the message
        names only the scheme, so it neither echoes a file nor says whether a path exists.
        """
        from longwatch.errors import StreamError

        if self.allow_local:
            return None
        text = spec.strip() if isinstance(spec, str) else ""
        schemes = ", ".join(f"{s}://" for s in self.allowed_schemes) or "no URL scheme"
        hint = (f"Enter a stream URL ({schemes}{', webcam:N' if self.allow_webcam else ''}); the server's owner "
                "can allow more under [live] in its config (allowed_schemes, allow_webcam, allow_local)")

        def refuse(found: str):
            return StreamError("live source", found, "this source is not allowed from here", hint)

        if not text or any(c.isspace() or not c.isprintable() for c in text):
            raise refuse("an empty address or one with spaces or control characters")
        if _WEBCAM.fullmatch(text):
            if self.allow_webcam:
                return None
            raise refuse("a webcam on the server (live.allow_webcam is off)")
        scheme, sep, _ = text.partition("://")
        scheme = scheme.lower()
        if not sep:
            name, colon, _ = text.split("/", 1)[0].partition(":")
            raise refuse(f"the FFmpeg protocol {name.split(',')[0].lower()[:20]!r}" if colon else "a local path")
        if scheme not in self.allowed_schemes:
            raise refuse(f"a {scheme[:20]}:// address")
        try:
            host = urlsplit(text).hostname
        except ValueError:
            host = None
        if not host and scheme not in ("udp", "rtp"):  # udp://@:1234 receives on a local port: no host
            raise refuse(f"a {scheme}:// address without a host")
        return {"protocol_whitelist": _TRANSPORTS[scheme]}


@dataclass
class UIConfig:
    """The web UI: local-only by default, bounded uploads, a few concurrent jobs."""

    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: int = 4096  # an hour of 1080p H.264 is roughly 1–3 GB
    concurrency: int = 2  # jobs running at once per event; the 2-core machines this targets need no more
    auth: str | None = None  # "user:password"; None serves without a login

    def __post_init__(self) -> None:
        if self.max_upload_mb < 1:
            raise ValueError(f"ui.max_upload_mb must be >= 1, got {self.max_upload_mb}")
        if self.concurrency < 1:
            raise ValueError(f"ui.concurrency must be >= 1, got {self.concurrency}")
        if self.auth is not None and ":" not in self.auth:
            raise ValueError("ui.auth must look like 'user:password'")

    def auth_pair(self) -> tuple[str, str] | None:
        if self.auth is None:
            return None
        user, _, password = self.auth.partition(":")
        return user, password


@dataclass
class Config:
    """Everything `LongWatch` needs: which bank, which model preset, pipeline overrides, live and UI settings."""

    home: Path = field(default_factory=longwatch_home)
    bank: str = "default"  # a name under home/banks, or a folder path (anything with a "/")
    preset: str = "offline"
    pipeline: dict = field(default_factory=dict)  # field overrides for PipelineConfig, e.g. {"clip_seconds": 4}
    live: LiveConfig = field(default_factory=LiveConfig)
    ui: UIConfig = field(default_factory=UIConfig)

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser()
        if "/" not in self.bank and not _BANK_NAME.match(self.bank):
            raise ValueError(f"bank name {self.bank!r} must be 1-64 letters, digits, '.', '_' or '-', "
                             "or a folder path containing '/'")

    @property
    def bank_root(self) -> Path:
        if "/" in self.bank:
            return Path(self.bank).expanduser()
        return self.home / "banks" / self.bank


def _build(cls: type, data: dict, where: str):
    """Instantiate dataclass `cls` from a TOML table, naming any unknown key so typos don't pass silently."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        if name == "live":
            value = _build(LiveConfig, value, f"{where} [live]")
        elif name == "ui":
            value = _build(UIConfig, value, f"{where} [ui]")
        kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path | None = None, **overrides) -> Config:
    """Read a TOML file (top-level `bank`, `preset`, `home`, tables `[pipeline]`, `[live]`, `[ui]`) and apply
    keyword overrides whose value is not None. Without a path, the defaults."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist; pass an existing TOML file or omit --config")
        with path.open("rb") as f:
            data = tomllib.load(f)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return _build(Config, data, str(path or "config"))


def add_bank_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every bank-using command shares."""
    parser.add_argument("--config", help="TOML settings file (see app/config.py)")
    parser.add_argument("--bank", help="bank name under $LONGWATCH_HOME/banks (default: 'default'), or a folder path")
    parser.add_argument("--preset", help="model preset: offline | tiny | vlm | sized:<name> (default: offline)")


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None), bank=getattr(args, "bank", None),
                       preset=getattr(args, "preset", None))
