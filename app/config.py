"""Application settings as nested dataclasses, loadable from a TOML file; only the CLI reads argv.

Paths: banks live under `$LONGWATCH_HOME` (default `~/.cache/longwatch`) as `banks/<name>/`. A TOML file holds
top-level `bank` and `home`, then tables `[models]` (preset, device, dtype, answerer, svlm, embedder),
`[pipeline]` (PipelineConfig's fields), `[live]` and `[ui]`; a top-level `preset` (the old shape) still works.
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

from longwatch.pipeline.config import PipelineConfig

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
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
DTYPES = ("auto", "bf16", "fp16", "fp32")


def longwatch_home() -> Path:
    """Root of every bank and cache: `$LONGWATCH_HOME`, else `~/.cache/longwatch`."""
    return Path(os.environ.get("LONGWATCH_HOME") or Path.home() / ".cache" / "longwatch").expanduser()


@dataclass
class ModelsConfig:
    """Which models answer: a preset plus the overrides `load_preset` takes; devices and dtypes default to "auto"."""

    preset: str = "offline"  # offline | tiny | vlm | sized:<name>
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto (bf16 where the hardware computes it natively, else fp32) | bf16 | fp16 | fp32
    answerer: str | None = None  # hub id or local path (a family name for `tiny`); None keeps the preset's
    svlm: str | None = None  # hub id or local path; "none" runs without the small VLM; None keeps the preset's
    embedder: str | None = None  # a sentence-transformers folder; None keeps the preset's
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if not self.preset or not isinstance(self.preset, str):
            raise ValueError(f"models.preset must name a preset (offline, tiny, vlm, sized:<name>), got {self.preset!r}")
        if not _DEVICE.fullmatch(str(self.device)):
            raise ValueError(f"models.device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"models.dtype must be one of {DTYPES}, got {self.dtype!r}")

    def preset_overrides(self, home: Path | None = None) -> dict:
        """Keyword arguments for `load_preset(self.preset, **...)`: only what this config sets."""
        overrides: dict = {"device": self.device, "dtype": self.dtype}
        for name in ("answerer", "embedder"):
            if getattr(self, name) is not None:
                overrides[name] = getattr(self, name)
        if self.svlm is not None:
            overrides["svlm"] = None if self.svlm.lower() == "none" else self.svlm
        if self.trust_remote_code:
            overrides["trust_remote_code"] = True
        if home is not None:
            overrides["home"] = home
        return overrides

    def load(self, home: Path | None = None):
        """The ModelSet this config names (loads weights: seconds to minutes)."""
        from longwatch.pipeline.models import load_preset

        return load_preset(self.preset, **self.preset_overrides(home))


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
    # Hosts that are the server itself or its link: loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16,
    # fe80::/10, where cloud metadata services answer) and 0.0.0.0. LAN addresses (cameras) stay allowed.
    allow_loopback: bool = False

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
        if host and not self.allow_loopback and _names_the_server(host):
            raise refuse("an address of the server itself or its link (loopback, link-local)")
        return {"protocol_whitelist": _TRANSPORTS[scheme]}


def _names_the_server(host: str) -> bool:
    """Whether `host` resolves to the server itself or its link, where a web user must not make it connect
    (its own services, a cloud metadata endpoint). A name that does not resolve here is left to FFmpeg, which
    will fail to connect to it as well."""
    import ipaddress
    import socket
    from urllib.parse import unquote

    host = unquote(host).split("%")[0]  # an IPv6 zone ("fe80::1%25eth0" in a URL) does not change the address
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in socket.getaddrinfo(host, None)}
        except (OSError, UnicodeError, ValueError):
            return False
    addresses = {getattr(ip, "ipv4_mapped", None) or ip for ip in addresses}  # ::ffff:127.0.0.1 is 127.0.0.1
    return any(ip.is_loopback or ip.is_link_local or ip.is_unspecified for ip in addresses)


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
    """Everything `LongWatch` needs: which bank, which models, the pipeline's knobs, live and UI settings."""

    home: Path = field(default_factory=longwatch_home)
    bank: str = "default"  # a name under home/banks, or a folder path (anything with a "/")
    models: ModelsConfig = field(default_factory=ModelsConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    ui: UIConfig = field(default_factory=UIConfig)

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser()
        if "/" not in self.bank and not _BANK_NAME.match(self.bank):
            raise ValueError(f"bank name {self.bank!r} must be 1-64 letters, digits, '.', '_' or '-', "
                             "or a folder path containing '/'")

    @property
    def preset(self) -> str:
        return self.models.preset

    @property
    def bank_root(self) -> Path:
        if "/" in self.bank:
            return Path(self.bank).expanduser()
        return self.home / "banks" / self.bank


_TABLES = {"models": ModelsConfig, "pipeline": PipelineConfig, "live": LiveConfig, "ui": UIConfig}


def _build(cls: type, data: object, where: str):
    """Instantiate dataclass `cls` from a TOML table, naming any unknown key and the allowed ones."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a table of settings, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}; allowed: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        if name in _TABLES and cls is Config:
            value = _build(_TABLES[name], value, f"{where} [{name}]")
        elif isinstance(value, list) and isinstance(known[name].default, tuple):
            value = tuple(value)  # TOML has arrays only; grids like detail_hw are tuples
        kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path | None = None, *, preset: str | None = None, **overrides) -> Config:
    """Read a TOML file (top-level `bank`, `home`; tables `[models]`, `[pipeline]`, `[live]`, `[ui]`) and apply
    keyword overrides whose value is not None: a table by a dict or its dataclass, `preset` into [models].
    Without a path, the defaults."""
    data: dict = {}
    where = str(path or "config")
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist; pass an existing TOML file or omit --config")
        with path.open("rb") as f:
            data = tomllib.load(f)
    if "preset" in data:
        # The first config files put the preset at the top level; it now lives in [models] beside device/dtype.
        models = data.setdefault("models", {})
        if not isinstance(models, dict) or "preset" in models:
            raise ValueError(f"{where}: `preset` is set both at the top level and under [models]; keep only "
                             "[models] preset")
        models["preset"] = data.pop("preset")
    data.update({k: v for k, v in overrides.items() if v is not None})
    if preset is not None:
        models = data.get("models") or {}
        data["models"] = ({**models, "preset": preset} if isinstance(models, dict)
                          else ModelsConfig(**{**vars(models), "preset": preset}))
    return _build(Config, data, where)


def pipeline_overrides(pipeline: PipelineConfig) -> dict:
    """The PipelineConfig fields that differ from the defaults, JSON-ready (what a run's settings stamp keeps)."""
    default = PipelineConfig()
    return {f.name: list(v) if isinstance(v := getattr(pipeline, f.name), tuple) else v
            for f in fields(PipelineConfig) if getattr(pipeline, f.name) != getattr(default, f.name)}


def add_bank_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every bank-using command shares."""
    parser.add_argument("--config", help="TOML settings file (see app/config.py)")
    parser.add_argument("--bank", help="bank name under $LONGWATCH_HOME/banks (default: 'default'), or a folder path")
    add_model_arguments(parser)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that override the config's [models] table."""
    parser.add_argument("--preset", help="model preset: offline | tiny | vlm | sized:<name> (default: offline)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    parser.add_argument("--dtype", choices=DTYPES, help="model dtype (default: auto)")


def config_from_args(args: argparse.Namespace, bank: bool = True) -> Config:
    """The config file named by --config with the command line's overrides applied (`bank=False`: a command whose
    --bank is a plain folder, not the config's bank setting)."""
    config = load_config(getattr(args, "config", None), bank=getattr(args, "bank", None) if bank else None,
                         preset=getattr(args, "preset", None))
    models = {k: v for k in ("device", "dtype") if (v := getattr(args, k, None)) is not None}
    if models:
        from dataclasses import replace

        config.models = replace(config.models, **models)
    return config
